"""Labelled images for the generator, read from one of three layouts, with every input problem listed.

- ``folder``: one sub-folder per class (``root/awe/001.jpg``); the folder name is the label.
- ``csv``: columns ``path,label`` plus optional ``caption`` and attribute columns (``brightness``,
  ``colorfulness``, ``scene``, ``object``, ``facial_expression``, ``human_action``); paths are relative
  to the image root (the CSV's folder unless given).
- ``emoset``: EmoSet-style per-image annotation JSON (``emotion``, ``image``, the attributes above):
  a dataset folder holding ``annotation/``, a folder of JSON files, one JSON file with a record or a
  list of records, or EmoSet's split file (a list of ``[emotion, image path, annotation path]``).

A label outside the class set, a missing file, a folder or file that is not an image, an unreadable
annotation: each becomes an ``InputProblem`` (where, why) and the rest of the input is used. Only an
input that cannot be read at all (no such path, a CSV without its ``path``/``label`` columns) raises
``SourceError``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EmoError
from ..labels import label_for_word, resolve_class_set

ATTRIBUTE_NAMES = ("brightness", "colorfulness", "scene", "object", "facial_expression", "human_action")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
FORMATS = ("auto", "folder", "csv", "emoset")
CSV_REQUIRED = ("path", "label")


class SourceError(EmoError):
    """The input cannot be read at all."""


@dataclass(frozen=True)
class ImageItem:
    path: Path  # the file on disk
    image: str  # relative to the image root, with forward slashes (the sample's "image")
    label: str  # a label of the class set
    given: dict = field(default_factory=dict)  # attributes the input states, by EmoSet's names
    caption: str = ""  # a caption the input gives ("" when none)


@dataclass(frozen=True)
class InputProblem:
    where: str  # a file relative to the input, or "file.csv line 4"
    reason: str


@dataclass
class Source:
    root: Path  # the image root
    format: str
    class_set: str  # the class set's key
    items: list[ImageItem]
    problems: list[InputProblem]


def read_source(source: Path, class_set: str, fmt: str = "auto", image_root: Path | None = None) -> Source:
    """The labelled images of ``source`` (see the module docstring), sorted by relative path."""
    source = Path(source)
    if fmt not in FORMATS:
        raise SourceError(f"unknown input format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not source.exists():
        raise SourceError(f"the input {source.name} does not exist")
    chosen = resolve_class_set(class_set)
    labels, key = chosen.class_set.labels, chosen.key
    fmt = _detect(source) if fmt == "auto" else fmt
    reader = {"folder": _read_folder, "csv": _read_csv, "emoset": _read_emoset}[fmt]
    root, items, problems = reader(source, labels, key, Path(image_root) if image_root else None)
    items, problems = _drop_repeats(items, problems)
    return Source(root, fmt, key, sorted(items, key=lambda item: item.image), problems)


def _detect(source: Path) -> str:
    if source.is_file():
        if source.suffix.lower() == ".csv":
            return "csv"
        if source.suffix.lower() == ".json":
            return "emoset"
        raise SourceError(f"cannot tell the format of {source.name}: give a folder, a .csv or a .json file")
    if (source / "annotation").is_dir() or source.name == "annotation" or any(source.glob("*.json")):
        return "emoset"
    return "folder"


def _check_label(raw, labels: tuple[str, ...]) -> str | None:
    """The class-set label ``raw`` spells (case and surrounding blanks ignored), else None."""
    text = str(raw or "").strip().casefold()
    return text if text in labels else None


def _label_problem(where: str, raw, labels: tuple[str, ...], key: str) -> InputProblem:
    shown = str(raw or "").strip()[:40]
    hint = label_for_word(shown, labels) if shown else None
    advice = f" (did you mean {hint!r}?)" if hint else ""
    if not shown:
        return InputProblem(where, "no label")
    return InputProblem(where, f"label {shown!r} is not in the {key} class set ({', '.join(labels)}){advice}")


def _relative(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` with forward slashes, or None when it lies outside ``root``."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _image_file(path: Path, root: Path, where: str) -> tuple[str | None, InputProblem | None]:
    if not path.is_file():
        return None, InputProblem(where, "no such image file")
    relative = _relative(path, root)
    if relative is None:
        return None, InputProblem(where, "the image lies outside the image root; give --image-root")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None, InputProblem(where, f"not an image file name ({path.suffix or 'no suffix'})")
    return relative, None


# -- folder per class -----------------------------------------------------------------------------

def _read_folder(source: Path, labels, key, image_root):
    root = image_root or source
    items, problems = [], []
    for folder in sorted(p for p in source.iterdir() if not p.name.startswith(".")):
        if not folder.is_dir():
            problems.append(InputProblem(folder.name, "a file beside the class folders (expected one folder per class)"))
            continue
        label = _check_label(folder.name, labels)
        if label is None:
            problems.append(_label_problem(folder.name + "/", folder.name, labels, key))
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            relative, problem = _image_file(path, root, _relative(path, source) or path.name)
            if problem:
                problems.append(problem)
            else:
                items.append(ImageItem(path, relative, label))
    if not items and not problems:
        raise SourceError(f"{source.name} holds no class folders")
    return root, items, problems


# -- CSV ------------------------------------------------------------------------------------------

def _read_csv(source: Path, labels, key, image_root):
    root = image_root or source.parent
    try:
        with open(source, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [(name or "").strip() for name in (reader.fieldnames or [])]
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"{source.name} is not a readable CSV file ({exc})") from None
    missing = [name for name in CSV_REQUIRED if name not in columns]
    if missing:
        raise SourceError(f"{source.name} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                          f"it has: {', '.join(columns) or 'no header'}. Needed: path,label; optional: caption, "
                          f"{', '.join(ATTRIBUTE_NAMES)}")
    items, problems = [], []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        row = {(name or "").strip(): value for name, value in row.items()}
        where = f"{source.name} line {number}"
        raw_path = (row.get("path") or "").strip()
        if not raw_path:
            problems.append(InputProblem(where, "no path"))
            continue
        label = _check_label(row.get("label"), labels)
        if label is None:
            problems.append(_label_problem(where, row.get("label"), labels, key))
            continue
        path = Path(raw_path) if Path(raw_path).is_absolute() else root / raw_path
        relative, problem = _image_file(path, root, where)
        if problem:
            problems.append(problem)
            continue
        given = {name: _given_value(name, row[name]) for name in ATTRIBUTE_NAMES if (row.get(name) or "").strip()}
        items.append(ImageItem(path, relative, label, given, (row.get("caption") or "").strip()))
    return root, items, problems


def _given_value(name: str, raw):
    """A given attribute as stored: numbers for brightness/colorfulness when they parse, lists as lists."""
    if isinstance(raw, str):
        raw = raw.strip()
        if name in ("brightness", "colorfulness"):
            try:
                return float(raw)
            except ValueError:
                return raw
        if name == "object" and raw.startswith("["):
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                return raw
    return raw


# -- EmoSet-style JSON ----------------------------------------------------------------------------

def _read_emoset(source: Path, labels, key, image_root):
    if source.is_file():
        root = image_root or source.parent
        records = _load_json(source, source.name)
        if isinstance(records, InputProblem):
            raise SourceError(f"{source.name}: {records.reason}")
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list):
            raise SourceError(f"{source.name} holds neither an annotation record nor a list of them")
        entries = []
        for number, record in enumerate(records, start=1):
            where = f"{source.name} item {number}"
            if isinstance(record, list) and len(record) == 3:  # EmoSet's split file: [emotion, image, annotation]
                annotation = _load_json(root / str(record[2]), str(record[2]))
                if isinstance(annotation, InputProblem):
                    entries.append((where, annotation))
                    continue
                record = {**annotation, "emotion": annotation.get("emotion", record[0]), "image": record[1]}
            entries.append((where, record))
    else:
        if (source / "annotation").is_dir():
            root, folder = image_root or source, source / "annotation"
        elif source.name == "annotation":
            root, folder = image_root or source.parent, source
        else:
            root, folder = image_root or source, source
        entries = [(path.relative_to(folder).as_posix(), _load_json(path, path.name))
                   for path in sorted(folder.rglob("*.json"))]
        if not entries:
            raise SourceError(f"{source.name} holds no annotation JSON files")
    items, problems = [], []
    for where, record in entries:
        if isinstance(record, InputProblem):
            problems.append(InputProblem(where, record.reason))
            continue
        if not isinstance(record, dict):
            problems.append(InputProblem(where, "not an annotation record (a JSON object)"))
            continue
        label = _check_label(record.get("emotion"), labels)
        if label is None:
            problems.append(_label_problem(where, record.get("emotion"), labels, key))
            continue
        image = record.get("image") or (f"image/{label}/{record['image_id']}.jpg" if record.get("image_id") else "")
        if not image:
            problems.append(InputProblem(where, "no image path (an 'image' or 'image_id' field)"))
            continue
        relative, problem = _image_file(root / str(image), root, where)
        if problem:
            problems.append(problem)
            continue
        given = {name: _given_value(name, record[name]) for name in ATTRIBUTE_NAMES
                 if record.get(name) not in (None, "", [])}
        items.append(ImageItem(root / str(image), relative, label, given, str(record.get("caption") or "").strip()))
    return root, items, problems


def _load_json(path: Path, where: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return InputProblem(where, "no such annotation file")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return InputProblem(where, f"not valid JSON ({exc.__class__.__name__})")


def _drop_repeats(items: list[ImageItem], problems: list[InputProblem]):
    """One item per image file: a file listed twice is used once (its first listing) and said so."""
    seen: dict[str, ImageItem] = {}
    for item in items:
        if item.image in seen:
            first = seen[item.image]
            note = "" if first.label == item.label else f" (there as {first.label}, here as {item.label})"
            problems.append(InputProblem(item.image, f"listed twice; the first listing is used{note}"))
        else:
            seen[item.image] = item
    return list(seen.values()), problems
