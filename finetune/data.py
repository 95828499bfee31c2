"""Training data: the three file layouts read into one list of question-answer examples, then mixed.

Layouts (detected from the records' keys; a file can hold only one):
- ``llava``: the generator's ``export --format llava`` (LLaVA's training format), a JSON list of
  ``{"id", "image", "conversations": [{"from": "human", "value"}, {"from": "gpt", "value"}, ...]}``;
  a conversation with several turns gives one example per turn (InstructBLIP and LAVIS train on single
  turns, and so do both recipes here). The first question's ``<image>`` marker is dropped: the recipes
  place the image themselves, as the ``hf`` backend does at inference.
- ``emovit``: EmoVIT's own ``all.json`` has the same record shape, one turn per record, the image a file
  name in one flat folder, and no type; read by the same code as ``llava``.
- ``instructblip``: the generator's ``export --format instructblip``: ``{"id", "sample_id", "image",
  "text_input", "text_output", "type", "label"}``, one record per turn.

A record's type is its ``type`` key when it has one; otherwise (LLaVA export, ``all.json``) it is
inferred, an assumption stated here: *categorical* when the answer is only ``Predict(ed) emotion:
<one word>``; *reasoning* when the question asks "why" or the answer has a ``Reason:`` part; otherwise
*conversation*. A categorical example's label is its ``label`` key, else the word its answer names.

Mixing (the paper's ablations, one command each): ``types`` keeps the listed types (Table 2:
categorical; + conversation; + reasoning); ``fraction`` keeps that share of the *samples* (all turns of
a sample stay together), chosen by a hash of the seed and the sample so that a smaller fraction is a
subset of a larger one (Table 4).

Every image is checked before training: a missing or unreadable file stops the run with the records
that name it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from emo_core.run_records import record_key

from . import FinetuneError
from .config import TYPES, DataConfig

IMAGE_MARKER = "<image>"
_CATEGORICAL_ANSWER = re.compile(r"^\s*predict(?:ed)?\s+emotion\s*:\s*([A-Za-z][A-Za-z-]*)\s*\.?\s*$", re.IGNORECASE)
_WHY = re.compile(r"^\s*why\b", re.IGNORECASE)
_REASON = re.compile(r"\breason\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Example:
    id: str  # unique within the file (record id, plus the turn number for multi-turn records)
    sample: str  # the sample it belongs to: the unit that fraction selection keeps or drops
    image: str  # as written in the file (relative to the image folder)
    question: str
    answer: str
    type: str
    label: str | None


def detect_layout(records: list) -> str:
    if not isinstance(records, list) or not records:
        raise FinetuneError("a training file must be a non-empty JSON list of records")
    first = records[0]
    if not isinstance(first, dict):
        raise FinetuneError("the records must be JSON objects")
    if "conversations" in first:
        return "llava"
    if "text_input" in first and "text_output" in first:
        return "instructblip"
    raise FinetuneError("unrecognised record format: expected LLaVA/EmoVIT records (id, image, conversations) or "
                        f"the instructblip export (image, text_input, text_output); the first record has keys "
                        f"{', '.join(sorted(map(str, first)))}")


def infer_type(question: str, answer: str) -> str:
    if _CATEGORICAL_ANSWER.match(answer):
        return "categorical"
    if _WHY.match(question) or _REASON.search(answer):
        return "reasoning"
    return "conversation"


def _label_of(answer: str) -> str | None:
    match = _CATEGORICAL_ANSWER.match(answer)
    return match.group(1).casefold() if match else None


def read_json(path: str | Path, what: str = "data file"):
    """The parsed JSON of ``path``; a missing or malformed file is a ``FinetuneError`` naming ``what``."""
    path = Path(path)
    if not path.is_file():
        raise FinetuneError(f"{what} {path.name} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FinetuneError(f"{path.name} is not a JSON file: {exc}") from None


def read_examples(path: str | Path) -> list[Example]:
    path = Path(path)
    records = read_json(path)
    layout = detect_layout(records)
    examples: list[Example] = []
    for number, record in enumerate(records):
        where = f"{path.name} record {number}"
        if not isinstance(record, dict) or not isinstance(record.get("image"), str) or not record["image"]:
            raise FinetuneError(f"{where}: every record needs an \"image\" path")
        if layout == "llava":
            examples += _llava_turns(record, number, where)
        else:
            examples.append(_instructblip_record(record, number, where))
    ids = Counter(e.id for e in examples)
    if len(ids) < len(examples):  # EmoVIT's all.json reuses its 5-character ids; make them unique
        examples = [Example(f"{e.id}@{n}", e.sample, e.image, e.question, e.answer, e.type, e.label)
                    for n, e in enumerate(examples)]
    return examples


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FinetuneError(f"{where}: empty or missing text")
    return value


def _llava_turns(record: dict, number: int, where: str) -> list[Example]:
    turns = record.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2 or len(turns) % 2:
        raise FinetuneError(f"{where}: \"conversations\" must hold question-answer pairs")
    record_id = str(record.get("id", number))
    out = []
    for turn in range(len(turns) // 2):
        asked, answered = turns[2 * turn], turns[2 * turn + 1]
        if not isinstance(asked, dict) or not isinstance(answered, dict) \
                or asked.get("from") != "human" or answered.get("from") != "gpt":
            raise FinetuneError(f"{where}: turn {turn} must be a \"human\" question then a \"gpt\" answer")
        question = _text(asked.get("value"), where).replace(IMAGE_MARKER, "").strip()
        answer = _text(answered.get("value"), where).strip()
        kind = record.get("type") or infer_type(question, answer)
        if kind not in TYPES:
            raise FinetuneError(f"{where}: unknown type {kind!r}")
        label = record.get("label") if kind == "categorical" and record.get("label") else _label_of(answer)
        out.append(Example(f"{record_id}-{turn}" if len(turns) > 2 else record_id,
                           f"{kind}|{record_id}|{record['image']}", record["image"], question, answer, kind, label))
    return out


def _instructblip_record(record: dict, number: int, where: str) -> Example:
    question = _text(record.get("text_input"), where).replace(IMAGE_MARKER, "").strip()
    answer = _text(record.get("text_output"), where).strip()
    kind = record.get("type") or infer_type(question, answer)
    if kind not in TYPES:
        raise FinetuneError(f"{where}: unknown type {kind!r}")
    record_id = str(record.get("id", number))
    sample = str(record.get("sample_id") or record_id)
    label = record.get("label") if kind == "categorical" and record.get("label") else _label_of(answer)
    return Example(record_id, f"{kind}|{sample}|{record['image']}", record["image"], question, answer, kind, label)


def select(examples: list[Example], types: list[str], fraction: float, seed: int) -> list[Example]:
    """The examples of ``types``, then ``fraction`` of their samples (seeded hash order), in file order."""
    kept = [e for e in examples if e.type in types]
    samples = sorted({e.sample for e in kept}, key=lambda sample: record_key(seed, sample))
    chosen = set(samples[:round(len(samples) * fraction)])
    return [e for e in kept if e.sample in chosen]


def check_images(examples: list[Example], folder: str | Path) -> None:
    """Every image exists and Pillow can read its header; otherwise one error listing (up to 5) problems."""
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise FinetuneError(f"image folder {folder.name} not found")
    problems: list[str] = []
    for image in sorted({e.image for e in examples}):
        path = folder / image
        try:
            with Image.open(path) as opened:
                opened.verify()
        except FileNotFoundError:
            problems.append(f"{image}: missing")
        except Exception as exc:  # Pillow raises many types for a bad file
            problems.append(f"{image}: not a readable image ({type(exc).__name__})")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise FinetuneError(f"{len(problems)} image{'s' if len(problems) > 1 else ''} of the data cannot be used "
                            f"(relative to --image-folder): {shown}")


@dataclass
class Splits:
    train: list[Example]
    val: list[Example]


def load_splits(config: DataConfig, seed: int) -> Splits:
    train = select(read_examples(config.data), config.types, config.fraction, seed)
    if not train:
        raise FinetuneError(f"no training examples of type {', '.join(config.types)} in {Path(config.data).name}")
    val = read_examples(config.val_data) if config.val_data else []
    check_images(train + val, config.image_folder)
    return Splits(train, val)


def type_counts(examples: list[Example]) -> dict[str, int]:
    counts = Counter(e.type for e in examples)
    return {t: counts.get(t, 0) for t in TYPES}
