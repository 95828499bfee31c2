"""Test and benchmark images, generated from registry data (scikit-image) or drawn; none in git.

Run as a script to (re)write the app's example images into ``assets/``:

    python -m tests.media
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ASSETS = Path(__file__).resolve().parent.parent / "assets"  # the app's examples


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


# --- video frames -------------------------------------------------------------------------------
# In `face_frame()` (640x360), FaceMesh puts the astronaut's lip centre near (288, 176) and her chin
# near (287, 213) (measured once with emo_core's FaceAnalyzer; the warp below only needs them roughly).
MOUTH_XY, CHIN_Y = (288, 176), 213


def face_frame(size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """A 640x360 frame with the astronaut's face (about 125 px) left of centre on a dark background."""
    face = astronaut().crop((100, 0, 400, 300)).resize((360, 360))
    frame = Image.new("RGB", (640, 360), (30, 30, 40))
    frame.paste(face, (140, 0))
    return np.asarray(frame.resize(size)) if size != (640, 360) else np.asarray(frame)


def jaw_drop(frame: np.ndarray, amount: float) -> np.ndarray:
    """The frame with everything below the lip centre pulled down by up to ``amount`` px around the
    mouth: a synthetic "mouth opens, jaw drops" (AU25/AU26) expression change."""
    import cv2

    if amount <= 0:
        return frame.copy()
    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    mx, my = MOUTH_XY
    across = np.exp(-((xs - mx) ** 2) / (2 * 45.0 ** 2))  # fades out sideways beyond the jaw
    below = np.clip((ys - my) / 6.0, 0, 1) * np.clip(1 - (ys - CHIN_Y - 25) / 40.0, 0, 1)
    shift = amount * across * below
    return cv2.remap(frame, xs, ys - shift, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# FaceMesh puts the astronaut's eyes in `face_frame()` at these (x, upper lid y, lower lid y): landmarks
# 159/145 and 386/374, measured once like MOUTH_XY.
EYE_LIDS = ((264, 117, 126), (316, 120, 128))
BLINK_LEVELS = (0.6, 1.0, 1.0, 1.0, 0.6)  # eye closure over the 5 frames of a blink (1/6 s at 30 fps)


def blink(frame: np.ndarray, level: float) -> np.ndarray:
    """The frame with both upper lids slid down over the eyes, ``level`` 1 reaching the lower lids:
    the skin above each eye is stretched down to the lower lid, covering the eye (AU45)."""
    import cv2

    if level <= 0:
        return frame.copy()
    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    shift = np.zeros_like(ys)
    for x, upper, lower in EYE_LIDS:
        top, bottom = upper - 9.0, lower + 1.5  # from the lid crease to just below the lower lid
        across = np.exp(-((xs - x) ** 2) / (2 * 9.0 ** 2))
        ramp = np.clip((ys - top) / (bottom - top), 0, 1) * (ys <= bottom)
        shift += level * (bottom - upper) * ramp * across
    return cv2.remap(frame, xs, ys - shift, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def expression_frames(n_frames: int = 90, peak: int = 50, rise: int = 8, amount: float = 16.0,
                      blinks: tuple[int, ...] = ()) -> list[np.ndarray]:
    """Frames of a neutral face whose jaw drops from frame ``peak - rise`` to a maximum at ``peak``
    and closes again by ``peak + rise``; with a blink (``BLINK_LEVELS``) centred on each frame of
    ``blinks``."""
    base = face_frame()
    closure = np.zeros(n_frames)
    for centre in blinks:
        for offset, level in enumerate(BLINK_LEVELS, start=-(len(BLINK_LEVELS) // 2)):
            if 0 <= centre + offset < n_frames:
                closure[centre + offset] = max(closure[centre + offset], level)
    frames = []
    for index in range(n_frames):
        level = max(0.0, 1.0 - abs(index - peak) / rise)
        frames.append(blink(jaw_drop(base, amount * level), closure[index]))
    return frames


def frame_function(frames: list[np.ndarray], fps: float = 30.0):
    """A function of time for ``tests.media_av.mux_video`` that plays ``frames`` at ``fps``."""
    return lambda t: frames[min(int(round(t * fps)), len(frames) - 1)]
