"""Image emotion classification and affective reasoning (EmoVIT's tasks) over a chosen class set.

``analyze_image`` loads the image safely, measures its cues with the offline perception models (for
the visuals and EmoVIT's attribute list, whatever the backend), asks the backend for the label
(``score`` when it can, else ``generate`` + parse) and for the reason (``generate`` with the reasoning
prompt when it can, else a template filled from the measured cues, which the result says).
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Sequence

from PIL import Image

from .. import prompts
from ..backends import Backend, get_backend, user_message
from ..cues.perception import ImagePerception, get_perceiver
from ..errors import EmoError
from ..image_io import ImageSource, load_image
from ..labels import get_class_set
from ..parsing import format_prediction, parse_prediction
from ..settings import Settings
from ..timing import Laps
from .offline_reason import compose_reason

FACE_BASIS = "face expressions (FER2013 model) mapped by a fixed table"
LOW_LEVEL_BASIS = "low-level cues only (no face found; no model judged the emotion)"


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the analysed (upright, downscaled) image
    detector_score: float
    expression: str
    confidence: float
    expression_probs: dict[str, float]


@dataclass
class ImageEmotionResult:
    label: str | None  # None when a generated answer named no label of the class set
    distribution: dict[str, float]  # over the class set, in its order; empty if the backend gave none
    reason: str
    answer: str  # "Predicted emotion: X. Reason: ..."
    class_set: str
    basis: str  # what the label rests on, in words
    confidence: float
    faces: list[FaceResult]
    cues: dict
    raw_text: str  # the model's own text, if a text model answered
    notes: list[str]
    backend: str
    image_size: tuple[int, int]
    name: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    image: Image.Image | None = field(default=None, repr=False, compare=False)  # the analysed image

    def to_dict(self) -> dict:
        """JSON-ready fields (everything but the image)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "image"}


def _plain(value):
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return _plain(asdict(value))
    return value


def analyze_image(
    image: ImageSource,
    class_set: str = "mikels8",
    backend: Backend | str | None = None,
    settings: Settings | None = None,
) -> ImageEmotionResult:
    """Classify the emotion of one image and explain it. Raises ``EmoError`` subclasses on bad input."""
    settings = settings or Settings.from_env()
    chosen = get_class_set(class_set)
    labels = list(chosen.labels)
    backend = backend if isinstance(backend, Backend) else get_backend(backend, settings)
    timings: dict[str, float] = {}
    lap = Laps(timings)

    loaded = load_image(
        image,
        max_pixels=settings.max_image_pixels,
        max_side=settings.analysis_max_side,
        max_bytes=int(settings.max_upload_mb * 1e6),
    )
    lap("load")
    with tempfile.TemporaryDirectory(prefix="emolens-") as workdir:
        # Backends take media as paths: hand them the upright, converted, downscaled image.
        path = Path(workdir) / "image.jpg"
        loaded.image.save(path, quality=95)
        lap("normalise")
        perception = get_perceiver(settings.min_face_score, settings.max_faces).perceive_file(path)
        lap("perception")
        if not perception.from_cache:
            timings.update({f"perception.{k}": v for k, v in perception.timings.items()})
        label, dist, raw_text, basis = _classify(backend, path, labels, perception)
        lap("classify")
        reason, reason_text = _reason(backend, path, labels, label, dist, perception)
        raw_text = "\n\n".join(t for t in (raw_text, reason_text) if t)
        lap("reason")
    timings["total"] = lap.total()

    confidence = dist.get(label, 0.0) if label else 0.0
    answer = format_prediction(label or "unparsed", reason)
    return ImageEmotionResult(
        label=label,
        distribution=dist,
        reason=reason,
        answer=answer,
        class_set=chosen.key,
        basis=basis,
        confidence=round(confidence, 4),
        faces=[
            FaceResult(r.face.box, round(r.face.score, 4), r.expression, round(r.confidence, 4),
                       {k: round(v, 4) for k, v in r.expression_probs.items()})
            for r in perception.faces
        ],
        cues=perception.attributes(),
        raw_text=raw_text,
        notes=loaded.notes,
        backend=backend.model_label,
        image_size=loaded.image.size,
        name=loaded.name,
        timings=timings,
        image=loaded.image,
    )


def _classify(backend: Backend, path: Path, labels: list[str], perception: ImagePerception):
    messages = user_message(prompts.render("categorical", options=labels), image=str(path))
    if backend.supports("score"):
        log_likelihoods = backend.score(messages, labels)
        top = max(log_likelihoods.values())
        exp = {label: math.exp(log_likelihoods[label] - top) for label in labels}
        total = sum(exp.values())
        dist = {label: value / total for label, value in exp.items()}
        if backend.judges_from_cues:
            basis = FACE_BASIS if perception.faces else LOW_LEVEL_BASIS
        else:
            basis = "model likelihood of each label"
        return max(dist, key=dist.get), dist, "", basis
    text = backend.generate(messages, max_new_tokens=32)
    parsed = parse_prediction(text, labels)
    dist = {label: (1.0 if label == parsed.label else 0.0) for label in labels} if parsed.parsed else {}
    return parsed.label, dist, text, f"model answer ({parsed.status})"


def _reason(backend: Backend, path: Path, labels: list[str], label, dist, perception) -> tuple[str, str]:
    if backend.supports("generate"):
        messages = user_message(prompts.render("reasoning", options=labels), image=str(path))
        text = backend.generate(messages, max_new_tokens=160)
        parsed = parse_prediction(text, labels)
        return (parsed.reason or text.strip()), text
    return compose_reason(perception, label, dist.get(label, 0.0) if label else 0.0), ""


# ---------------------------------------------------------------------------------------------
# several images at once

CSV_COLUMNS = ("file", "label", "confidence", "basis", "faces", "expressions", "brightness", "colorfulness",
               "objects", "human_action", "notes", "error")


@dataclass
class BatchRow:
    """One image of a batch: its result without the image's pixels (``result.image`` is None), or the error."""

    file: str
    result: ImageEmotionResult | None
    error: str = ""

    def as_row(self, labels: Sequence[str]) -> dict:
        row = {column: "" for column in CSV_COLUMNS}
        row["file"], row["error"] = self.file, self.error
        if self.result is not None:
            r = self.result
            row.update(
                label=r.label or "unparsed",
                confidence=f"{r.confidence:.3f}",
                basis=r.basis,
                faces=len(r.faces),
                expressions="; ".join(f"{f.expression} {f.confidence:.2f}" for f in r.faces),
                brightness=r.cues["brightness"],
                colorfulness=r.cues["colorfulness"],
                objects="; ".join(o["class"] for o in r.cues["object_classes"][:3]),
                human_action=r.cues["human_action"],
                notes="; ".join(r.notes),
            )
            for label in labels:
                row[f"p_{label}"] = f"{r.distribution.get(label, 0.0):.4f}"
        return row


def analyze_images(
    sources: Iterable[ImageSource],
    class_set: str = "mikels8",
    backend: Backend | str | None = None,
    settings: Settings | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[BatchRow]:
    """``analyze_image`` over many images; a bad file becomes a row with its error, not a failure.
    Each image is let go once analysed: a batch holds one decoded image at a time."""
    settings = settings or Settings.from_env()
    sources = list(sources)
    if len(sources) > settings.max_batch_images:
        raise EmoError(f"{len(sources)} images is over the limit of {settings.max_batch_images} per batch")
    rows = []
    for index, source in enumerate(sources):
        name = Path(source).name if isinstance(source, (str, Path)) else f"image {index + 1}"
        if progress:
            progress(index, len(sources), name)
        try:
            result = analyze_image(source, class_set, backend, settings)
        except EmoError as exc:
            rows.append(BatchRow(name, None, str(exc)))
            continue
        result.image = None  # the table and the CSV need none of its pixels
        rows.append(BatchRow(name, result))
    if progress:
        progress(len(sources), len(sources), "done")
    return rows


def rows_to_csv(rows: Sequence[BatchRow], class_set: str) -> str:
    labels = get_class_set(class_set).labels
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS) + [f"p_{label}" for label in labels])
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_row(labels))
    return buffer.getvalue()
