"""The "Video + audio" tab: a raw clip -> label, streamed reason, peak frame, AU and voice plots,
transcript and the MERR record (downloadable). Event a client may call: ``/analyze_video``
(video file, class-set key or dataset name such as ``dfew``, task)."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
from PIL import Image

import emo_core
from emo_core import VIDEO_CLASS_SETS, Settings, backend_lease, class_set_menu

from . import downloads, render
from .errors import toast_text, user_errors
from .markdown_text import UNTRUSTED_MARKDOWN, escape_markdown

CLASS_SET_CHOICES = class_set_menu(VIDEO_CLASS_SETS)  # class sets and the datasets that use them
TASK_CHOICES = [("Emotion + reason ([reason])", "reason"), ("Emotion only ([emotion])", "emotion")]


def _answer_markdown(result, streaming: bool) -> str:
    """The video answer as Markdown; every piece from a model, the clip or ffmpeg is escaped."""
    label = escape_markdown(result.label or ("…" if streaming else "unparsed"), one_line=True)
    reason = escape_markdown(result.reason or "") or ("…" if streaming else "")
    probability = f"  ·  {result.confidence:.0%}" if result.confidence is not None else \
        ("  ·  read from the model's answer (no probabilities)" if result.label else "")
    lines = [f"## {label}{probability}",
             f"**Predicted emotion: {label}.**" + (f" **Reason:** {reason}" if reason else ""), "",
             f"*Based on:* {escape_markdown(result.basis)}. *Reason:* {escape_markdown(result.reason_note)}. "
             f"*Backend:* {escape_markdown(result.backend)}."]
    if result.limits:
        lines += ["", "*Limits of the offline default for this class set:* "
                  + escape_markdown("; ".join(result.limits)) + "."]
    if result.notes:
        lines += ["", "*Notes:* " + escape_markdown("; ".join(result.notes)) + "."]
    return "\n".join(lines)


def _peak_image(result):
    if result.peak_frame is None:
        return None
    image = Image.fromarray(result.peak_frame)
    if result.peak_box is None:
        return image
    expression = max(result.peak_expression, key=result.peak_expression.get)
    text = f"peak frame {result.peak_index} ({result.peak_time:.2f} s): {expression} {result.peak_expression[expression]:.2f}"
    return render.draw_boxes(image, [(result.peak_box, text, expression)])


def analyze(video_path: str | None, class_set: str, task: str, settings: Settings, merr_component):
    """Handler of /analyze_video (a generator: the reason streams into the answer)."""
    if not video_path:
        raise gr.Error("Upload or record a video first.")
    with backend_lease(settings.backend, settings) as backend:
        yield from _analyze(video_path, class_set, task, settings, backend, merr_component)


def _analyze(video_path: str, class_set: str, task: str, settings: Settings, backend, merr_component):
    stream = emo_core.analyze_video_stream(video_path, class_set, backend=backend, settings=settings, task=task)
    result = next(stream)
    for note in result.notes:
        gr.Info(toast_text(note))
    plot = result.audio.get("plot") or {}
    visuals = (
        _peak_image(result),
        render.au_plot(result.au_series, result.peak_time, result.rule_aus),
        render.voice_plot(plot.get("waveform", []), plot.get("waveform_rate", 1.0), plot.get("pitch_times", []),
                          plot.get("pitch_hz", []), result.audio.get("speech_segments", [])),
        result.transcript or "(no speech)",
    )
    yield (_answer_markdown(result, streaming=True), *visuals, result.merr, None)
    for result in stream:
        yield (_answer_markdown(result, streaming=True), *visuals, result.merr, None)
    with downloads.request_folder() as folder:
        merr_path = folder / f"{Path(video_path).stem}_merr.json"
        merr_path.write_text(json.dumps({Path(video_path).name: result.merr}, ensure_ascii=False, indent=1))
        merr_file = downloads.publish(merr_component, merr_path)
    yield (_answer_markdown(result, streaming=False), *visuals, result.merr, merr_file)


def build(settings: Settings) -> None:
    with gr.Tab("Video + audio", id="video"):
        gr.Markdown(
            "Upload a clip (mp4, webm, mov, mkv) or record one. The main speaker's face is tracked, its action "
            "units are estimated per frame, the peak frame is chosen by MERR's rule, the voice is transcribed and "
            f"its tone described; clips longer than {settings.max_video_seconds:.0f} s are analysed over their "
            "first part."
        )
        with gr.Row():
            with gr.Column(scale=1):
                video_in = gr.Video(label="Video", sources=["upload", "webcam"], elem_id="video-input")
                class_set = gr.Dropdown(CLASS_SET_CHOICES, value=settings.video_class_set, label="Class set",
                                        elem_id="video-class-set")
                task = gr.Radio(TASK_CHOICES, value="reason", label="Task", elem_id="video-task")
                run = gr.Button("Analyse video", variant="primary", elem_id="video-btn")
            with gr.Column(scale=2):
                answer = gr.Markdown(elem_id="video-answer", **UNTRUSTED_MARKDOWN)
                peak = gr.Image(label="Peak frame", type="pil", interactive=False, height=300, elem_id="peak-frame")
        with gr.Row():
            au_chart = gr.Plot(label="Action units over time", elem_id="au-plot")
            voice_chart = gr.Plot(label="Voice", elem_id="voice-plot")
        transcript = gr.Textbox(label="Transcript (Whisper tiny.en)", interactive=False, elem_id="transcript")
        with gr.Accordion("MERR record", open=False):
            merr_json = gr.JSON(elem_id="merr-json")
            merr_file = gr.File(label="MERR JSON", interactive=False, elem_id="merr-file")

        def handler(path, key, chosen_task):
            yield from analyze(path, key, chosen_task, settings, merr_file)

        run.click(user_errors(handler), inputs=[video_in, class_set, task],
                  outputs=[answer, peak, au_chart, voice_chart, transcript, merr_json, merr_file],
                  api_name="analyze_video")
