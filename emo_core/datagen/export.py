"""``export``: a run folder's samples as training files, split into train and validation by image.

Formats:
- ``llava``: a JSON list of ``{"id", "image", "conversations"}`` (LLaVA's training format).
- ``instructblip``: a JSON list with one record per question-answer turn (InstructBLIP/LAVIS train on
  single turns): ``{"id": "<sample id>-<turn>", "sample_id", "image", "text_input", "text_output",
  "type", "label"}``; ``text_input`` is the question without the ``<image>`` marker (InstructBLIP places
  the image by its query tokens), ``text_output`` the answer. ``image`` is relative to the run's image
  root, as in samples.jsonl.

The split: a ``val_fraction`` of the images (rounded, at least one when the fraction is above 0 and
there are two images or more) goes to validation with all their samples, so no image is in both. Which
images is decided by a hash of the seed and the image's content, so adding images to a run keeps the
others where they were. ``FILE`` gets the training part, ``<stem>_val<suffix>`` the validation part.

``reviewed`` (from the review desk: sample id -> the latest accepted version of that sample) limits the
export to accepted samples and uses their reviewed text; None exports every generated sample.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import EmoError
from ..run_records import record_key
from .generate import IMAGE_TOKEN
from .run_folder import RunFolder

FORMATS = ("llava", "instructblip")


@dataclass
class ExportReport:
    train_file: Path
    val_file: Path | None
    train_samples: int
    val_samples: int
    train_records: int  # records written (instructblip: one per turn)
    val_records: int
    train_images: int
    val_images: int
    reviewed: bool  # True when only accepted versions were exported
    generated_samples: int  # samples in the run folder


def val_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_val{out.suffix}")


def export(run_dir: Path, fmt: str, out: Path, *, val_fraction: float = 0.0, seed: int = 0,
           reviewed: Mapping[str, dict] | None = None) -> ExportReport:
    if fmt not in FORMATS:
        raise EmoError(f"unknown export format {fmt!r}; choose {' or '.join(FORMATS)}")
    if not 0.0 <= val_fraction < 1.0:
        raise EmoError(f"--val-fraction must be at least 0 and below 1, got {val_fraction}")
    generated = RunFolder(Path(run_dir)).samples()
    samples = generated if reviewed is None else _accepted(generated, reviewed)
    images = sorted({_image_key(s) for s in samples}, key=lambda image: record_key(seed, image))
    val_count = round(len(images) * val_fraction)
    if val_fraction > 0 and len(images) >= 2:
        val_count = min(max(val_count, 1), len(images) - 1)
    val_images = set(images[:val_count])
    train = [s for s in samples if _image_key(s) not in val_images]
    val = [s for s in samples if _image_key(s) in val_images]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    train_records = _write(out, _records(train, fmt))
    val_file, val_records = None, 0
    if val_fraction > 0:
        val_file = val_path(out)
        val_records = _write(val_file, _records(val, fmt))
    return ExportReport(out, val_file, len(train), len(val), train_records, val_records, len(images) - len(val_images),
                        len(val_images), reviewed is not None, len(generated))


def _image_key(sample: dict) -> str:
    return sample.get("image_sha256") or sample["image"]


def _accepted(generated: list[dict], reviewed: Mapping[str, dict]) -> list[dict]:
    """The reviewed versions, in the order the run wrote their samples (unknown ids last, by id)."""
    order = {sample["id"]: position for position, sample in enumerate(generated)}
    chosen = []
    for sample_id in sorted(reviewed, key=lambda i: (order.get(i, len(order)), i)):
        version = dict(reviewed[sample_id])
        version.setdefault("id", sample_id)
        if not version.get("conversations") or not version.get("image"):
            raise EmoError(f"the reviewed version of sample {sample_id} has no conversations or image")
        chosen.append(version)
    return chosen


def _records(samples: list[dict], fmt: str) -> list[dict]:
    if fmt == "llava":
        return [{"id": s["id"], "image": s["image"], "conversations": s["conversations"]} for s in samples]
    records = []
    for sample in samples:
        turns = sample["conversations"]
        for number in range(0, len(turns) - 1, 2):
            question, answer = turns[number]["value"], turns[number + 1]["value"]
            question = question.removeprefix(IMAGE_TOKEN).lstrip("\n")
            records.append({"id": f"{sample['id']}-{number // 2}", "sample_id": sample["id"], "image": sample["image"],
                            "text_input": question, "text_output": answer, "type": sample.get("type"),
                            "label": sample.get("label")})
    return records


def _write(path: Path, records: list[dict]) -> int:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(temporary, path)
    return len(records)
