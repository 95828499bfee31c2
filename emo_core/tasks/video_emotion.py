"""Emotion recognition and reasoning from a raw video + audio file (Emotion-LLaMA's task, MERR's cues).

Offline: the visual pipeline (faces, action units, peak frame, expressions) and the audio pipeline
(speech, transcript, prosody, tone) run on the file; the label comes from ``video.fusion``; the
reason is written by the small language model from the cue phrases (streamed), or from a template
when the model's text is unusable, and the result says which. With an ``hf`` or ``openai`` backend
the same cues are measured for the visuals and the MERR record, and the model answers Emotion-LLaMA's
prompt (``[emotion]`` / ``[reason]`` task identifiers, the transcript as the subtitle): label and reason
agree and the reason streams (``model_answer``); the ``[emotion]`` task generates no reason.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from .. import prompts
from ..backends import Backend, get_backend, user_message
from ..cues.perception import get_perceiver
from ..errors import InvalidInputError
from ..labels import ClassSetChoice, resolve_class_set
from ..merr import build_record, set_reason
from ..parsing import format_prediction
from ..settings import Settings
from ..video.action_units import AU_CODES
from ..video.au_rules import describe
from ..video.fusion import fuse, fusion_limits
from ..video.decode import with_declared_duration
from ..video import recent as recent_visual
from ..video.visual import VisualAnalysis, analyze_visual
from . import model_answer

if TYPE_CHECKING:
    from ..audio.analysis import AudioAnalysis

TRANSCRIPT_WORDS_FOR_CUES = 40
SMALL_LM_NAME = "Gemma 3 270M (llama.cpp)"
REASON_TOKENS = 200


@dataclass
class VideoEmotionResult:
    label: str | None
    distribution: dict[str, float]
    reason: str
    answer: str  # "Predicted emotion: X. Reason: ..."
    class_set: str  # the class set's key ("mer2023"), whatever name it was asked by
    basis: str
    confidence: float | None  # None where the distribution holds no probabilities
    reason_by_model: bool  # True when a language model wrote the reason
    reason_note: str  # which model wrote the reason, or why the template is shown
    transcript: str  # C_ls
    tone: str  # C_atd
    expression_text: str  # C_ved, the peak frame's active AUs in words
    description: str  # C_md, the cues merged into one description
    peak_index: int | None  # 0-based index of the peak frame in the original video
    peak_time: float | None
    peak_box: tuple[int, int, int, int] | None
    peak_aus: list[str]  # active at the peak
    rule_aus: list[str]  # the most frequent active AUs the peak rule used
    pseudo_label: str
    peak_expression: dict[str, float]
    au_series: dict[str, list[float]]  # "time" plus one list per AU, over the sampled frames
    audio: dict
    merr: dict
    video: dict  # fps, duration, size, frames analysed
    notes: list[str]
    backend: str
    timings: dict[str, float] = field(default_factory=dict)
    dataset: str = ""  # the dataset the class set was asked by ("DFEW"), "" when asked by its key
    limits: list[str] = field(default_factory=list)  # what the offline fusion cannot tell apart in this class set
    # "model scores", "first-token probabilities", "cue mapping" (the offline fusion), "parsed answer", "none"
    distribution_kind: str = model_answer.CUE_MAPPING
    raw_text: str = ""  # the model's own answer, where a text model answered
    peak_frame: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-ready fields (everything but the peak frame's pixels)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "peak_frame"}


def analyze_video(path, class_set: str = "mer2023", backend: Backend | str | None = None,
                  settings: Settings | None = None, task: str = "reason", instruction: str | None = None,
                  method: str = "auto") -> VideoEmotionResult:
    """The whole analysis, reason included (see ``analyze_video_stream`` for the streamed reason)."""
    result = None
    for result in analyze_video_stream(path, class_set, backend, settings, task, instruction, method):
        pass
    return result


def analyze_video_stream(path, class_set: str = "mer2023", backend: Backend | str | None = None,
                         settings: Settings | None = None, task: str = "reason", instruction: str | None = None,
                         method: str = "auto") -> Iterator[VideoEmotionResult]:
    """Yields the result as soon as the cues and the label are known (reason still empty), then again
    each time the reason grows; the last item is final. ``task``: "emotion" (label only) or "reason".
    ``instruction`` replaces the ``[emotion]`` task's instruction (an evaluation's phrasing, class list
    filled in); ``method`` is ``model_answer``'s (auto, score, generate). The offline fusion reads
    neither."""
    settings = settings or Settings.from_env()
    chosen = resolve_class_set(class_set)
    labels = list(chosen.class_set.labels)
    backend = backend if isinstance(backend, Backend) else get_backend(backend, settings)
    if task not in ("emotion", "reason"):
        raise ValueError(f"task must be 'emotion' or 'reason', got {task!r}")
    path = Path(path)
    started = time.perf_counter()
    with with_declared_duration(path) as readable:
        perceiver = get_perceiver(settings.min_face_score, settings.max_faces)
        visual = analyze_visual(readable, perceiver, sample_fps=settings.video_sample_fps,
                                max_seconds=settings.max_video_seconds, max_side=settings.video_max_side)
        recent_visual.remember(readable, settings, visual)  # a model that reads the clip again reuses it
        timings = {f"visual.{k}": v for k, v in visual.timings.items()}
        from ..audio.analysis import analyze_audio

        clock = time.perf_counter()
        audio = analyze_audio(readable, max_seconds=settings.max_video_seconds)
        timings.update({f"audio.{k}": v for k, v in audio.timings.items()})
        timings["audio"] = round(time.perf_counter() - clock, 4)

        result = _cue_result(visual, audio, chosen, labels, backend)
        result.timings = timings
        if readable != path:
            result.notes.append("a streamed recording without a declared duration (e.g. from a webcam): "
                                "its streams were copied into a file that declares it before reading")
        if not backend.judges_from_cues:
            for _ in _ask_model(result, backend, readable, visual, audio, labels, task, instruction, method):
                timings.setdefault("until_reason", round(time.perf_counter() - started, 4))
                yield result
    if backend.judges_from_cues:
        timings["until_reason"] = round(time.perf_counter() - started, 4)
        yield result

    if task == "reason" and backend.judges_from_cues:
        clock = time.perf_counter()
        yield from _stream_offline_reason(result, visual, audio, settings)
        result.timings["reason"] = round(time.perf_counter() - clock, 4)
    result.answer = format_prediction(result.label or "unparsed", result.reason) if task == "reason" \
        else f"Predicted emotion: {result.label or 'unparsed'}."
    if result.reason_by_model:
        by_small_lm = backend.judges_from_cues
        set_reason(result.merr, result.reason, "small_lm" if by_small_lm else "model",
                   SMALL_LM_NAME if by_small_lm else backend.model_label)
    else:
        set_reason(result.merr, result.reason, "template" if result.reason else "none")
    result.timings["total"] = round(time.perf_counter() - started, 4)
    yield result


def _cue_result(visual: VisualAnalysis, audio: "AudioAnalysis", chosen: ClassSetChoice, labels: list[str],
                backend: Backend) -> VideoEmotionResult:
    track_expression = None
    if visual.has_face and len(visual.expression_probs):
        mean = visual.expression_probs.mean(axis=0)
        track_expression = dict(zip(visual.peak_expression, map(float, mean)))
    probabilities, basis = fuse(labels, visual.peak_expression or None, track_expression,
                                visual.pseudo_label if visual.has_face else None,
                                audio.arousal if audio.has_speech else None)
    distribution = {label: float(p) for label, p in zip(labels, probabilities)}
    label = max(distribution, key=distribution.get)

    peak_aus = [code for code, value in zip(AU_CODES, visual.peak_intensities)
                if value >= 1.0] if visual.has_face else []
    expression_text = describe(peak_aus) if visual.has_face else "no face visible"
    times = [index / visual.info.fps for index in visual.track_indices]
    au_series = {"time": [round(t, 3) for t in times]}
    for column, code in enumerate(AU_CODES):
        au_series[code] = [round(float(v), 3) for v in visual.au_intensities[:, column]]
    description = _description(visual, audio, expression_text)
    notes = visual.notes + audio.notes
    template = _template_reason(visual, audio, expression_text, label, distribution[label])
    merr = build_record(rule_aus=visual.peak_rule_aus, peak_aus=peak_aus,
                        visual_texts=[describe([code]) for code in peak_aus], tone=audio.tone,
                        peak_index=visual.peak_index, pseudo_label=visual.pseudo_label if visual.has_face else "",
                        transcript=audio.transcript, reason=template, description=description,
                        reason_source="template", class_set=chosen.key, dataset=chosen.dataset)
    return VideoEmotionResult(
        label=label, distribution=distribution, reason="", answer="", class_set=chosen.key, dataset=chosen.dataset,
        basis=basis if visual.has_face else basis + " (low confidence)", confidence=round(distribution[label], 4),
        reason_by_model=False, reason_note="template reason from the measured cues", transcript=audio.transcript,
        tone=audio.tone, expression_text=expression_text, description=description,
        peak_index=visual.peak_index, peak_time=None if visual.peak_time is None else round(visual.peak_time, 3),
        peak_box=visual.peak_face.box if visual.peak_face else None, peak_aus=peak_aus,
        rule_aus=visual.peak_rule_aus, pseudo_label=visual.pseudo_label if visual.has_face else "",
        peak_expression={k: round(v, 4) for k, v in visual.peak_expression.items()}, au_series=au_series,
        audio=audio.to_dict(), merr=merr,
        video={"fps": visual.info.fps, "duration": round(visual.info.duration, 3),
               "analysed_seconds": round(visual.info.analysed_duration, 3), "size": list(visual.info.size),
               "frames_sampled": len(visual.sampled_indices), "faces_per_sampled_frame": visual.face_counts},
        notes=notes, backend=backend.model_label, peak_frame=visual.peak_frame,
        limits=fusion_limits(labels) if backend.judges_from_cues else [],
    )


def _cue_phrases(visual: VisualAnalysis, audio: "AudioAnalysis", expression_text: str) -> list[str]:
    """Short phrases for the language model's few-shot prompt, whose examples are written in these same
    phrases (``prompts/reason_fewshot_video.txt``); the reason writer's guards read them back (a face
    cue, a "voice:" and a "words:" phrase), and ``benchmarks/bench_reasons.py`` and the tests run the
    writer on them."""
    phrases = []
    if visual.has_face:
        expression = max(visual.peak_expression, key=visual.peak_expression.get)
        # the prompt joins the phrases with "; ", so the AU texts inside this one are joined with commas
        phrases.append(f"face at the peak frame: {expression_text.replace('; ', ', ')}")
        phrases.append(f"facial expression {expression} ({visual.peak_expression[expression]:.2f})")
    else:
        phrases.append("no face visible")
    phrases.append(f"voice: {audio.tone}" if audio.tone else "no voice")
    if audio.transcript:
        words = audio.transcript.split()
        quoted = " ".join(words[:TRANSCRIPT_WORDS_FOR_CUES]) + (" ..." if len(words) > TRANSCRIPT_WORDS_FOR_CUES else "")
        phrases.append(f'words: "{quoted}"')
    return phrases


def _template_reason(visual, audio, expression_text: str, label: str, probability: float) -> str:
    sentences = prompts.sentence_table("offline_reason_video.txt")
    parts = []
    if visual.has_face:
        expression = max(visual.peak_expression, key=visual.peak_expression.get)
        parts.append(sentences["face"].format(time=visual.peak_time, aus=expression_text, expression=expression,
                                              confidence=visual.peak_expression[expression]))
    else:
        parts.append(sentences["no_face"])
    parts.append(sentences["voice"].format(tone=audio.tone) if audio.has_speech else sentences["silent"])
    if audio.transcript:
        parts.append(sentences["words"].format(transcript=audio.transcript.strip()))
    parts.append(sentences["link"].format(label=label, probability=probability))
    return " ".join(parts)


def _description(visual, audio, expression_text: str) -> str:
    """C_md: the cues in one description (MERR merges them with an LLM; offline we compose them)."""
    sentences = prompts.sentence_table("offline_reason_video.txt")
    face = sentences["md_face"].format(aus=expression_text) if visual.has_face else sentences["md_no_face"]
    voice = sentences["md_voice"].format(tone=audio.tone) if audio.has_speech else sentences["silent"]
    words = sentences["md_words"].format(transcript=audio.transcript.strip()) if audio.transcript else ""
    return " ".join(part for part in (face, voice, words, sentences["md_scene"]) if part)


def _stream_offline_reason(result: VideoEmotionResult, visual, audio,
                           settings: Settings) -> Iterator[VideoEmotionResult]:
    from ..llm.reason_writer import write_reason
    from ..llm.small_lm import get_small_lm

    template = result.merr["smp_reason_caption"]
    # while the text streams it is the language model's, not the template (checked when it ends)
    result.reason_note = ("being written by a small base language model (Gemma 3 270M, llama.cpp) from the cues "
                          "above; checked when it ends")
    stream = write_reason(result.label, _cue_phrases(visual, audio, result.expression_text), modality="video",
                          fallback=template, lm=get_small_lm(settings))
    for text in stream:
        result.reason = text
        yield result
    outcome = stream.result
    result.reason = outcome.text
    result.reason_by_model = outcome.by_model
    result.reason_note = (f"written by a small base language model ({SMALL_LM_NAME}) from the cues above; "
                           "it can misstate them or add details they do not support: the cues are what was measured"
                          if outcome.by_model else f"template reason: the language model's text was not used "
                                                   f"({outcome.problem})")


def _ask_model(result: VideoEmotionResult, backend: Backend, path: Path, visual, audio, labels,
               task: str, instruction: str | None = None, method: str = "auto") -> Iterator[VideoEmotionResult]:
    """Emotion-LLaMA's prompt to a real model (``model_answer``); yields as the answer fills in."""
    tasks = prompts.sentence_table("emotion_llama_tasks.txt")
    subtitle = audio.transcript.strip() or "nothing"

    def messages(task_id: str, frame_path: str | None):
        asked = instruction if task_id == "emotion" and instruction else \
            tasks[task_id].format(options=prompts.format_options(labels))
        text = prompts.render("emotion_llama", subtitle=subtitle, task=task_id, instruction=asked)
        media = {"video": str(path)} if backend.supports("video") else {"image": frame_path}
        if backend.supports("audio") and audio.has_audio and not backend.supports("video"):
            media["audio"] = str(path)
        return user_message(text, **media)

    with tempfile.TemporaryDirectory(prefix="emolens-video-") as workdir:
        frame_path = None
        if not backend.supports("video"):
            if visual.peak_frame is None:
                raise InvalidInputError("this backend reads images only, and the video has no face frame to show it")
            from PIL import Image

            frame_path = str(Path(workdir) / "peak.jpg")
            Image.fromarray(visual.peak_frame).save(frame_path, quality=95)
            result.notes.append("the model reads images only: it was shown the peak frame")
        # the cue fusion's label is not the model's: nothing is shown until the model answers
        result.label, result.distribution, result.confidence = None, {}, None
        result.distribution_kind = model_answer.NO_LABEL
        result.reason_note = f"written by {backend.model_label}" if task == "reason" else "no reason asked ([emotion])"
        notes = list(result.notes)
        answers = model_answer.answer_stream(backend, messages("emotion", frame_path), messages("reason", frame_path),
                                             labels, with_reason=task == "reason", reason_tokens=REASON_TOKENS,
                                             method=method)
        for answer in answers:
            result.label, result.distribution = answer.label, answer.distribution
            result.distribution_kind, result.confidence = answer.distribution_kind, answer.confidence
            result.basis = answer.basis
            if answer.distribution_kind == model_answer.MODEL_SCORES:
                result.basis = f"{model_answer.SCORED_BASIS} (Emotion-LLaMA prompt)"
            result.reason, result.reason_by_model = answer.reason, answer.reason_by_model
            result.raw_text = answer.raw_text
            result.notes = notes + answer.notes
            if answer.complete and task == "reason" and not answer.reason:
                result.reason_note = f"{backend.model_label} gave no reason (see the notes)"
            yield result
