"""Labelled datasets for an evaluation run: read, checked, pinned by content hash.

Four layouts, each read against a class set (``emo_core.labels.resolve_class_set``: a key or a
dataset name such as ``emoset``):

- a folder per class: ``DATA/<label>/<file>`` (files in deeper folders count for their class folder);
- a CSV file with ``path,label`` rows (a header row of exactly ``path,label`` is skipped);
- an EmoSet-style JSON file: a list of ``[label, image path, ...]`` rows (EmoSet's ``test.json``), a
  list of objects with ``image``/``path`` and ``emotion``/``label``, or an object ``{path: label}``;
- for video, a MER2023-style label file (``name label`` rows, comma or white space between them) with
  a folder of clips (``media_dir``, by default the label file's folder) in which ``name`` is found
  with or without its extension.

Paths in a file are relative to that file's folder. Labels are compared in lower case; a label that
is not a class of the set may be renamed by an explicit alias (``ALIASES`` or the caller's own, for
example ``happiness=happy``), and every alias used is listed in the run's summary. Before anything
runs, ``load_dataset`` reports in one error every label outside the set, missing or unreadable file,
and file whose content duplicates another's; an empty dataset is an error too. The manifest pins the
file list with SHA-256 content hashes.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from ..labels import VIDEO_CLASS_SETS, ClassSetChoice, resolve_class_set
from ..run_records import file_sha256

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")  # those emo_core.video.decode reads
MAX_PROBLEMS_SHOWN = 12

# A dataset label that is not a class of the set -> the classes it may stand for, the first one in the
# set wins. Explicit and short on purpose: nothing else is renamed, and the summary lists what was.
ALIASES: dict[str, tuple[str, ...]] = {
    "happiness": ("happy", "joy"), "happy": ("joy",), "joy": ("happy",),
    "sadness": ("sad",), "sad": ("sadness",),
    "anger": ("angry",), "angry": ("anger",),
    "fearful": ("fear",), "surprised": ("surprise",), "disgusted": ("disgust",),
    "worry": ("worried",), "amused": ("amusement",), "excited": ("excitement",), "content": ("contentment",),
}


class DatasetError(InvalidInputError):
    """The dataset cannot be evaluated as it is; ``problems`` lists every reason found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f"; and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{len(problems)} problem(s) with the dataset: " + "; ".join(shown) + more)


@dataclass(frozen=True)
class Sample:
    path: Path  # the file
    name: str  # its path relative to the dataset's folder, as recorded
    label: str  # a class of the set (after aliases)
    sha256: str


@dataclass
class Dataset:
    source: str  # the name of the folder or file it was read from
    layout: str  # "folders", "csv", "json" or "label file"
    choice: ClassSetChoice
    samples: list[Sample]
    aliases_used: dict[str, int] = field(default_factory=dict)  # "happiness -> happy": count
    total: int = 0  # samples before --limit

    @property
    def video(self) -> bool:
        return self.choice.key in VIDEO_CLASS_SETS

    @property
    def labels(self) -> tuple[str, ...]:
        return self.choice.class_set.labels

    @property
    def name(self) -> str:
        """The dataset's name for tables: the dataset the class set was asked by (EmoSet), else the class set's title."""
        return self.choice.dataset or self.choice.class_set.title

    def manifest(self) -> dict:
        return {"source": self.source, "layout": self.layout, "class_set": self.choice.key,
                "dataset": self.name, "labels": list(self.labels), "aliases_used": self.aliases_used,
                "samples_in_dataset": self.total,
                "samples": [{"path": s.name, "sha256": s.sha256, "label": s.label} for s in self.samples]}


def parse_aliases(pairs: list[str] | None) -> dict[str, str]:
    """``["happiness=happy", ...]`` -> ``{"happiness": "happy"}``."""
    aliases = {}
    for pair in pairs or []:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise InvalidInputError(f"an alias is written FROM=TO, got {pair[:60]!r}")
        aliases[source.strip().casefold()] = target.strip().casefold()
    return aliases


def load_dataset(data: str | Path, class_set: str, *, aliases: dict[str, str] | None = None,
                 media_dir: str | Path | None = None, limit: int | None = None,
                 confine_to: str | Path | None = None) -> Dataset:
    """Read and check a dataset (see the module docstring). ``limit`` keeps that many samples, chosen by
    content hash (a fixed, name-independent subset). ``confine_to`` refuses files outside that folder
    (for datasets from visitors: a CSV row or a link must not point elsewhere on the server)."""
    choice = resolve_class_set(class_set)
    video = choice.key in VIDEO_CLASS_SETS
    data = Path(data)
    if not data.exists():
        raise InvalidInputError(f"dataset {data.name} not found")
    if data.is_dir():
        layout, rows = "folders", _folder_rows(data, VIDEO_SUFFIXES if video else IMAGE_SUFFIXES)
    elif data.suffix.lower() == ".csv":
        layout, rows = "csv", _csv_rows(data)
    elif data.suffix.lower() == ".json":
        layout, rows = "json", _json_rows(data)
    else:
        layout, rows = "label file", _label_file_rows(data, Path(media_dir) if media_dir else data.parent)
    if media_dir and layout != "label file":
        raise InvalidInputError("a clip folder (media_dir) goes with a MER2023-style label file only")
    base = data if data.is_dir() else data.parent
    return _checked(data.name, layout, choice, rows, base, video, aliases or {}, limit,
                    Path(confine_to).resolve() if confine_to else None)


def _folder_rows(root: Path, suffixes: tuple[str, ...]) -> list[tuple[Path, str]]:
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith("."):
                rows.append((path, folder.name))
    return rows


def _csv_rows(path: Path) -> list[tuple[Path, str]]:
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if number == 1 and [c.strip().casefold() for c in row] == ["path", "label"]:
                continue
            if len(row) != 2:
                raise DatasetError([f"{path.name} line {number}: expected path,label"])
            rows.append((path.parent / row[0].strip(), row[1]))
    return rows


def _json_rows(path: Path) -> list[tuple[Path, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError([f"{path.name} is not JSON ({exc.__class__.__name__})"]) from None
    items = list(data.items()) if isinstance(data, dict) else data
    rows = []
    for number, item in enumerate(items if isinstance(items, list) else [None], start=1):
        if isinstance(item, (list, tuple)) and isinstance(data, dict):
            file, label = item  # {path: label}
        elif isinstance(item, (list, tuple)) and len(item) >= 2:
            label, file = item[0], item[1]  # EmoSet: [emotion, image path, annotation path]
        elif isinstance(item, dict) and (item.get("image") or item.get("path")) and \
                (item.get("emotion") or item.get("label")):
            file, label = item.get("image") or item.get("path"), item.get("emotion") or item.get("label")
        else:
            raise DatasetError([f"{path.name} entry {number}: expected [label, path, ...], "
                                "{\"image\": ..., \"emotion\": ...} or {path: label}"])
        if not isinstance(file, str) or not isinstance(label, str):
            raise DatasetError([f"{path.name} entry {number}: path and label must be strings"])
        rows.append((path.parent / file, label))
    return rows


def _label_file_rows(path: Path, media_dir: Path) -> list[tuple[Path, str]]:
    if not media_dir.is_dir():
        raise InvalidInputError(f"clip folder {media_dir.name} not found")
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for clip in media_dir.iterdir():
        if clip.is_file() and clip.suffix.lower() in VIDEO_SUFFIXES:
            by_stem[clip.stem].append(clip)
    rows = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DatasetError([f"{path.name} is not a text file of 'name label' rows"]) from None
    for number, line in enumerate(lines, start=1):
        parts = line.replace(",", " ").split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 2:
            raise DatasetError([f"{path.name} line {number}: expected 'name label'"])
        name, label = parts
        if number == 1 and (name.casefold(), label.casefold()) in (("name", "label"), ("name", "discrete")):
            continue
        direct = media_dir / name
        found = [direct] if direct.suffix.lower() in VIDEO_SUFFIXES else sorted(by_stem.get(name, []))
        rows.append((found[0] if len(found) == 1 else direct, label))
    return rows


def _checked(source: str, layout: str, choice: ClassSetChoice, rows: list[tuple[Path, str]], base: Path,
             video: bool, extra_aliases: dict[str, str], limit: int | None, confine_to: Path | None) -> Dataset:
    labels = choice.class_set.labels
    problems: list[str] = []
    aliases_used: Counter = Counter()
    outside: Counter = Counter()
    checked: list[tuple[Path, str, str]] = []
    for path, raw_label in rows:
        name = _display_name(path, base)
        label = raw_label.strip().casefold()
        if label not in labels:
            target = extra_aliases.get(label) or next((t for t in ALIASES.get(label, ()) if t in labels), None)
            if target in labels:
                aliases_used[f"{label} -> {target}"] += 1
                label = target
            else:
                outside[raw_label.strip()[:40]] += 1
                continue
        if confine_to is not None and not _inside(path, confine_to):
            problems.append(f"{name}: outside the dataset's folder")
            continue
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        if not video and not _readable_image(path):
            problems.append(f"{name}: not an image that can be read")
            continue
        checked.append((path, name, label))
    for label, count in outside.items():
        problems.append(f"label {label!r} ({count} sample(s)) is not a class of {choice.class_set.title} "
                        f"({', '.join(labels)}); add an alias FROM=TO if it names one")
    by_hash: dict[str, list[str]] = defaultdict(list)
    samples = []
    for path, name, label in checked:
        digest = file_sha256(path)
        by_hash[digest].append(name)
        samples.append(Sample(path, name, label, digest))
    for names in by_hash.values():
        if len(names) > 1:
            problems.append("duplicate files (same content): " + ", ".join(names[:4]))
    if problems:
        raise DatasetError(problems)
    if not samples:
        raise DatasetError([f"the dataset is empty: no {'video' if video else 'image'} files with labels found"])
    total = len(samples)
    if limit is not None:
        if limit < 1:
            raise InvalidInputError("limit must be at least 1")
        keep = {s.sha256 for s in sorted(samples, key=lambda s: s.sha256)[:limit]}
        samples = [s for s in samples if s.sha256 in keep]
    return Dataset(source, layout, choice, sorted(samples, key=lambda s: s.name), dict(aliases_used), total)


def _display_name(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.name


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except OSError:
        return False


def _readable_image(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.width > 0 and image.height > 0
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return False
