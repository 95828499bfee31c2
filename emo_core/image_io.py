"""Loading user images safely into upright 8-bit RGB, with a note for everything done to them.

Handles: grayscale, palette, CMYK, RGBA/LA (composited on white), 16-bit and float images, WebP,
animated images (first frame), EXIF orientation. Refuses with ``InvalidInputError`` what is not an
image or is corrupt, and with ``InputTooLargeError`` what is over the pixel limit, checked from the
header before any pixel is decoded (the decompression-bomb guard). Large images are downscaled to
``analysis_max_side`` right after decoding.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import InputTooLargeError, InvalidInputError

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


@dataclass
class LoadedImage:
    image: Image.Image  # upright RGB, at most analysis_max_side on its longest side
    original_size: tuple[int, int]  # (width, height) as stored, before rotation and downscaling
    format: str
    notes: list[str] = field(default_factory=list)
    name: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.image.tobytes() + repr(self.image.size).encode()).hexdigest()


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = 60_000_000,
    max_side: int = 1920,
    max_bytes: int | None = None,
) -> LoadedImage:
    """Decode ``source`` (path, bytes, PIL image or HxWxC array) into a :class:`LoadedImage`."""
    name = ""
    if isinstance(source, Image.Image):
        pil, fmt = source, source.format or "PIL"
        _check_pixels(pil.size, max_pixels)
        original_size = pil.size
    elif isinstance(source, np.ndarray):
        pil, fmt = _from_array(source), "array"
        _check_pixels(pil.size, max_pixels)
        original_size = pil.size
    else:
        data, name = _read_bytes(source, max_bytes)
        original_size, pil, fmt = _open(data, max_pixels, max_side)

    notes: list[str] = []
    if getattr(pil, "is_animated", False) and getattr(pil, "n_frames", 1) > 1:
        notes.append(f"animated {fmt} with {pil.n_frames} frames: only the first frame was analysed")
        pil.seek(0)
    try:
        upright = ImageOps.exif_transpose(pil)
    except Exception:  # a broken EXIF block must not make a good image unreadable
        upright = pil
        notes.append("EXIF orientation could not be read; the image is used as stored")
    if upright is not pil and upright.size != pil.size:
        notes.append("rotated upright from its EXIF orientation")
    elif upright is not pil and _exif_orientation(pil) not in (None, 1):
        notes.append("flipped upright from its EXIF orientation")

    try:
        rgb = _to_rgb(upright, notes)
    except (OSError, ValueError) as exc:  # truncated pixel data surfaces only on decode
        raise InvalidInputError(f"the image data is corrupt or truncated ({exc})") from None

    if max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        new_size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(new_size, Image.Resampling.LANCZOS)
    if max(rgb.size) < max(original_size):
        width, height = original_size
        notes.append(f"downscaled from {width}x{height} to {rgb.width}x{rgb.height} for analysis")
    return LoadedImage(rgb, original_size, fmt, notes, name)


def _read_bytes(source, max_bytes: int | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), ""
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(f"no such file: {path.name}")
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InputTooLargeError(f"{path.name} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
        data, name = path.read_bytes(), path.name
    if not data:
        raise InvalidInputError(f"{name or 'the upload'} is empty (0 bytes)")
    if max_bytes is not None and len(data) > max_bytes:
        raise InputTooLargeError(f"the upload is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
    return data, name


def _open(data: bytes, max_pixels: int, max_side: int) -> tuple[tuple[int, int], Image.Image, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            pil = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        if isinstance(exc, (Image.DecompressionBombWarning, Image.DecompressionBombError)):
            raise InputTooLargeError(f"the image is too large to decode safely ({exc})") from None
        raise InvalidInputError("the file is not an image in a format we can read (JPEG, PNG, WebP, GIF, BMP, TIFF)") from None
    except OSError as exc:
        raise InvalidInputError(f"the image data is corrupt or truncated ({exc})") from None
    _check_pixels(pil.size, max_pixels)
    stored_size = pil.size
    if pil.format == "JPEG" and max(pil.size) > 2 * max_side:
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale (never below the downscaled size): a huge JPEG never
        # needs its full-size buffer. The box is the downscaled size itself: a square max_side box
        # needs the short side to stay over max_side too, and kept 4000x3000 or 5472x3648 photos whole.
        scale = max_side / max(pil.size)
        pil.draft(pil.mode, (math.ceil(pil.width * scale), math.ceil(pil.height * scale)))
    return stored_size, pil, pil.format or "unknown"


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InputTooLargeError(
            f"the image is {width}x{height} ({width * height / 1e6:.0f} MP), over the "
            f"{max_pixels / 1e6:.0f} MP limit"
        )


def _exif_orientation(pil: Image.Image) -> int | None:
    try:
        return pil.getexif().get(0x0112)
    except Exception:
        return None


def _to_rgb(pil: Image.Image, notes: list[str]) -> Image.Image:
    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(pil, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        notes.append(f"{mode} image scaled to 8 bits")
        return Image.fromarray(array, "L").convert("RGB")
    if mode == "F":
        array = np.asarray(pil, dtype=np.float64)
        lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
        array = (array - lo) / (hi - lo or 1.0) * 255.0
        notes.append("floating-point image stretched to 8 bits")
        return Image.fromarray(np.nan_to_num(array).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append("transparent areas composited on white")
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
    if mode == "RGB":
        pil.load()
        return pil
    return pil.convert("RGB")


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InvalidInputError(f"an image array must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.dtype != np.uint8:
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return Image.fromarray(array[..., :3])


ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, not a half-grey picture
