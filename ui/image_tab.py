"""The "Image emotion" tab: one image -> label, reason, chart, boxed faces and cues; or many -> a CSV.

Events a client may call: ``/analyze_image`` (file, class-set key[, backend, model]) and
``/analyze_images`` (files, class-set key[, backend, model]); backend and model default to the settings.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import gradio as gr

import emo_core
from emo_core import IMAGE_CLASS_SETS, CLASS_SETS, Settings

from . import render
from .errors import user_errors

ASSETS = Path(__file__).resolve().parent.parent / "assets"
IMAGE_TYPES = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"]
CLASS_SET_CHOICES = [(CLASS_SETS[key].display, key) for key in IMAGE_CLASS_SETS]
CUE_HEADERS = ["attribute", "value"]
BACKEND_CHOICES = [("offline (CPU, bundled models)", "offline"), ("hf (transformers model)", "hf"),
                   ("openai (OpenAI-compatible endpoint)", "openai")]


def with_backend(settings: Settings, backend: str | None, model: str | None) -> Settings:
    """The app's settings with the backend and model the user picked in the tab."""
    backend = backend or settings.backend
    model = settings.model if model is None else model.strip()
    if backend != "offline" and not model:
        raise gr.Error(f"The {backend} backend needs a model: a hub id or local folder (hf), or a model name (openai).")
    return replace(settings, backend=backend, model=model)


def analyze_one(image_path: str | None, class_set: str, settings: Settings):
    """Handler of /analyze_image, a generator: (answer markdown, boxed image, chart, cue rows, result JSON),
    first with the faces and cues, then the answer as the model's reason streams, then everything."""
    if not image_path:
        raise gr.Error("Upload an image (or pick an example) first.", title="No image")
    stream = emo_core.analyze_image_stream(image_path, class_set, backend=settings.backend, settings=settings)
    result = next(stream)
    for note in result.notes:
        gr.Info(note)
    boxed, cues = render.draw_faces(result.image, result.faces), render.cue_rows(result.cues)
    # Only what changed goes out while the reason streams: the image, cues and chart are sent once.
    # The first update clears the previous run's chart and JSON.
    first, chart_sent = True, False
    while not result.complete:
        chart = None if first else gr.skip()
        if result.has_probabilities and not chart_sent:
            chart, chart_sent = _chart(result, class_set), True
        unchanged = gr.skip()
        yield (render.answer_markdown(result, streaming=True), boxed if first else unchanged, chart,
               cues if first else unchanged, None if first else unchanged)
        first = False
        result = next(stream)
    yield render.answer_markdown(result), boxed, _chart(result, class_set), cues, result.to_dict()


def _chart(result, class_set: str):
    """The bar chart, only where the distribution holds probabilities (never a 100% bar for a parsed label)."""
    if not result.has_probabilities:
        return None
    return render.bar_chart(result.distribution, result.label,
                            f"{CLASS_SETS[class_set].title} ({result.distribution_kind})")


def analyze_many(files: list[str] | None, class_set: str, settings: Settings, progress=gr.Progress()):
    """Handler of /analyze_images: (table rows, CSV file path)."""
    if not files:
        raise gr.Error("Upload one or more images first.", title="No images")
    paths = [getattr(f, "name", f) for f in files]

    def report(done: int, total: int, name: str) -> None:
        progress((done, total), desc=f"analysing {name}", unit="images")

    rows = emo_core.analyze_images(paths, class_set, backend=settings.backend, settings=settings, progress=report)
    csv_text = emo_core.rows_to_csv(rows, class_set)
    out_dir = Path(tempfile.mkdtemp(prefix="emolens-batch-"))
    csv_path = out_dir / f"emotions_{class_set}.csv"
    csv_path.write_text(csv_text, encoding="utf-8")
    labels = CLASS_SETS[class_set].labels
    table = [[r["file"], r["label"], r["confidence"], r["faces"], r["expressions"], r["error"]]
             for r in (row.as_row(labels) for row in rows)]
    return table, str(csv_path)


def build(settings: Settings) -> None:
    """Lay out the tab inside the current ``gr.Blocks`` context and wire its events."""
    with gr.Tab("Image emotion", id="image"):
        gr.Markdown(
            "Upload a photo and choose the class set. The label, a reason in EmoVIT's format, "
            "the class probabilities, each face with its expression, and EmoVIT's attribute cues."
        )
        with gr.Row():
            with gr.Column(scale=1):
                image_in = gr.File(label="Image", file_types=IMAGE_TYPES, type="filepath", elem_id="image-input")
                class_set = gr.Dropdown(CLASS_SET_CHOICES, value="mikels8", label="Class set", elem_id="class-set")
                with gr.Accordion("Model backend", open=False):
                    backend = gr.Dropdown(BACKEND_CHOICES, value=settings.backend, label="Backend",
                                          elem_id="backend")
                    model = gr.Textbox(value=settings.model, label="Model (hub id, local folder or API model name)",
                                       placeholder="e.g. Salesforce/instructblip-vicuna-7b", elem_id="model")
                run = gr.Button("Analyse", variant="primary", elem_id="analyze-btn")
                examples = sorted(str(p) for p in ASSETS.glob("*.jpg"))
                if examples:
                    gr.Examples([[path] for path in examples], inputs=[image_in], label="Examples")
            with gr.Column(scale=2):
                answer = gr.Markdown(elem_id="answer")
                with gr.Row():
                    boxed = gr.Image(label="Faces", type="pil", interactive=False, height=380,
                                     elem_id="faces-image")
                    chart = gr.Plot(label="Class probabilities", elem_id="chart")
        with gr.Accordion("Measured cues (EmoVIT attributes)", open=True):
            cues = gr.Dataframe(headers=CUE_HEADERS, interactive=False, wrap=True, elem_id="cues")
        with gr.Accordion("Result as JSON", open=False):
            result_json = gr.JSON(elem_id="result-json")

        def handler(path, key, backend_name=None, model_name=None):
            yield from analyze_one(path, key, with_backend(settings, backend_name, model_name))

        run.click(user_errors(handler), inputs=[image_in, class_set, backend, model],
                  outputs=[answer, boxed, chart, cues, result_json], api_name="analyze_image")

        with gr.Accordion("Several images at once", open=False):
            files_in = gr.File(label="Images", file_count="multiple", file_types=IMAGE_TYPES, type="filepath",
                               elem_id="batch-input")
            run_many = gr.Button("Analyse all", elem_id="batch-btn")
            table = gr.Dataframe(headers=["file", "label", "confidence", "faces", "expressions", "error"],
                                 interactive=False, wrap=True, elem_id="batch-table")
            csv_out = gr.File(label="CSV", interactive=False, elem_id="batch-csv")

        def batch_handler(files, key, backend_name=None, model_name=None, progress=gr.Progress()):
            return analyze_many(files, key, with_backend(settings, backend_name, model_name), progress)

        run_many.click(user_errors(batch_handler), inputs=[files_in, class_set, backend, model],
                       outputs=[table, csv_out], api_name="analyze_images")
