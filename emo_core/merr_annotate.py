"""Annotate a folder of videos into a MERR JSON file, resumably, with a progress bar.

    python -m emo_core.merr_annotate videos/ --out merr.json [--class-set mer2023] [--task reason]

Each finished video is written at once (the JSON file is replaced atomically), keyed by the file
name; a side file ``<out>.sha256.json`` keeps each video's content hash, so a rerun skips videos
already annotated and redoes those whose content changed. A video that cannot be analysed is
listed in ``<out>.errors.json`` and the run goes on.
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

from .errors import EmoError
from .merr import validate_record
from .settings import Settings
from .video.decode import VIDEO_SUFFIXES


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomically(path: Path, data) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def annotate_folder(folder: Path, out: Path, *, class_set: str = "mer2023", task: str = "reason",
                    settings: Settings | None = None, show_progress: bool = True) -> dict:
    """Annotate every video in ``folder`` into ``out``; returns counts (done, skipped, failed)."""
    from tqdm import tqdm

    from .tasks.video_emotion import analyze_video

    settings = settings or Settings.from_env()
    videos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    hashes_path = out.with_name(out.name + ".sha256.json")
    errors_path = out.with_name(out.name + ".errors.json")
    records, hashes, errors = read_json(out), read_json(hashes_path), read_json(errors_path)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    bar = tqdm(videos, unit="video", disable=not show_progress)
    for video in bar:
        bar.set_postfix_str(video.name)
        digest = file_sha256(video)
        if video.name in records and hashes.get(video.name) == digest:
            counts["skipped"] += 1
            continue
        try:
            result = analyze_video(video, class_set, settings=settings, task=task)
        except EmoError as exc:
            errors[video.name] = str(exc)
            write_json_atomically(errors_path, errors)
            counts["failed"] += 1
            continue
        problems = validate_record(result.merr)
        if problems:
            raise AssertionError(f"{video.name}: invalid MERR record: {problems}")
        records[video.name] = result.merr
        hashes[video.name] = digest
        errors.pop(video.name, None)
        write_json_atomically(out, records)
        write_json_atomically(hashes_path, hashes)
        if errors_path.exists():
            write_json_atomically(errors_path, errors)
        counts["done"] += 1
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Annotate a folder of videos into a MERR JSON file.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--class-set", default="mer2023")
    parser.add_argument("--task", choices=("emotion", "reason"), default="reason")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    counts = annotate_folder(args.folder, args.out, class_set=args.class_set, task=args.task)
    print(f"{counts['done']} annotated, {counts['skipped']} already done, {counts['failed']} failed -> {args.out}")
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
