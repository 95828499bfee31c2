"""One question to a model: a sample (image or video) + one instruction -> the label-only answer.

Everything goes through the backend seam and the tasks' label-only path (``model_answer`` with no
reason, Emotion-LLaMA's ``[emotion]`` task for video), so no reason text is ever generated:

- ``generate``: the model writes a short answer; ``emo_core.parsing`` reads the class from it, and an
  answer naming no class, or several, stays unparsed with its reason (empty, ambiguous, not a class);
- ``score``: the model's log-likelihood of each class name; the prediction is the best-scored class and
  the distribution is kept;
- the offline backend scores from measured cues and gives the label the app gives: none where its
  distribution is flat or no face was found (recorded as unparsed, "not a class", with ``abstained``
  saying why). It does not read the instruction, so its answer is the same for every instruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backends import Backend, user_message
from ..errors import CapabilityError
from ..expression_map import decide
from ..labels import get_class_set
from ..parsing import parse_prediction, unparsed_reason
from ..settings import Settings
from ..tasks import model_answer


@dataclass
class Answer:
    answer: str  # the model's text; for scores, the answer in the papers' format
    prediction: str | None
    unparsed_reason: str = ""
    distribution: dict[str, float] | None = None
    abstained: str = ""  # the offline default's reason for naming no label


def resolve_method(backend: Backend, method: str) -> str:
    """"score" or "generate" for this backend ("auto": score where it can)."""
    if backend.judges_from_cues:
        if method == "generate":
            raise CapabilityError(
                f"the {backend.name} backend cannot generate text; it answers from measured cues (the score method)")
        return "score"
    if method == "auto":
        return "score" if backend.supports("score") else "generate"
    if method not in ("score", "generate"):
        raise ValueError(f"method must be generate or score, got {method!r}")
    if not backend.supports(method):
        other = "generate" if method == "score" else "score"
        raise CapabilityError(f"the {backend.name} backend cannot {method}; use --method {other}")
    return method


def prepare_image(source: Path, settings: Settings, target: Path) -> Path:
    """The image as the app analyses it (upright, RGB, at most analysis_max_side), saved at ``target``
    for the backend; bad files raise ``InvalidInputError``."""
    from ..image_io import load_image

    loaded = load_image(source, max_pixels=settings.max_image_pixels, max_side=settings.analysis_max_side)
    loaded.image.save(target, quality=95)
    return target


def ask_image(backend: Backend, image_path: Path, instruction: str, labels: list[str], method: str,
              settings: Settings) -> Answer:
    messages = user_message(instruction, image=str(image_path))
    *_, final = model_answer.answer_stream(backend, messages, messages, labels, with_reason=False, reason_tokens=0,
                                           method=method)
    if backend.judges_from_cues:
        from ..cues.perception import get_perceiver

        # the faces the backend's score just measured (memoised): the offline label needs to know if there were any
        perception = get_perceiver(settings.min_face_score, settings.max_faces).perceive_file(image_path, scene=False)
        label, abstained = decide([final.distribution[name] for name in labels], labels,
                                  "faces" if perception.faces else "low-level cues only")
        return Answer(f"Predicted emotion: {label or 'none'}.", label, "" if label else "not a class",
                      _rounded(final.distribution), abstained)
    return _from_model(final.raw_text, final.label, final.distribution, labels, method)


def ask_video(backend: Backend, video_path: Path, instruction: str, class_set: str, method: str,
              settings: Settings) -> Answer:
    from ..tasks.video_emotion import analyze_video

    labels = list(get_class_set(class_set).labels)
    result = analyze_video(video_path, class_set, backend, settings, task="emotion", instruction=instruction,
                           method=method)
    if backend.judges_from_cues:
        return Answer(f"Predicted emotion: {result.label}.", result.label, "", _rounded(result.distribution))
    return _from_model(result.raw_text, result.label, result.distribution, labels, method)


def _from_model(raw_text: str, label: str | None, distribution: dict, labels: list[str], method: str) -> Answer:
    if method == "score":
        return Answer(f"Predicted emotion: {label}.", label, "", _rounded(distribution))
    parsed = parse_prediction(raw_text, labels)
    return Answer(raw_text, parsed.label, unparsed_reason(parsed))


def _rounded(distribution: dict[str, float]) -> dict[str, float]:
    return {label: round(float(p), 6) for label, p in distribution.items()}
