"""The generator's run folder: ``samples.jsonl``, ``rejected.jsonl``, ``ledger.json`` and ``run.json``.

``run.json`` holds the run's stable ``run_id`` (a UUID written by the first ``generate`` into the
folder; the review desk imports runs by it), the parameters of the first invocation and a list of every
invocation with its parameters and how it ended. The two JSONL files are ``run_records.RecordFile``s:
appended and fsynced record by record, a torn last line repaired on the next open, no key written twice.
A ``rejected.jsonl`` record is keyed by ``key`` (one per failed attempt) and names its sample ``id``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from ..errors import EmoError
from ..run_records import RecordFile, load_records
from .ledger import now_iso

SAMPLES, REJECTED, LEDGER, RUN = "samples.jsonl", "rejected.jsonl", "ledger.json", "run.json"


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def ledger_path(self) -> Path:
        return self.path / LEDGER

    def info(self) -> dict:
        """run.json; raises ``EmoError`` for a folder no generate has written."""
        try:
            return json.loads((self.path / RUN).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise EmoError(f"{self.path.name} is not a generator run folder (no {RUN})") from None

    def start(self, params: dict) -> dict:
        """Creates the folder and run.json on the first call; appends this invocation either way. A run
        keeps its class set: mixing label sets in one folder is refused."""
        self.path.mkdir(parents=True, exist_ok=True)
        if (self.path / RUN).exists():
            info = self.info()
            before = info["params"].get("class_set")
            if before != params.get("class_set"):
                raise EmoError(f"this run folder holds samples of the {before} class set, not "
                               f"{params.get('class_set')}; give another --out")
        else:
            info = {"run_id": str(uuid.uuid4()), "created": now_iso(), "params": params, "invocations": []}
        info["invocations"].append({"started": now_iso(), "finished": None, "status": "running", "params": params})
        self.write_info(info)
        return info

    def finish(self, info: dict, **outcome) -> None:
        info["invocations"][-1].update(finished=now_iso(), **outcome)
        self.write_info(info)

    def write_info(self, info: dict) -> None:
        temporary = self.path / (RUN + ".tmp")
        temporary.write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, self.path / RUN)

    def open_samples(self) -> RecordFile:
        return RecordFile.open(self.path / SAMPLES, key="id")

    def open_rejected(self) -> RecordFile:
        return RecordFile.open(self.path / REJECTED, key="key")

    def samples(self) -> list[dict]:
        """The samples in the order they were written (read only; no repair)."""
        records, _ = load_records(self.path / SAMPLES, key="id")
        return list(records.values())
