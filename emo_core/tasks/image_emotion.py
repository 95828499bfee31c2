"""Image emotion classification and affective reasoning (EmoVIT's tasks) over a chosen class set.

``analyze_image`` loads the image safely, measures its cues with the offline perception models (for
the visuals and EmoVIT's attribute list, whatever the backend), then asks the backend for a label and
a reason that agree (``model_answer``: the scored label's reason continues the answer that names it,
or label and reason come from one generated answer). A backend that cannot write (offline) gets a
reason from a template filled with the measured cues, which the result says. ``analyze_image_stream``
yields the result as the reason streams; batches (``analyze_images``) ask for no reason at all, since
the CSV has no column for it.

``distribution_kind`` says what the distribution is: "model scores" and "first-token probabilities"
are the model's own probabilities, "cue mapping" the offline table's, and a "parsed answer" has none.
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from PIL import Image

from .. import prompts
from ..backends import Backend, get_backend, user_message
from ..cues.perception import ImagePerception, get_perceiver
from ..errors import EmoError
from ..expression_map import decide, limits
from ..image_io import ImageSource, load_image
from ..labels import get_class_set, resolve_class_set
from ..parsing import format_prediction
from ..settings import Settings
from ..timing import Laps
from . import model_answer
from .offline_reason import compose_reason

FACE_BASIS = "face expressions (FER2013 model) mapped by a fixed table"
LOW_LEVEL_BASIS = "low-level cues only (no face found; no model judged the emotion)"
REASON_TOKENS = 160


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
    class_set: str  # the class set's key ("mikels8"), whatever name it was asked by
    basis: str  # what the label rests on, in words
    confidence: float | None  # the label's probability; None where the distribution holds none
    faces: list[FaceResult]
    cues: dict
    raw_text: str  # the model's own text, if a text model answered
    notes: list[str]
    backend: str
    image_size: tuple[int, int]
    reason_by_model: bool = False  # True when a language model wrote the reason
    reason_note: str = ""  # who wrote the reason, in words
    abstained: str = ""  # why the offline default names no label ("" when it names one)
    limits: list[str] = field(default_factory=list)  # what the offline default cannot tell apart in this class set
    name: str = ""
    dataset: str = ""  # the dataset the class set was asked by ("EmoSet"), "" when asked by its key
    timings: dict[str, float] = field(default_factory=dict)
    distribution_kind: str = model_answer.NO_LABEL  # see the module docstring
    answer_notes: list[str] = field(default_factory=list)  # about the model's answer (disagreements, gaps)
    complete: bool = True  # False on the partial results analyze_image_stream yields while the reason streams
    image: Image.Image | None = field(default=None, repr=False, compare=False)  # the analysed image

    def to_dict(self) -> dict:
        """JSON-ready fields (everything but the image)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "image"}

    @property
    def has_probabilities(self) -> bool:
        """Whether ``distribution`` holds probabilities to draw (not a label read from text)."""
        return bool(self.distribution) and self.distribution_kind in model_answer.PROBABILITY_KINDS


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
    with_reason: bool = True,
) -> ImageEmotionResult:
    """Classify the emotion of one image and explain it. Raises ``EmoError`` subclasses on bad input."""
    result = None
    for result in analyze_image_stream(image, class_set, backend, settings, with_reason):
        pass
    return result


def analyze_image_stream(
    image: ImageSource,
    class_set: str = "mikels8",
    backend: Backend | str | None = None,
    settings: Settings | None = None,
    with_reason: bool = True,
) -> Iterator[ImageEmotionResult]:
    """Yields the result as soon as the cues are measured and the label is known, then again each time the
    model's reason grows (the same object, updated); the last item is final (``complete``)."""
    settings = settings or Settings.from_env()
    chosen = resolve_class_set(class_set)
    labels = list(chosen.class_set.labels)
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
        result = ImageEmotionResult(
            label=None, distribution={}, reason="", answer="", class_set=chosen.key, basis="", confidence=None,
            faces=[
                FaceResult(r.face.box, round(r.face.score, 4), r.expression, round(r.confidence, 4),
                           {k: round(v, 4) for k, v in r.expression_probs.items()})
                for r in perception.faces
            ],
            cues=perception.attributes(), raw_text="", notes=loaded.notes, backend=backend.model_label,
            image_size=loaded.image.size, name=loaded.name, dataset=chosen.dataset, timings=timings, complete=False,
            image=loaded.image,
        )
        yield result  # the faces and cues, while the model is asked
        label_messages = user_message(prompts.render("categorical", options=labels), image=str(path))
        reason_messages = user_message(prompts.render("reasoning", options=labels), image=str(path))
        answers = model_answer.answer_stream(backend, label_messages, reason_messages, labels,
                                             with_reason=with_reason, reason_tokens=REASON_TOKENS)
        for answer in answers:
            if "classify" not in timings and (answer.label or answer.complete):
                lap("classify")
            _take_answer(result, answer, perception, with_reason, backend)
            if not answer.complete:
                yield result
        if backend.judges_from_cues:
            _decide_offline(result, labels, perception, with_reason)
        lap("reason")
    timings["total"] = lap.total()
    result.complete = True
    yield result


def _take_answer(result: ImageEmotionResult, answer: model_answer.ModelAnswer, perception: ImagePerception,
                 with_reason: bool, backend: Backend) -> None:
    result.label, result.distribution = answer.label, answer.distribution
    result.reason_by_model = answer.reason_by_model
    if with_reason and backend.supports("generate"):
        result.reason_note = (f"{backend.model_label} gave no reason (see the notes)"
                              if answer.complete and not answer.reason else f"written by {backend.model_label}")
    result.distribution_kind, result.confidence = answer.distribution_kind, answer.confidence
    result.reason, result.raw_text, result.answer_notes = answer.reason, answer.raw_text, answer.notes
    result.basis = answer.basis
    if answer.distribution_kind == model_answer.CUE_MAPPING:
        result.basis = FACE_BASIS if perception.faces else LOW_LEVEL_BASIS
    label = answer.label or ("unparsed" if answer.complete else "…")
    result.answer = format_prediction(label, answer.reason) if with_reason else f"Predicted emotion: {label}."

TEMPLATE_NOTE = "template from the measured cues (no language model wrote it)"


def _decide_offline(result: ImageEmotionResult, labels: list[str], perception: ImagePerception,
                    with_reason: bool) -> None:
    """The offline default's answer: a label only where the mapped distribution is clear (else it
    abstains and says why), what this class set cannot tell apart, and a template reason over the cues."""
    label, result.abstained = decide([result.distribution[name] for name in labels], labels,
                                     "faces" if perception.faces else "low-level cues only")
    result.label = label
    result.confidence = result.distribution.get(label) if label else None
    result.limits = limits(labels)
    shown = label or ("none" if result.abstained else "unparsed")
    if with_reason:
        # no model writes here: the reason is a template over the measured cues (offline_reason says so)
        probability = result.confidence if label else max(result.distribution.values(), default=0.0)
        result.reason = compose_reason(perception, label, probability)
        result.reason_by_model, result.reason_note = False, TEMPLATE_NOTE
        result.answer = format_prediction(shown, result.reason)
    else:
        result.answer = f"Predicted emotion: {shown}."



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
                label=r.label or ("none" if r.abstained else "unparsed"),
                confidence="" if r.confidence is None else f"{r.confidence:.3f}",
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
    """``analyze_image`` over many images, without reasons (the CSV has no column for them); a bad file
    becomes a row with its error, not a failure. Each image is let go once analysed: a batch holds one
    decoded image at a time."""
    settings = settings or Settings.from_env()
    get_class_set(class_set)  # an unknown class set is the caller's error, not every row's
    sources = list(sources)
    if len(sources) > settings.max_batch_images:
        raise EmoError(f"{len(sources)} images is over the limit of {settings.max_batch_images} per batch")
    rows = []
    for index, source in enumerate(sources):
        name = Path(source).name if isinstance(source, (str, Path)) else f"image {index + 1}"
        if progress:
            progress(index, len(sources), name)
        try:
            result = analyze_image(source, class_set, backend, settings, with_reason=False)
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
