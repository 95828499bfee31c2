"""Loading images: refusals with typed errors, and unusual but valid images handled right."""

import io

import numpy as np
import pytest
from PIL import Image

from emo_core import InputTooLargeError, InvalidInputError, load_image
from tests import media


def png_bytes(image: Image.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save_args)
    return buffer.getvalue()


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture")
    with pytest.raises(InvalidInputError, match="not an image"):
        load_image(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg(keep):
    data = media.jpeg_bytes(media.astronaut())
    with pytest.raises(InvalidInputError, match="corrupt or truncated"):
        load_image(data[: int(len(data) * keep)])


def test_decompression_bomb_is_refused_before_decoding():
    bomb = png_bytes(Image.new("1", (20000, 20000)))  # 400 MP in a few kB
    assert len(bomb) < 200_000
    with pytest.raises(InputTooLargeError, match="too large|over the"):
        load_image(bomb)


def test_pixel_limit_is_a_setting():
    data = png_bytes(Image.new("RGB", (3000, 2000)))
    with pytest.raises(InputTooLargeError, match=r"3000x2000 \(6 MP\), over the 5 MP limit"):
        load_image(data, max_pixels=5_000_000)
    assert load_image(data, max_pixels=7_000_000).image.size == (1920, 1280)


def test_byte_limit_is_a_setting():
    data = media.jpeg_bytes(media.astronaut())
    with pytest.raises(InputTooLargeError, match="MB"):
        load_image(data, max_bytes=1000)


def test_huge_jpeg_is_decoded_small():
    big = media.astronaut().resize((8000, 8000))
    loaded = load_image(media.jpeg_bytes(big, quality=70), max_pixels=80_000_000, max_side=1000)
    assert loaded.image.size == (1000, 1000)
    assert loaded.original_size == (8000, 8000)
    assert any("downscaled" in note for note in loaded.notes)


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA", "LA"])
def test_modes_become_rgb(mode):
    source = media.astronaut().convert(mode)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    buffer = io.BytesIO()
    source.save(buffer, fmt)
    loaded = load_image(buffer.getvalue())
    assert loaded.image.mode == "RGB" and loaded.image.size == (512, 512)


def test_rgba_transparency_is_composited_on_white():
    image = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    loaded = load_image(png_bytes(image))
    assert loaded.image.getpixel((5, 5)) == (255, 255, 255)
    assert any("white" in note for note in loaded.notes)


def test_16_bit_png_keeps_its_tones():
    ramp = (np.linspace(0, 65535, 256, dtype=np.float64)[None, :].repeat(8, axis=0)).astype(np.uint16)
    loaded = load_image(png_bytes(Image.fromarray(ramp)))
    row = np.asarray(loaded.image)[0, :, 0]
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row.astype(int)) >= 0)


def test_webp_reads():
    buffer = io.BytesIO()
    media.astronaut().save(buffer, "WEBP", quality=80)
    assert load_image(buffer.getvalue()).format == "WEBP"


def test_animated_gif_uses_the_first_frame_and_says_so():
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(buffer.getvalue())
    assert loaded.image.getpixel((5, 5))[0] > 200  # red: the first frame
    assert any("first frame" in note for note in loaded.notes)


def test_exif_rotation_is_applied():
    upright = media.astronaut()
    stored = upright.rotate(90, expand=True)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    loaded = load_image(media.jpeg_bytes(stored, exif=exif.tobytes()))
    assert any("EXIF" in note for note in loaded.notes)
    difference = np.abs(np.asarray(loaded.image, dtype=int) - np.asarray(upright, dtype=int)).mean()
    assert difference < 8  # only JPEG noise left


def test_arrays_and_pil_images_are_accepted():
    array = np.zeros((20, 30, 3), dtype=np.float32)
    assert load_image(array).image.size == (30, 20)
    assert load_image(Image.new("L", (7, 5))).image.mode == "RGB"
    with pytest.raises(InvalidInputError):
        load_image(np.zeros((4, 4, 5)))
