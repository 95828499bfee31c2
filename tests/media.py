"""Test and benchmark images, generated from registry data (scikit-image) or drawn; none in git.

Run as a script to (re)write the app's example images into ``assets/``:

    python -m tests.media
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def astronaut() -> Image.Image:
    """A real photo of one smiling person (Eileen Collins, NASA, public domain)."""
    from skimage import data

    return Image.fromarray(data.astronaut())


def coffee() -> Image.Image:
    """A real photo without faces (a cup of coffee)."""
    from skimage import data

    return Image.fromarray(data.coffee())


def chelsea() -> Image.Image:
    """A real photo of a cat (no human face)."""
    from skimage import data

    return Image.fromarray(data.chelsea())


def group_photo(n_faces: int = 5, size: tuple[int, int] = (1920, 1280), seed: int = 0) -> Image.Image:
    """A size[0] x size[1] photo collage holding ``n_faces`` real faces at different scales.

    Each face is the astronaut's head cut from the real photo, scaled (150-330 px), some mirrored,
    on a blurred, brightened background made from the coffee photo.
    """
    rng = np.random.default_rng(seed)
    background = coffee().resize(size).filter(ImageFilter.GaussianBlur(8))
    head = astronaut().crop((130, 20, 330, 240))  # the face with hair and chin
    canvas = background.copy()
    columns = n_faces
    for index in range(n_faces):
        scale = rng.uniform(0.75, 1.5)
        tile = head.resize((int(head.width * scale), int(head.height * scale)))
        if index % 2:
            tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        slot = size[0] // columns
        x = index * slot + max(0, (slot - tile.width) // 2)
        y = int(rng.uniform(0.1, 0.55) * (size[1] - tile.height))
        canvas.paste(tile, (x, y))
    return canvas


def drawn_scene(size=(640, 480), color=(40, 120, 220)) -> Image.Image:
    """A drawn picture without faces: a sky-blue field with a yellow sun and a green hill."""
    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 40, 160, 160), fill=(250, 220, 60))
    draw.rectangle((0, size[1] * 2 // 3, size[0], size[1]), fill=(60, 160, 70))
    return image


def jpeg_bytes(image: Image.Image, quality: int = 92, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **save_args)
    return buffer.getvalue()


def write_assets(folder: Path = ASSETS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    examples = {
        "astronaut.jpg": astronaut(),
        "group.jpg": group_photo(4, (1280, 720)),
        "coffee.jpg": coffee(),
        "cat.jpg": chelsea(),
    }
    paths = []
    for name, image in examples.items():
        path = folder / name
        image.save(path, quality=85)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_assets():
        print(written, written.stat().st_size, "bytes")
