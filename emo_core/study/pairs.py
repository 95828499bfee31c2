"""Pairs CSVs: reading and checking one (``image, caption_a, system_a, caption_b, system_b``), and
writing one by joining two batch caption CSVs on the image.

Image paths in a CSV are relative to the CSV's folder unless absolute. Every problem of a file is
collected and reported at once, with row numbers as a spreadsheet shows them (the header is row 1).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import PairsFileError

PAIR_COLUMNS = ("image", "caption_a", "system_a", "caption_b", "system_b")
MAX_CAPTION_CHARS = 2000
MAX_SYSTEM_CHARS = 200
_MAX_LISTED = 10  # problems listed in one message; the rest are counted


@dataclass(frozen=True)
class Pair:
    row: int  # row number in the file (header = 1)
    image: str  # as written in the file
    image_path: Path  # resolved against the file's folder
    caption_a: str
    system_a: str
    caption_b: str
    system_b: str


def read_pairs(path: Path) -> list[Pair]:
    """The pairs of ``path``, or ``PairsFileError`` listing every bad row (images are not opened here)."""
    path = Path(path)
    rows = _read_csv(path, PAIR_COLUMNS)
    pairs, problems = [], []
    for number, row in rows:
        values = {name: (row.get(name) or "").strip() for name in PAIR_COLUMNS}
        missing = [name for name in PAIR_COLUMNS if not values[name]]
        if missing:
            problems.append(f"row {number}: empty {', '.join(missing)}")
            continue
        if values["system_a"] == values["system_b"]:
            problems.append(f"row {number}: system_a and system_b are both {values['system_a']!r}")
        for name, limit in (("caption_a", MAX_CAPTION_CHARS), ("caption_b", MAX_CAPTION_CHARS),
                            ("system_a", MAX_SYSTEM_CHARS), ("system_b", MAX_SYSTEM_CHARS)):
            if len(values[name]) > limit:
                problems.append(f"row {number}: {name} is longer than {limit} characters")
        image_path = resolve_image(path, values["image"])
        if not image_path.is_file():
            problems.append(f"row {number}: image {values['image']!r} not found")
        pairs.append(Pair(number, values["image"], image_path, values["caption_a"], values["system_a"],
                          values["caption_b"], values["system_b"]))
    if problems:
        raise PairsFileError(_summary(path, problems))
    if not pairs:
        raise PairsFileError(f"{path.name}: no pairs (only a header)")
    return pairs


def resolve_image(csv_path: Path, image: str) -> Path:
    image_path = Path(image).expanduser()
    return image_path if image_path.is_absolute() else Path(csv_path).parent / image_path


def join_caption_files(file_a: Path, file_b: Path, *, system_a: str = "", system_b: str = "") -> tuple[str, dict]:
    """A pairs CSV (as text) from two batch caption CSVs, joined on their ``image`` column.

    Each file needs ``image`` and ``caption`` columns; an image with several captions in a file
    contributes its first. A system is named by ``system_a``/``system_b``, else by the file's
    ``backend`` and ``model`` columns, else by the file's name. Images are written as absolute paths,
    so the pairs file works wherever it is saved. Returns the text and counts
    (``pairs``, ``only_a``, ``only_b``)."""
    captions_a, named_a = _first_captions(Path(file_a))
    captions_b, named_b = _first_captions(Path(file_b))
    system_a = system_a.strip() or named_a
    system_b = system_b.strip() or named_b
    if system_a == system_b:
        raise PairsFileError(f"both files name their system {system_a!r}: give --system-a and --system-b")
    common = [key for key in captions_a if key in captions_b]
    if not common:
        raise PairsFileError(f"{Path(file_a).name} and {Path(file_b).name} have no image in common")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PAIR_COLUMNS)
    for key in common:
        writer.writerow([str(key), captions_a[key], system_a, captions_b[key], system_b])
    counts = {"pairs": len(common), "only_a": len(captions_a) - len(common), "only_b": len(captions_b) - len(common)}
    return out.getvalue(), counts


def _first_captions(path: Path) -> tuple[dict[Path, str], str]:
    rows = _read_csv(path, ("image", "caption"))
    captions: dict[Path, str] = {}
    system = ""
    for _, row in rows:
        image, caption = (row.get("image") or "").strip(), (row.get("caption") or "").strip()
        if not image or not caption:
            continue
        key = Path(os.path.normpath(resolve_image(path, image).absolute()))
        captions.setdefault(key, caption)
        if not system:
            system = ":".join(part for part in ((row.get("backend") or "").strip(), (row.get("model") or "").strip())
                              if part)
    if not captions:
        raise PairsFileError(f"{path.name}: no row with both an image and a caption")
    return captions, system or path.stem


def _read_csv(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PairsFileError(f"{path.name}: no such file") from None
    except UnicodeDecodeError:
        raise PairsFileError(f"{path.name}: not UTF-8 text") from None
    except OSError as exc:
        raise PairsFileError(f"{path.name}: cannot be read ({exc.strerror})") from None
    try:
        reader = csv.DictReader(io.StringIO(text))
        header = [name.strip() for name in (reader.fieldnames or [])]
        reader.fieldnames = header
        missing = [name for name in required if name not in header]
        if missing:
            raise PairsFileError(f"{path.name}: missing column{'s' if len(missing) > 1 else ''} "
                                 f"{', '.join(missing)} (needs {', '.join(required)})")
        return [(index + 2, row) for index, row in enumerate(reader)]
    except csv.Error as exc:
        raise PairsFileError(f"{path.name}: not a readable CSV ({exc})") from None


def _summary(path: Path, problems: list[str]) -> str:
    listed = "; ".join(problems[:_MAX_LISTED])
    more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    return f"{path.name}: {len(problems)} problem{'s' if len(problems) > 1 else ''}: {listed}{more}"
