"""A small demo dataset written at run time from a few photos, for the Instruction sensitivity tab.

Each source photo becomes a few variants (as is, mirrored, cropped, darker), saved at most 640 px wide
in a folder per class. The labels are the ones the caller assigns to its photos: the set shows how an
evaluation works, it is not a benchmark.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

VARIANTS = ("as_is", "mirrored", "cropped", "darker")


def write_demo_set(folder: str | Path, sources: dict[str, list[Path]], variants: int = len(VARIANTS)) -> Path:
    folder = Path(folder)
    for label, paths in sources.items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        for path in paths:
            with Image.open(path) as opened:
                image = ImageOps.exif_transpose(opened).convert("RGB")
            image.thumbnail((640, 640))
            for name in VARIANTS[:variants]:
                _variant(image, name).save(folder / label / f"{Path(path).stem}_{name}.jpg", quality=90)
    return folder


def _variant(image: Image.Image, name: str) -> Image.Image:
    if name == "mirrored":
        return ImageOps.mirror(image)
    if name == "cropped":
        w, h = image.size
        return image.crop((w // 12, h // 12, w - w // 12, h - h // 12))
    if name == "darker":
        return ImageEnhance.Brightness(image).enhance(0.7)
    return image
