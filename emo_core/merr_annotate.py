"""Annotate a folder of videos into MERR records, resumably, with a progress bar.

    python -m emo_core.merr_annotate videos/ --out merr.json [--class-set mer2023] [--task reason]
    python -m emo_core.merr_annotate videos/ --out merr.jsonl

Each finished video is appended at once, as one line ``{"video", "sha256", "record"}``, to a JSONL
journal (flushed and synced line by line): ``--out merr.jsonl`` is the journal itself; with
``--out merr.json`` the journal is ``merr.jsonl`` beside it and ``merr.json`` (records keyed by
file name) is written from the journal when the run ends. A run killed at any point loses at most
the video it was working on; a rerun skips every video whose content hash is already in the
journal, redoes those whose content changed, and leaves one line per video. A video that cannot be
analysed, or whose record does not validate, is listed with the reason in ``<out>.errors.json`` and
the run goes on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from .errors import EmoError, UnknownClassSetError
from .labels import get_class_set
from .merr import validate_record
from .settings import Settings
from .video.decode import VIDEO_SUFFIXES


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_json_atomically(path: Path, data) -> None:
    _write_atomically(path, json.dumps(data, ensure_ascii=False, indent=1))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def journal_path(out: Path) -> Path:
    """The JSONL journal behind ``out``: ``out`` itself, or ``<stem>.jsonl`` beside a ``.json`` file."""
    out = Path(out)
    return out if out.suffix.lower() == ".jsonl" else out.with_suffix(".jsonl")


class Journal:
    """An append-only JSONL file of ``{"video", "sha256", "record"}`` lines; the last line of a video wins.

    A line cut short by a kill (no newline, not JSON) is ignored when read and dropped by ``compact``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        self.lines = self.unreadable = 0
        text = self.path.read_text(encoding="utf-8", errors="replace") if self.path.is_file() else ""
        self._cut_short = bool(text) and not text.endswith("\n")  # the last line was being written at a kill
        if text:
            for line in text.splitlines():
                if not line.strip():
                    continue
                self.lines += 1
                try:
                    entry = json.loads(line)
                    name, record = entry["video"], entry["record"]
                except (ValueError, KeyError, TypeError):
                    self.unreadable += 1
                    continue
                self.entries.pop(name, None)  # re-inserted: the dict keeps the order of last writes
                self.entries[name] = {"video": name, "sha256": entry.get("sha256", ""), "record": record}

    def is_done(self, name: str, digest: str) -> bool:
        return self.entries.get(name, {}).get("sha256") == digest

    def append(self, name: str, digest: str, record: dict) -> None:
        entry = {"video": name, "sha256": digest, "record": record}
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        if self._cut_short:  # keep the cut line on a line of its own
            line, self._cut_short = "\n" + line, False
        with self.path.open("ab") as out:
            out.write(line.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        self.lines += 1
        self.entries.pop(name, None)
        self.entries[name] = entry

    def compact(self) -> None:
        """Rewrite the file with one line per video (atomically), if it holds more than that."""
        if self.lines == len(self.entries) and self.unreadable == 0:
            return
        _write_atomically(self.path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.entries.values()))
        self.lines, self.unreadable = len(self.entries), 0

    def records(self) -> dict[str, dict]:
        return {name: entry["record"] for name, entry in self.entries.items()}


def _seed_from_json(journal: Journal, out: Path) -> None:
    """Carry the records of a MERR JSON written before journals existed (with its ``.sha256.json``
    side file) into a new journal, so they are neither redone nor dropped."""
    if journal.path.exists() or out == journal.path or not out.is_file():
        return
    hashes = read_json(out.with_name(out.name + ".sha256.json"))
    for name, record in read_json(out).items():
        journal.append(name, hashes.get(name, ""), record)


def annotate_folder(folder: Path, out: Path, *, class_set: str = "mer2023", task: str = "reason",
                    settings: Settings | None = None, show_progress: bool = True) -> dict:
    """Annotate every video in ``folder`` into ``out`` (.json or .jsonl); returns counts (done,
    skipped, failed). Raises ``UnknownClassSetError`` before any work for an unknown class set."""
    from tqdm import tqdm

    from .tasks.video_emotion import analyze_video

    get_class_set(class_set)
    settings = settings or Settings.from_env()
    videos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    journal = Journal(journal_path(out))
    _seed_from_json(journal, out)
    errors_path = out.with_name(out.name + ".errors.json")
    errors = read_json(errors_path)
    counts = {"done": 0, "skipped": 0, "failed": 0}

    def fail(name: str, message: str) -> None:
        if show_progress:
            tqdm.write(f"{name}: {message}", file=sys.stderr)
        errors[name] = message
        write_json_atomically(errors_path, errors)
        counts["failed"] += 1

    bar = tqdm(videos, unit="video", disable=not show_progress)
    for video in bar:
        bar.set_postfix_str(video.name)
        digest = file_sha256(video)
        if journal.is_done(video.name, digest):
            counts["skipped"] += 1
            continue
        try:
            result = analyze_video(video, class_set, settings=settings, task=task)
        except EmoError as exc:
            fail(video.name, str(exc))
            continue
        problems = validate_record(result.merr)
        if problems:
            fail(video.name, "invalid MERR record: " + "; ".join(problems))
            continue
        journal.append(video.name, digest, result.merr)
        if errors.pop(video.name, None) is not None:
            write_json_atomically(errors_path, errors)
        counts["done"] += 1
    journal.compact()
    if out != journal.path:
        write_json_atomically(out, journal.records())
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Annotate a folder of videos into MERR records (.json or .jsonl).")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, required=True,
                        help="merr.json (records keyed by file name, written at the end from merr.jsonl) or "
                             "merr.jsonl (one line per video, appended as each finishes)")
    parser.add_argument("--class-set", default=None,
                        help="class-set key or dataset name (mer2023, merr, dfew, ...); default: the video_class_set "
                             "setting (env EMO_VIDEO_CLASS_SET)")
    parser.add_argument("--task", choices=("emotion", "reason"), default="reason")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    settings = Settings.from_env()
    class_set = args.class_set or settings.video_class_set
    try:
        counts = annotate_folder(args.folder, args.out, class_set=class_set, task=args.task, settings=settings)
    except UnknownClassSetError as exc:
        parser.error(str(exc))
    print(f"{counts['done']} annotated, {counts['skipped']} already done, {counts['failed']} failed -> {args.out}")
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
