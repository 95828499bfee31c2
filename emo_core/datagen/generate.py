"""``generate``: labelled images -> EmoVIT instruction samples in a resumable run folder.

Plan: per class and per type, ``per_class`` samples (default: one per image) spread over the class's
images in a seeded order; an image gets a second sample of a type (index 1, 2, ...) only when the quota
is larger than the class. Categorical samples are one per image (they would be identical). A sample's
``id`` hashes the image's bytes, the type, the index within the type and the prompt version, so a rerun
into the same folder finds what is done and asks for nothing twice.

Work: images are prepared one at a time (opened, attributes measured, caption), categorical samples are
written at once, and each LLM-written sample is one request on a thread pool of ``datagen_concurrency``
threads gated by the adaptive limiter. Every answer ends as a sample or as a record in rejected.jsonl.

Stops (clean: what is finished is kept, the rest is left for a rerun, and the report says why): the
budget or call limit, a fatal endpoint error (key refused, no such model, unreachable), ``max(5,
concurrency)`` failed requests in a row, a write error (a full disk), Ctrl-C, or ``stop`` being set.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..backends import Backend
from ..errors import EmoError, InvalidInputError, redact_paths
from ..image_io import load_image
from ..labels import resolve_class_set
from ..run_records import file_sha256, record_key
from ..settings import Settings
from .answers import AnswerRejected, parse_answer
from .attributes import context_text, describe_image, quoted_numbers
from .captions import caption_for, get_captioner
from .duplicates import QuestionIndex
from .ledger import Ledger, LimitReached, now_iso
from .llm_client import CallFailed, ChatCaller, api_key
from .prompt_set import CATEGORICAL_ANSWER, LLM_TYPES, TYPES, PromptSet, categorical_prompt, llm_prompt
from .run_folder import RunFolder
from .sources import ImageItem, InputProblem, read_source

IMAGE_TOKEN = "<image>"


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, outcome: str) -> None: ...  # "sample" or "rejected"


@dataclass
class GenerateReport:
    run_id: str
    out_dir: Path
    status: str  # "complete" (nothing left to do) or "stopped"
    stop_reason: str
    planned: int  # samples in the plan
    already_done: int  # found done in the folder before this invocation
    written: int  # samples written now
    rejected: int  # answers and failed requests recorded in rejected.jsonl now
    pending: int  # planned samples still to do (a rerun continues with them)
    input_problems: list[InputProblem]
    ledger: dict  # this invocation's counts
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Unit:
    item: ImageItem
    sha256: str
    type: str
    index: int
    prompt: PromptSet
    id: str


def parse_quotas(per_class: int | str | dict | None, types: tuple[str, ...]) -> dict[str, int | None]:
    """Samples per class for each type: None (one per image), a number for every type, or
    ``"conversation=50,reasoning=20"`` (types left out take one per image)."""
    if per_class is None or per_class == "":
        return {t: None for t in types}
    if isinstance(per_class, int):
        quotas = {t: per_class for t in types}
    elif isinstance(per_class, dict):
        quotas = {t: per_class.get(t) for t in types}
    elif "=" not in str(per_class):
        quotas = {t: int(per_class) for t in types}
    else:
        quotas = {t: None for t in types}
        for part in str(per_class).split(","):
            name, _, number = part.partition("=")
            if name.strip() not in types:
                raise ValueError(f"--per-class names {name.strip()!r}, which is not among --types ({', '.join(types)})")
            quotas[name.strip()] = int(number)
    if any(q is not None and q < 0 for q in quotas.values()):
        raise ValueError("--per-class must not be negative")
    return quotas


def generate(source: Path, out_dir: Path, class_set: str, *, types: tuple[str, ...] | list[str] = TYPES,
             per_class: int | str | dict | None = None, source_format: str = "auto", image_root: Path | None = None,
             seed: int = 0, budget_usd: float | None = None, max_calls: int | None = None,
             retry_rejected: bool = False, settings: Settings | None = None, captioner: Backend | None = None,
             progress: Progress | None = None, stop: threading.Event | None = None) -> GenerateReport:
    """Generates the samples of ``source`` into the run folder ``out_dir`` (see the module docstring).
    Raises ``EmoError`` before any work for unusable input or settings."""
    settings = settings or Settings.from_env()
    types = tuple(dict.fromkeys(types))
    unknown = [t for t in types if t not in TYPES]
    if unknown or not types:
        raise EmoError(f"unknown sample type {', '.join(unknown) or '(none)'}; choose among {', '.join(TYPES)}")
    chosen = resolve_class_set(class_set)
    try:
        quotas = parse_quotas(per_class, types)
    except ValueError as exc:
        raise EmoError(str(exc)) from None
    source_data = read_source(Path(source), chosen.key, source_format, image_root)
    problems = list(source_data.problems)
    prompts = {t: categorical_prompt(chosen.class_set.labels) if t == "categorical" else llm_prompt(t) for t in types}
    units, notes = _plan(source_data.items, chosen.class_set.labels, quotas, prompts, seed, problems)

    folder = RunFolder(Path(out_dir))
    params = {"source": str(source), "format": source_data.format, "image_root": str(source_data.root),
              "class_set": chosen.key, "dataset": chosen.dataset, "types": list(types),
              "per_class": {t: q for t, q in quotas.items()}, "seed": seed, "measure": settings.datagen_measure,
              "captioner": settings.datagen_captioner, "model": settings.datagen_model,
              "temperature": settings.datagen_temperature, "max_tokens": settings.datagen_max_tokens,
              "prompt_versions": {t: p.version for t, p in prompts.items()}, "budget_usd": budget_usd,
              "max_calls": max_calls}
    if budget_usd is not None and not (settings.datagen_price_input_per_1k or settings.datagen_price_output_per_1k):
        raise EmoError("--budget-usd needs the prices: set --price-input-per-1k and --price-output-per-1k "
                       "(EMO_DATAGEN_PRICE_INPUT_PER_1K, EMO_DATAGEN_PRICE_OUTPUT_PER_1K)")
    if any(unit.type in LLM_TYPES for unit in units):
        api_key(settings)  # a missing model or key fails before the run folder is touched
    if captioner is None and any(not unit.item.caption for unit in units):
        captioner = get_captioner(settings)
    info = folder.start(params)
    ledger = Ledger(folder.ledger_path, settings.datagen_price_input_per_1k, settings.datagen_price_output_per_1k,
                    settings.datagen_max_tokens, budget_usd, max_calls)
    job = _Job(folder, info, settings, ledger, units, problems, retry_rejected, progress, stop, notes)
    try:
        return job.run(captioner)
    finally:
        job.close()


def _plan(items: list[ImageItem], labels: tuple[str, ...], quotas: dict, prompts: dict[str, PromptSet], seed: int,
          problems: list[InputProblem]) -> tuple[list[_Unit], list[str]]:
    notes: list[str] = []
    by_label: dict[str, list[ImageItem]] = defaultdict(list)
    for item in items:
        by_label[item.label].append(item)
    hashes: dict[Path, str] = {}
    first_with: dict[str, ImageItem] = {}
    units = []
    for label in labels:
        images = sorted(by_label.get(label, []), key=lambda item: item.image)
        random.Random(f"{seed}:{label}").shuffle(images)
        if not images:
            continue
        for sample_type, quota in quotas.items():
            count = len(images) if quota is None else quota
            if sample_type == "categorical" and count > len(images):
                notes.append(f"{label}: categorical samples are one per image, so {len(images)} of the {count} asked for")
                count = len(images)
            for position in range(count):
                item = images[position % len(images)]
                if item.path not in hashes:
                    hashes[item.path] = _hash_or_problem(item, problems)
                sha = hashes[item.path]
                if sha is None:
                    continue
                twin = first_with.setdefault(sha, item)
                if twin is not item:
                    continue
                prompt = prompts[sample_type]
                index = position // len(images)
                units.append(_Unit(item, sha, sample_type, index, prompt, record_key(sha, sample_type, index, prompt.version)))
    for path, sha in hashes.items():
        if sha is not None and first_with[sha].path != path:
            problems.append(InputProblem(_relative_name(path, items), f"the same image as {first_with[sha].image}; "
                                                                      "used once"))
    return units, notes


def _relative_name(path: Path, items: list[ImageItem]) -> str:
    return next((item.image for item in items if item.path == path), path.name)


def _hash_or_problem(item: ImageItem, problems: list[InputProblem]) -> str | None:
    try:
        return file_sha256(item.path)
    except OSError as exc:
        problems.append(InputProblem(item.image, f"cannot be read ({exc.strerror or exc.__class__.__name__})"))
        return None


class _Job:
    """One invocation's work on a run folder (threads, counters, the stop flag)."""

    def __init__(self, folder: RunFolder, info: dict, settings: Settings, ledger: Ledger, units: list[_Unit],
                 problems: list[InputProblem], retry_rejected: bool, progress: Progress | None,
                 stop: threading.Event | None, notes: list[str]):
        self.folder, self.info, self.settings, self.ledger = folder, info, settings, ledger
        self.units, self.problems, self.progress, self.notes = units, problems, progress, notes
        self.stop = stop or threading.Event()
        self.stop_reason = ""
        self.samples = folder.open_samples()
        self.rejected = folder.open_rejected()
        self.retry_rejected = retry_rejected
        self.questions = QuestionIndex()
        self.caller: ChatCaller | None = None
        self.lock = threading.Lock()
        self.written = self.rejected_now = 0
        self.finished_ids: set[str] = set()
        self.failures_in_a_row = 0
        self.failure_limit = max(5, settings.datagen_concurrency)
        self.attempts: dict[str, int] = defaultdict(int)
        for record in self.rejected:
            if record.get("id") and record.get("stage") in ("answer", "call"):
                self.attempts[record["id"]] += 1

    # -- bookkeeping ------------------------------------------------------------------------------

    def done_ids(self) -> set[str]:
        done = {record["id"] for record in self.samples}
        if not self.retry_rejected:
            done |= {r["id"] for r in self.rejected
                     if r.get("id") and (r.get("stage") == "answer" or (r.get("stage") == "call" and not r.get("retryable")))}
        return done

    def halt(self, reason: str) -> None:
        with self.lock:
            if not self.stop_reason:
                self.stop_reason = reason
        self.stop.set()

    def write(self, records, record: dict, outcome: str, unit_id: str | None) -> None:
        try:
            records.append(record)
        except OSError as exc:
            self.halt(f"cannot write to the run folder ({exc.strerror or exc}); the samples written so far are kept: "
                      "free some space and rerun to continue")
            raise _Halted() from None
        with self.lock:
            if outcome == "sample":
                self.written += 1
            elif outcome == "rejected":
                self.rejected_now += 1
            if unit_id and outcome == "sample":
                self.finished_ids.add(unit_id)
        if self.progress and outcome in ("sample", "rejected"):
            self.progress.advance(outcome)

    # -- the run ----------------------------------------------------------------------------------

    def run(self, captioner: Backend | None) -> GenerateReport:
        for problem in self.problems:
            self.write(self.rejected, {"key": record_key("input", problem.where, problem.reason), "id": None,
                                       "stage": "input", "image": problem.where, "type": None, "label": None,
                                       "reason": problem.reason, "raw_text": "", "retryable": True,
                                       "created_at": now_iso()}, "input", None)
        done = self.done_ids()
        already = sum(1 for unit in self.units if unit.id in done)
        pending = [unit for unit in self.units if unit.id not in done]
        if any(unit.type in LLM_TYPES for unit in pending):
            self.caller = ChatCaller(self.settings, self.ledger).load()
        if self.progress:
            self.progress.start(len(pending))
        status = "stopped"
        try:
            self._work(pending, captioner)
            status = "stopped" if self.stop_reason else "complete"
        except KeyboardInterrupt:
            self.halt("interrupted (Ctrl-C); the samples written so far are kept: rerun to continue")
        finally:
            remaining = len([u for u in pending if u.id not in self.finished_ids and u.id not in self._final_rejections()])
            if status == "complete" and remaining:
                status = "stopped"
                self.stop_reason = self.stop_reason or f"{remaining} samples could not be made; see rejected.jsonl"
            self.ledger.finish(status, self.caller.limiter.lowest if self.caller else None)
            self.folder.finish(self.info, status=status, stop_reason=self.stop_reason, written=self.written,
                               rejected=self.rejected_now)
        session = {k: v for k, v in self.ledger.session.items() if k not in ("started", "finished", "status")}
        if session.get("usage_missing"):
            self.notes.append(f"{session['usage_missing']} answers reported no token usage: their cost is unknown and "
                              "not in the ledger's cost, nor counted against --budget-usd")
        return GenerateReport(self.info["run_id"], self.folder.path, status, self.stop_reason, len(self.units), already,
                              self.written, self.rejected_now, remaining, self.problems, session, self.notes)

    def _final_rejections(self) -> set[str]:
        return {r["id"] for r in self.rejected if r.get("id") and (
            r.get("stage") == "answer" or (r.get("stage") == "call" and not r.get("retryable")))}

    def _work(self, pending: list[_Unit], captioner: Backend | None) -> None:
        by_image: dict[str, list[_Unit]] = defaultdict(list)
        for unit in pending:
            by_image[unit.sha256].append(unit)
        concurrency = self.settings.datagen_concurrency
        queue_room = threading.BoundedSemaphore(concurrency * 4)  # prepared work waiting for a thread
        futures: list[Future] = []
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="datagen") as pool:
            try:
                self._submit(by_image.values(), captioner, pool, queue_room, futures)
                for future in futures:
                    exception = future.exception()
                    if exception is not None and not isinstance(exception, _Halted):
                        raise exception
            except KeyboardInterrupt:  # requests in flight finish (and are written); queued ones are dropped
                self.halt("interrupted (Ctrl-C); the samples written so far are kept: rerun to continue")
                for future in futures:
                    future.cancel()

    def _submit(self, groups, captioner: Backend | None, pool: ThreadPoolExecutor, queue_room: threading.Semaphore,
                futures: list[Future]) -> None:
        try:
            for units in groups:
                if self.stop.is_set():
                    return
                prepared = self._prepare(units[0], captioner)
                if prepared is None:
                    continue
                for unit in units:
                    if self.stop.is_set():
                        return
                    if unit.type == "categorical":
                        self._write_categorical(unit, prepared)
                        continue
                    while not queue_room.acquire(timeout=0.2):  # wait for room, or give up on a stop
                        if self.stop.is_set():
                            return
                    future = pool.submit(self._ask, unit, prepared)
                    future.add_done_callback(lambda _: queue_room.release())
                    futures.append(future)
        except _Halted:
            pass

    def _prepare(self, unit: _Unit, captioner: Backend | None) -> dict | None:
        """Opens the image and describes it; an image that does not open is recorded (all its units wait)."""
        item = unit.item
        try:
            loaded = load_image(item.path, max_pixels=self.settings.max_image_pixels,
                                max_side=self.settings.analysis_max_side)
        except InvalidInputError as exc:
            reason = f"the image does not open: {redact_paths(str(exc))}"
            self.write(self.rejected, {"key": record_key("input", item.image, reason), "id": None, "stage": "input",
                                       "image": item.image, "type": None, "label": item.label, "reason": reason,
                                       "raw_text": "", "retryable": True, "created_at": now_iso()}, "input", None)
            self.problems.append(InputProblem(item.image, reason))
            return None
        rgb = np.asarray(loaded.image)
        attributes = describe_image(item.given, rgb, self.settings.datagen_measure, self._perceiver)
        caption = caption_for(item.caption, item.path, captioner)
        return {"attributes": attributes, "caption": caption,
                "context": context_text(caption["text"], item.label, attributes),
                "quoted": quoted_numbers(attributes)}

    def _perceiver(self):
        from ..cues.perception import get_perceiver

        return get_perceiver(self.settings.min_face_score, self.settings.max_faces)

    def _sample(self, unit: _Unit, prepared: dict, turns: list[tuple[str, str]], provenance: dict) -> dict:
        conversations = []
        for number, (question, answer) in enumerate(turns):
            conversations += [{"from": "human", "value": f"{IMAGE_TOKEN}\n{question}" if number == 0 else question},
                              {"from": "gpt", "value": answer}]
        return {"id": unit.id, "image": unit.item.image, "conversations": conversations, "type": unit.type,
                "label": unit.item.label, "class_set": self.info["params"]["class_set"], "index": unit.index,
                "image_sha256": unit.sha256, "caption": prepared["caption"],
                "attributes": {name: attribute.to_dict() for name, attribute in prepared["attributes"].items()},
                "provenance": {"run_id": self.info["run_id"], **provenance, "created_at": now_iso()}}

    def _write_categorical(self, unit: _Unit, prepared: dict) -> None:
        answer = CATEGORICAL_ANSWER.format(label=unit.item.label)
        provenance = {"model": None, "written_by": "template (the categorical type asks no LLM)",
                      "prompt": unit.prompt.provenance()}
        self.write(self.samples, self._sample(unit, prepared, [(unit.prompt.system, answer)], provenance), "sample",
                   unit.id)

    def _ask(self, unit: _Unit, prepared: dict) -> None:
        if self.stop.is_set():
            return
        attempt = self.attempts[unit.id]
        seed = int(record_key(unit.id, attempt, length=8), 16)
        settings = self.settings
        base = {"model": settings.datagen_model, "temperature": settings.datagen_temperature, "seed": seed,
                "max_tokens": settings.datagen_max_tokens, "prompt": unit.prompt.provenance(),
                "context": prepared["context"]}
        try:
            completion = self.caller.complete(unit.prompt.messages(prepared["context"]), unit.type, seed)
        except LimitReached as exc:
            self.halt(f"{exc}; the samples written so far are kept: rerun (with a larger limit) to continue")
            return
        except CallFailed as exc:
            self._failed(unit, attempt, base, exc)
            return
        with self.lock:
            self.failures_in_a_row = 0
        call = {"raw_text": completion.text, "finish_reason": completion.finish_reason,
                "tokens": {"input": completion.tokens_in, "output": completion.tokens_out},
                "cost_usd": round(completion.cost_usd, 6), "attempts": completion.attempts,
                "seconds": round(completion.seconds, 3)}
        try:
            parsed = parse_answer(completion.text, unit.type, unit.item.label, prepared["quoted"],
                                  completion.finish_reason, settings.datagen_max_tokens)
        except AnswerRejected as exc:
            self.write(self.rejected, {"key": record_key(unit.id, "answer", attempt), "id": unit.id, "stage": "answer",
                                       "image": unit.item.image, "type": unit.type, "label": unit.item.label,
                                       "reason": str(exc), "raw_text": completion.text, "retryable": False,
                                       "attempt": attempt, **base, **{k: v for k, v in call.items() if k != "raw_text"},
                                       "created_at": now_iso()}, "rejected", unit.id)
            return
        duplicates = self.questions.add(unit.sha256, unit.id, parsed.questions)
        provenance = {**base, **call, "repairs": parsed.repairs, "near_duplicate_questions": duplicates}
        self.write(self.samples, self._sample(unit, prepared, parsed.turns, provenance), "sample", unit.id)

    def _failed(self, unit: _Unit, attempt: int, base: dict, exc: CallFailed) -> None:
        reason = redact_paths(str(exc))
        self.write(self.rejected, {"key": record_key(unit.id, "call", attempt), "id": unit.id, "stage": "call",
                                   "image": unit.item.image, "type": unit.type, "label": unit.item.label,
                                   "reason": reason, "raw_text": "", "retryable": exc.retryable, "attempt": attempt,
                                   "attempts": exc.attempts, **base, "created_at": now_iso()}, "rejected", unit.id)
        with self.lock:
            self.failures_in_a_row += 1
            in_a_row = self.failures_in_a_row
        if exc.fatal:
            self.halt(f"{reason}; stopped, the samples written so far are kept: rerun to continue")
        elif in_a_row >= self.failure_limit:
            self.halt(f"{in_a_row} requests in a row failed (the last: {reason}); stopped, the samples written so far "
                      "are kept: rerun to continue once the endpoint works")

    def close(self) -> None:
        self.samples.close()
        self.rejected.close()
        if self.caller is not None:
            self.caller.close()


class _Halted(Exception):
    """A write failed; the job's stop reason says why."""
