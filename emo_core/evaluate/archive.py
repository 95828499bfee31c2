"""Datasets that visitors hand over: an uploaded zip unpacked safely, or a folder under an allowed root.

``extract_zip`` refuses, before writing anything, a zip with more entries than allowed, whose
declared unpacked size is over the limit, or that holds an entry escaping its root (an absolute
path, a ``..`` part, a drive letter, a symbolic link); while unpacking it counts the bytes really
written, so a zip that lies about its sizes (a zip bomb) stops at the limit too. ``dataset_entry``
finds what to evaluate in the unpacked folder: its one CSV / JSON / label file, or the class folders
(descending through a single top folder). ``folder_under_root`` accepts a visitor's folder only inside
the operator's ``eval_data_root``. Messages never name server paths.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import InputTooLargeError, InvalidInputError

CHUNK = 1 << 16
LABEL_FILE_SUFFIXES = (".csv", ".json", ".txt")


def extract_zip(zip_path: str | Path, destination: str | Path, *, max_bytes: int, max_files: int) -> Path:
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError):
        raise InvalidInputError("the upload is not a zip file that can be read") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > max_files:
            raise InputTooLargeError(f"the zip holds {len(entries)} entries, over the limit of {max_files}")
        if sum(e.file_size for e in entries) > max_bytes:
            raise InputTooLargeError(f"the zip unpacks to more than {max_bytes / 1e6:.0f} MB, the limit")
        targets = [(entry, _safe_target(entry, root)) for entry in entries]
        written = 0
        for entry, target in targets:
            if target is None:
                continue  # a folder entry or macOS metadata
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(entry) as source, open(target, "wb") as out:
                    while chunk := source.read(CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise InputTooLargeError(f"the zip unpacks to more than {max_bytes / 1e6:.0f} MB, the "
                                                     "limit (its declared sizes were wrong)")
                        out.write(chunk)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
                raise InvalidInputError(f"the zip entry {PurePosixPath(entry.filename).name!r} cannot be unpacked "
                                        f"({type(exc).__name__})") from None
    return destination


def _safe_target(entry: zipfile.ZipInfo, root: Path) -> Path | None:
    name = entry.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    shown = PurePosixPath(name).name[:60] or "(unnamed)"
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        raise InvalidInputError(f"the zip entry {shown!r} points outside the zip's folder; refused")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise InvalidInputError(f"the zip entry {shown!r} is a symbolic link; refused")
    if entry.is_dir() or not parts or parts[0] == "__MACOSX" or parts[-1].startswith("._"):
        return None
    target = (root / Path(*parts)).resolve()
    if not target.is_relative_to(root):
        raise InvalidInputError(f"the zip entry {shown!r} points outside the zip's folder; refused")
    return target


def dataset_entry(folder: Path) -> Path:
    """What ``load_dataset`` should read in an unpacked upload: its one label file, else its class folders."""
    folder = Path(folder)
    for _ in range(3):
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in LABEL_FILE_SUFFIXES
                 and not p.name.startswith(".")]
        folders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
        if len(files) == 1:
            return files[0]
        if len(files) > 1:
            raise InvalidInputError("the zip holds several label files (" + ", ".join(sorted(p.name for p in files))[:200]
                                    + "); keep one")
        if len(folders) == 1 and not any(p.is_file() for p in folder.iterdir()):
            folder = folders[0]
            continue
        return folder
    return folder


def folder_under_root(text: str, allowed_root: str) -> Path:
    """The folder a visitor named, relative to (and inside) ``allowed_root``."""
    if not allowed_root:
        raise InvalidInputError("reading folders on the server is turned off here (no eval_data_root is set)")
    root = Path(allowed_root).resolve()
    relative = (text or "").strip().lstrip("/\\")
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise InvalidInputError("that folder is outside the folder this server allows")
    if not target.exists():
        raise InvalidInputError(f"no folder or file {PurePosixPath(relative).name or '(root)'!r} under the allowed folder")
    return target


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
