"""A resumable evaluation run: every (sample, instruction) answered once, written as it completes.

``run_evaluation`` writes into ``RUN_DIR``:

- ``manifest.json``: the dataset's files with content hashes and labels, and the run's configuration;
- ``predictions.jsonl``: one line per (sample, instruction), appended as each answer arrives
  (``emo_core.run_records.RecordFile``: flushed and fsynced; a torn last line from a kill is repaired),
  with ``path``, ``sha256``, ``label``, ``instruction`` (its id), ``answer``, ``prediction`` (a class or
  null), ``unparsed_reason`` and, with the score method, ``distribution``;
- ``summary.json``, ``summary.md``, ``summary.csv`` (``report``).

A record's ``key`` hashes what decides the answer: the file's content hash, the instruction's text, the
backend, the model, the method and the generation settings. A rerun skips every key already written,
so a finished rerun answers from the file without loading or calling the backend, and a run killed at
any moment loses at most the answer being written. A backend that fails part-way stops the run with a
clear error; what was written stays for the rerun. ``should_stop`` cancels between samples.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..backends import Backend, get_backend
from ..errors import EmoError, redact_paths
from ..run_records import RecordFile, record_key
from ..settings import Settings
from ..tasks.model_answer import LABEL_TOKENS
from . import answers, report
from .datasets import Dataset, Sample
from .instructions import Instruction

PREDICTIONS = "predictions.jsonl"
MANIFEST = "manifest.json"
# The answer is asked greedily (temperature 0, seed 0) in at most LABEL_TOKENS tokens.
GENERATION = {"max_new_tokens": LABEL_TOKENS, "temperature": 0.0, "seed": 0}
# Settings that change a backend's answers besides its model id.
_ANSWER_SETTINGS = {
    "offline": ("min_face_score", "max_faces", "analysis_max_side", "max_image_pixels", "video_sample_fps",
                "max_video_seconds", "video_max_side"),
    "hf": ("dtype", "quantization", "analysis_max_side", "max_image_pixels", "video_sample_fps", "max_video_seconds"),
    "openai": ("openai_base_url", "analysis_max_side", "max_image_pixels", "video_sample_fps", "max_video_seconds"),
}


class EvaluationError(EmoError):
    """A run stopped part-way (the predictions written so far are kept)."""


@dataclass
class RunOutcome:
    out_dir: Path
    summary: dict
    answered: int = 0  # answers asked of the backend in this run
    cached: int = 0  # answers taken from predictions.jsonl
    cancelled: bool = False
    seconds: float = 0.0
    records: list[dict] = field(default_factory=list)  # this run's rows, in dataset order


def generation_settings(backend_name: str, settings: Settings, method: str) -> dict:
    values = {name: str(getattr(settings, name)) for name in _ANSWER_SETTINGS.get(backend_name, ())}
    if method == "generate":
        values.update(GENERATION)
    return values


def run_evaluation(dataset: Dataset, out_dir: str | Path, instructions: list[Instruction], *,
                   settings: Settings | None = None, backend: Backend | None = None, method: str = "auto",
                   progress: Callable[[int, int, str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, n_boot: int | None = None,
                   before_first_question: Callable[[], None] | None = None) -> RunOutcome:
    """Evaluate ``dataset`` under each instruction; see the module docstring. ``before_first_question``
    runs once, just before the backend is first asked (not at all on a finished rerun)."""
    started = time.perf_counter()
    settings = settings or Settings.from_env()
    if not instructions:
        raise EmoError("no instruction to evaluate with")
    if len({i.id for i in instructions}) != len(instructions):
        raise EmoError("two instructions have the same id")
    backend = backend or get_backend(settings.backend, settings)  # constructing loads no model
    method = answers.resolve_method(backend, method)
    labels = list(dataset.labels)
    texts = {i.id: i.render(labels) for i in instructions}
    model = settings.model if backend.name != "offline" else ""
    answer_settings = generation_settings(backend.name, settings, method)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {"backend": backend.name, "model": model, "model_label": backend.model_label, "method": method,
              "generation": answer_settings, "instructions": [{"id": i.id, "text": texts[i.id], "source": i.source}
                                                              for i in instructions],
              "reads_instruction": not backend.judges_from_cues}
    _write_json(out_dir / MANIFEST, {**dataset.manifest(), "run": config})

    def key_of(sample: Sample, instruction: Instruction) -> str:
        return record_key(sample.sha256, texts[instruction.id], backend.name, model, method, answer_settings)

    outcome = RunOutcome(out_dir, {})
    # The offline models run under their own locks and release the GIL, so a few samples can be in
    # flight at once; other backends get one question at a time.
    workers = max(1, settings.eval_workers) if backend.judges_from_cues else 1
    processed: list[Sample] = []
    with RecordFile.open(out_dir / PREDICTIONS, key="key") as records, \
            tempfile.TemporaryDirectory(prefix="emolens-eval-") as workdir, ThreadPoolExecutor(workers) as pool:
        in_flight: deque = deque()

        def settle(keep: int) -> None:
            while len(in_flight) > keep:
                outcome.answered += in_flight.popleft().result()  # re-raises a failed sample's error

        for index, sample in enumerate(dataset.samples):
            if should_stop is not None and should_stop():
                outcome.cancelled = True
                break
            if progress is not None:
                progress(index, len(dataset.samples), sample.name)
            missing = [i for i in instructions if key_of(sample, i) not in records]
            outcome.cached += len(instructions) - len(missing)
            if missing:
                if before_first_question is not None:
                    before_first_question()
                    before_first_question = None
                in_flight.append(pool.submit(_answer_sample, sample, missing, records, key_of, texts, backend, method,
                                             dataset, settings, Path(workdir)))
                settle(workers - 1)
            processed.append(sample)
        settle(0)
        if progress is not None and not outcome.cancelled:
            progress(len(dataset.samples), len(dataset.samples), "done")
        for sample in processed:
            # a cached answer counts for this file's current name and label (the key is its content)
            outcome.records += [{**found, "path": sample.name, "label": sample.label}
                                for found in (records.get(key_of(sample, i)) for i in instructions) if found]
    outcome.summary = report.summarise(dataset, instructions, outcome.records, config, complete=not outcome.cancelled,
                                       n_boot=settings.eval_bootstrap if n_boot is None else n_boot)
    report.write(out_dir, outcome.summary)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _answer_sample(sample: Sample, missing: list[Instruction], records: RecordFile, key_of, texts: dict[str, str],
                   backend: Backend, method: str, dataset: Dataset, settings: Settings, workdir: Path) -> int:
    """Asks (and records) the missing answers of one sample; returns how many questions reached the backend."""
    media = None
    shared: answers.Answer | None = None  # a backend that does not read the instruction answers once per sample
    asked_count = 0
    try:
        for instruction in missing:
            if shared is None:
                if dataset.video:
                    answer = answers.ask_video(backend, sample.path, texts[instruction.id], dataset.choice.key,
                                               method, settings)
                else:
                    media = media or answers.prepare_image(sample.path, settings, workdir / f"{sample.sha256[:16]}.jpg")
                    answer = answers.ask_image(backend, media, texts[instruction.id], list(dataset.labels), method,
                                               settings)
                asked_count += 1
                if backend.judges_from_cues:
                    shared = answer
            else:
                answer = shared
            records.append(_record(key_of(sample, instruction), sample, instruction, answer))
        return asked_count
    except EmoError as exc:
        raise EvaluationError(f"stopped at {sample.name} ({instruction.id}): {redact_paths(str(exc))}. "
                              f"The {len(records)} answers written so far are kept in {PREDICTIONS}; rerun the "
                              "same command to resume.") from exc
    except Exception as exc:  # a model or library failing part-way: same promise, with its type
        raise EvaluationError(f"stopped at {sample.name} ({instruction.id}): the backend failed "
                              f"({type(exc).__name__}: {redact_paths(str(exc))[:300]}). The {len(records)} answers "
                              f"written so far are kept in {PREDICTIONS}; rerun the same command to resume.") from exc
    finally:
        if media is not None:
            media.unlink(missing_ok=True)


def _record(key: str, sample: Sample, instruction: Instruction, answer: answers.Answer) -> dict:
    record = {"key": key, "path": sample.name, "sha256": sample.sha256, "label": sample.label,
              "instruction": instruction.id, "answer": answer.answer, "prediction": answer.prediction,
              "unparsed_reason": answer.unparsed_reason}
    if answer.distribution is not None:
        record["distribution"] = answer.distribution
    if answer.abstained:
        record["abstained"] = answer.abstained
    return record


def _write_json(path: Path, data) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(temporary, path)
