"""Humour captions for many images into one CSV, one row per caption with its provenance, resumably.

    python -m emo_core.humour photos/ more.jpg --out captions.csv [--n 3] [--backend B --model M]

Each image's captions are appended, as soon as they are written, to a JSONL journal beside the CSV
(``captions.csv.jsonl``; ``emo_core.run_records``), keyed by the image's content hash and everything
that decides its captions (n, temperature, seed, backend, model, prompt version). A rerun skips the
images already done with the same request and rewrites the CSV from the journal, so a run killed at
any point loses at most the image in progress. An image that cannot be read, or whose model failed
part-way, gets a row with the error (and any captions written before), is not journalled, and is
tried again on the next run. Fewer captions than asked for (the checks dropped some) is not an
error: the ``shortfall`` column says why.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..backends import backend_lease
from ..errors import EmoError
from ..run_records import RecordFile, file_sha256, record_key
from ..settings import Settings
from .captions import OFFLINE_MODEL_NAME, checked_request, humour_captions, prompt_version

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
CSV_COLUMNS = ("image", "caption_index", "caption", "seed", "temperature", "backend", "model", "prompt_version",
               "reads_picture", "words_in_image", "cues", "shortfall", "written_at", "sha256", "error")


@dataclass
class BatchCounts:
    written: int = 0  # images captioned in this run
    skipped: int = 0  # images already in the journal with the same request
    failed: int = 0
    captions: int = 0  # rows of captions in the CSV


def image_files(sources: Iterable[str | Path]) -> list[Path]:
    """The image files named, and those directly inside the folders named (sorted), in the order given."""
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            files += sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(source)
    return list(dict.fromkeys(files))


def journal_path(out: Path) -> Path:
    return Path(out).with_name(Path(out).name + ".jsonl")


def caption_images(sources: Sequence[str | Path], out: Path, *, n: int = 3, temperature: float = 0.8,
                   seed: int = 0, settings: Settings | None = None,
                   progress: Callable[[Iterable], Iterable] | None = None) -> BatchCounts:
    """Caption every image into the CSV ``out`` (see the module docstring); returns the counts.
    ``progress`` wraps the list of images (a tqdm bar on the command line)."""
    n, temperature, seed = checked_request(n, temperature, seed)  # before any work, not once per image
    settings = settings or Settings.from_env()
    files = image_files(sources)
    out = Path(out)
    counts = BatchCounts()
    rows: list[dict] = []
    with backend_lease(settings.backend, settings) as backend, RecordFile.open(journal_path(out), key="key") as journal:
        offline = backend.judges_from_cues
        model = OFFLINE_MODEL_NAME if offline else backend.model_label
        version = prompt_version("humour_fewshot" if offline else "humour")
        for path in (progress or iter)(files):
            try:
                digest = file_sha256(path)
            except OSError as exc:
                rows.append(_error_row(path, f"cannot read the file ({exc.strerror or exc})"))
                counts.failed += 1
                continue
            key = record_key(digest, n, temperature, seed, settings.backend, model, version)
            record = journal.get(key)
            if record is None:
                try:
                    result = humour_captions(path, n, temperature, seed, backend=backend, settings=settings)
                except EmoError as exc:
                    rows.append(_error_row(path, str(exc), digest))
                    counts.failed += 1
                    continue
                record = _record(key, path, digest, result)
                if result.failure:  # not journalled: the next run asks the model again
                    rows += [dict(row, error=result.failure) for row in _rows(record, path)]
                    counts.failed += 1
                    continue
                journal.append(record)
                counts.written += 1
            else:
                counts.skipped += 1
            caption_rows = _rows(record, path)
            counts.captions += sum(1 for row in caption_rows if row["caption"])
            rows += caption_rows
    _write_csv(out, rows)
    return counts


def _record(key: str, path: Path, digest: str, result) -> dict:
    return {"key": key, "image": str(path), "sha256": digest, "written_at": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "result": {name: value for name, value in result.to_dict().items()
                                        if name not in ("attributes", "draft", "timings")}}


def _rows(record: dict, path: Path) -> list[dict]:
    result = record["result"]
    common = dict(image=str(path), backend=result["backend"], model=result["model"],
                  prompt_version=result["prompt_version"], reads_picture=result["reads_picture"],
                  words_in_image=" / ".join(result["words"]), cues="; ".join(result["cues"]),
                  shortfall=result["shortfall"], written_at=record["written_at"], sha256=record["sha256"], error="")
    rows = [dict(common, caption_index=index, caption=caption["text"], seed=caption["seed"],
                 temperature=caption["temperature"]) for index, caption in enumerate(result["captions"], start=1)]
    return rows or [dict(common, caption_index="", caption="", seed="", temperature=result["temperature"])]


def _error_row(path: Path, message: str, digest: str = "") -> dict:
    row = {column: "" for column in CSV_COLUMNS}
    row.update(image=str(path), sha256=digest, error=message)
    return row


def _write_csv(out: Path, rows: list[dict]) -> None:
    """Write the CSV whole, atomically: a reader never sees half of it."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=out.parent, prefix=out.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(buffer.getvalue())
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
