"""Resumable job output: an append-only JSONL file of records keyed by a content-derived id.

Long jobs (instruction-data generation, evaluation runs, MERR annotation of a folder) write each
result as soon as it is done, one JSON object per line, flushed and fsynced (threads appending at once
share an fsync; each append returns once its own line is on disk). A rerun opens the same
file, repairs a half-written last line left by a crash (it is cut off and reported), and skips every
key already present, so killing a job at any moment loses at most the record being written and never
writes one twice.

    with RecordFile.open(run_dir / "predictions.jsonl", key="key") as records:
        for item in work:
            key = record_key(file_sha256(item.path), instruction, backend, model)
            if key in records:
                continue
            records.append({"key": key, ...})
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

HASH_CHUNK_BYTES = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def record_key(*parts: Any, length: int = 24) -> str:
    """A stable id for a piece of work from the values that define it (JSON-encoded, then hashed)."""
    encoded = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:length]


class RecordFile:
    """An append-only JSONL file of records, each with a unique ``key`` field; thread-safe appends."""

    def __init__(self, path: Path, key: str, records: dict[str, dict], repaired_bytes: int):
        self.path = Path(path)
        self.key_field = key
        self._records = records
        self.repaired_bytes = repaired_bytes
        self._lock = threading.Lock()
        self._handle = open(self.path, "a", encoding="utf-8")
        self._sync_lock = threading.Lock()
        self._flushed = self._synced = 0  # lines handed to the OS / known to be on disk, this session

    @classmethod
    def open(cls, path: Path, key: str = "id") -> "RecordFile":
        """Opens (or creates) ``path``; loads the records written before and repairs a torn last line."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        records, repaired = load_records(path, key, repair=True)
        return cls(path, key, records, repaired)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict]:
        return iter(list(self._records.values()))

    def get(self, key: str) -> dict | None:
        return self._records.get(key)

    def append(self, record: dict) -> bool:
        """Writes ``record`` durably unless its key is already there; returns whether it was written (once
        its line is on disk)."""
        key = record[self.key_field]
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            if key in self._records:
                return False
            self._handle.write(line)
            self._handle.flush()
            self._records[key] = record
            self._flushed += 1
            mine = self._flushed
        try:
            self._sync(mine)
        except OSError:
            with self._lock:
                self._records.pop(key, None)
            raise
        return True

    def _sync(self, line_number: int) -> None:
        """Group commit: one fsync covers every line flushed before it started, so threads appending at
        once share fsyncs instead of queueing for one each (an fsync costs milliseconds)."""
        with self._sync_lock:
            if self._synced >= line_number:
                return
            with self._lock:
                covered = self._flushed
            os.fsync(self._handle.fileno())
            self._synced = covered

    def close(self) -> None:
        with self._lock:
            self._handle.close()

    def __enter__(self) -> "RecordFile":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def load_records(path: Path, key: str = "id", repair: bool = False) -> tuple[dict[str, dict], int]:
    """The records of a JSONL file by key (the first of duplicates wins) and the bytes of a torn tail.

    A last line without its newline is what a killed writer leaves; with ``repair`` it is cut off the
    file. A broken line elsewhere is not a crash artefact, so it raises.
    """
    path = Path(path)
    if not path.exists():
        return {}, 0
    data = path.read_bytes()
    complete_end = data.rfind(b"\n") + 1
    torn = len(data) - complete_end
    if torn and repair:
        log.warning("%s: cutting off a half-written last line (%d bytes) left by an interrupted run", path.name, torn)
        with open(path, "r+b") as handle:
            handle.truncate(complete_end)
            handle.flush()
            os.fsync(handle.fileno())
    records: dict[str, dict] = {}
    for number, raw in enumerate(data[:complete_end].splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path.name} line {number} is not JSON ({error.msg}); the file was edited or "
                             "damaged, not interrupted") from None
        records.setdefault(record[key], record)
    return records, torn
