"""Importing a generator run folder (``run.json`` + ``samples.jsonl``) into the review store.

A run folder holds ``samples.jsonl`` (LLaVA-format samples with ``type``, ``label``, ``attributes``
and ``provenance``) and ``run.json`` (``run_id`` and ``image_root``, the folder sample images are
relative to; a relative root is read from the run folder). A run without ``run.json`` or without a
``run_id`` gets a stable id derived from its sample ids. Importing again adds only samples not yet
in the store, so it is idempotent and picks up a run that grew after a resumed generation. A row
that is not a valid sample is reported and left out; a half-written last line (a generator killed
mid-write) is left for the next import.

The overlap share of a run (samples two annotators review) is kept at ``round(share * samples)``
as the run grows; which samples are chosen depends only on their ids (ranked by a hash), so it is
the same on every machine and every import.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..run_records import load_records
from ..store import Store
from .schema import REVIEW_MIGRATIONS

SAMPLE_TYPES = ("categorical", "conversation", "reasoning")
SAMPLES_FILE, RUN_FILE = "samples.jsonl", "run.json"


class RunFolderError(ValueError):
    """A folder that is not a readable generator run; the message says why."""


@dataclass
class ImportReport:
    run_id: str
    added: int = 0
    already_imported: int = 0
    overlap_added: int = 0
    problems: list[str] = field(default_factory=list)
    torn_tail_bytes: int = 0


def open_review_store(store: Store) -> Store:
    store.migrate("review", REVIEW_MIGRATIONS)
    return store


def derived_run_id(sample_ids: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(sample_ids)).encode("utf-8")).hexdigest()
    return f"run-{digest[:16]}"


def overlap_rank(run_id: str, sample_id: str) -> str:
    return hashlib.sha256(f"{run_id}\x00{sample_id}".encode("utf-8")).hexdigest()


def sample_problem(row: dict) -> str | None:
    """Why ``row`` is not a reviewable sample, or None."""
    if not isinstance(row.get("id"), str) or not row["id"]:
        return "no id"
    if not isinstance(row.get("image"), str) or not row["image"]:
        return "no image path"
    if row.get("type") not in SAMPLE_TYPES:
        return f"type is {row.get('type')!r}, not one of {', '.join(SAMPLE_TYPES)}"
    turns = row.get("conversations")
    if not isinstance(turns, list) or not turns or len(turns) % 2:
        return "conversations is not a list of question and answer turns"
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("from") != ("human", "gpt")[index % 2] \
                or not isinstance(turn.get("value"), str):
            return f"turn {index + 1} is not a {('human', 'gpt')[index % 2]} turn with a text value"
    return None


def prompt_version(row: dict) -> str:
    provenance = row.get("provenance") if isinstance(row.get("provenance"), dict) else {}
    return str(provenance.get("prompt_version") or provenance.get("prompt_hash") or "unknown")


def read_run(folder: Path) -> tuple[str, Path, dict, list[dict], list[str], int]:
    """``(run_id, image_root, run.json, valid samples, problems, torn tail bytes)`` of a run folder."""
    folder = Path(folder)
    samples_path = folder / SAMPLES_FILE
    if not samples_path.is_file():
        raise RunFolderError(f"{folder.name}: no {SAMPLES_FILE} in this folder")
    meta = {}
    if (folder / RUN_FILE).is_file():
        try:
            meta = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RunFolderError(f"{RUN_FILE} is not JSON: {error}") from None
        if not isinstance(meta, dict):
            raise RunFolderError(f"{RUN_FILE} is not a JSON object")
    problems, samples = [], []
    try:
        records, torn = load_records(samples_path, key="id")
    except KeyError:
        raise RunFolderError(f"a row of {SAMPLES_FILE} has no id") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise RunFolderError(str(error)) from None
    for key, row in records.items():
        problem = sample_problem(row) if isinstance(row, dict) else "not a JSON object"
        if problem:
            problems.append(f"sample {str(key)[:40]!r}: {problem}")
        else:
            samples.append(row)
    run_id = str(meta.get("run_id") or derived_run_id([row["id"] for row in samples]))
    image_root = Path(meta.get("image_root") or ".")
    if not image_root.is_absolute():
        image_root = folder / image_root
    return run_id, image_root.resolve(), meta, samples, problems, torn


def import_run(store: Store, folder: Path, overlap: float) -> ImportReport:
    """Adds the run's new samples to the store in one transaction; returns what was done."""
    run_id, image_root, meta, samples, problems, torn = read_run(folder)
    report = ImportReport(run_id=run_id, problems=problems, torn_tail_bytes=torn)
    for row in samples:
        if not (image_root / row["image"]).resolve().is_relative_to(image_root):
            report.problems.append(f"sample {row['id'][:40]!r}: image path leaves the image root; shown without image")
    open_review_store(store)
    with store.write() as db:
        db.execute("INSERT INTO review_runs (run_id, folder, image_root, meta, imported_at) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT(run_id) DO UPDATE SET folder = excluded.folder, image_root = excluded.image_root, "
                   "meta = excluded.meta",
                   (run_id, str(Path(folder).resolve()), str(image_root), json.dumps(meta), time.time()))
        known = {row[0] for row in db.execute("SELECT sample_id FROM review_items WHERE run_id = ?", (run_id,))}
        new = [row for row in samples if row["id"] not in known]
        report.already_imported = len(samples) - len(new)
        overlapping = db.execute("SELECT COUNT(*) FROM review_items WHERE run_id = ? AND reviews_needed = 2",
                                 (run_id,)).fetchone()[0]
        wanted = max(0, min(len(new), round(overlap * (len(known) + len(new))) - overlapping))
        chosen = {row["id"] for row in sorted(new, key=lambda row: overlap_rank(run_id, row["id"]))[:wanted]}
        for row in new:
            db.execute("INSERT INTO review_items (run_id, sample_id, type, label, prompt_version, sample, reviews_needed) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (run_id, row["id"], row["type"], str(row.get("label") or ""), prompt_version(row),
                        json.dumps(row, ensure_ascii=False), 2 if row["id"] in chosen else 1))
        report.added, report.overlap_added = len(new), len(chosen)
    return report
