"""The "Video + audio" tab: a raw clip -> label, streamed reason, peak frame, AU and voice plots,
transcript and the MERR record (downloadable). Event a client may call: ``/analyze_video``
(video file, class-set key, task)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image

import emo_core
from emo_core import CLASS_SETS, VIDEO_CLASS_SETS, Settings

from . import render
from .errors import user_errors

CLASS_SET_CHOICES = [(CLASS_SETS[key].display, key) for key in VIDEO_CLASS_SETS]
TASK_CHOICES = [("Emotion + reason ([reason])", "reason"), ("Emotion only ([emotion])", "emotion")]


def _answer_markdown(result, streaming: bool) -> str:
    label = result.label or ("…" if streaming else "unparsed")
    reason = render.escape_markdown(result.reason) or ("…" if streaming else "")
    probability = f"  ·  {result.confidence:.0%}" if result.confidence is not None else \
        ("  ·  read from the model's answer (no probabilities)" if result.label else "")
    lines = [f"## {label}{probability}",
             f"**Predicted emotion: {label}.**" + (f" **Reason:** {reason}" if reason else ""), "",
             f"*Based on:* {result.basis}. *Reason:* {result.reason_note}. *Backend:* {result.backend}."]
    if result.notes:
        lines += ["", "*Notes:* " + render.escape_markdown("; ".join(result.notes)) + "."]
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


def analyze(video_path: str | None, class_set: str, task: str, settings: Settings):
    """Handler of /analyze_video (a generator: the reason streams into the answer)."""
    if not video_path:
        raise gr.Error("Upload or record a video first.")
    stream = emo_core.analyze_video_stream(video_path, class_set, settings=settings, task=task)
    result = next(stream)
    for note in result.notes:
        gr.Info(note)
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
    out_dir = Path(tempfile.mkdtemp(prefix="emolens-merr-"))
    merr_path = out_dir / f"{Path(video_path).stem}_merr.json"
    merr_path.write_text(json.dumps({Path(video_path).name: result.merr}, ensure_ascii=False, indent=1))
    yield (_answer_markdown(result, streaming=False), *visuals, result.merr, str(merr_path))


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
                class_set = gr.Dropdown(CLASS_SET_CHOICES, value="mer2023", label="Class set", elem_id="video-class-set")
                task = gr.Radio(TASK_CHOICES, value="reason", label="Task", elem_id="video-task")
                run = gr.Button("Analyse video", variant="primary", elem_id="video-btn")
            with gr.Column(scale=2):
                answer = gr.Markdown(elem_id="video-answer")
                peak = gr.Image(label="Peak frame", type="pil", interactive=False, height=300, elem_id="peak-frame")
        with gr.Row():
            au_chart = gr.Plot(label="Action units over time", elem_id="au-plot")
            voice_chart = gr.Plot(label="Voice", elem_id="voice-plot")
        transcript = gr.Textbox(label="Transcript (Whisper tiny.en)", interactive=False, elem_id="transcript")
        with gr.Accordion("MERR record", open=False):
            merr_json = gr.JSON(elem_id="merr-json")
            merr_file = gr.File(label="MERR JSON", interactive=False, elem_id="merr-file")

        def handler(path, key, chosen_task):
            yield from analyze(path, key, chosen_task, settings)

        run.click(user_errors(handler), inputs=[video_in, class_set, task],
                  outputs=[answer, peak, au_chart, voice_chart, transcript, merr_json, merr_file],
                  api_name="analyze_video")
