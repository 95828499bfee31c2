"""The "Image emotion" tab: one image -> label, reason, chart, boxed faces and cues; or many -> a CSV.

Events a client may call: ``/analyze_image`` (file, class set[, backend, model]) and
``/analyze_images`` (files, class set[, backend, model]). A class set is a key of the menu (``mikels8``)
or a dataset that uses it (``emoset``). Backend and model default to the configured ones; another pair
is accepted only when the operator turned model switching on and allow-listed it
(``emo_core.model_choice``), and the model picker is shown only then.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

import emo_core
from emo_core import IMAGE_CLASS_SETS, Settings, backend_lease, choose_model, class_set_menu, get_class_set

from . import downloads, model_picker, render
from .errors import toast_text, user_errors
from .markdown_text import UNTRUSTED_MARKDOWN

ASSETS = Path(__file__).resolve().parent.parent / "assets"  # the checkout's examples (not in the wheel: none there)
IMAGE_TYPES = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"]
CLASS_SET_CHOICES = class_set_menu(IMAGE_CLASS_SETS)  # class sets and the datasets that use them
CUE_HEADERS = ["attribute", "value"]


def with_backend(settings: Settings, backend: str | None, model: str | None) -> Settings:
    """The settings for this request: the configured model, or an allow-listed one the visitor picked."""
    return choose_model(settings, backend, model)


def analyze_one(image_path: str | None, class_set: str, settings: Settings):
    """Handler of /analyze_image, a generator: (answer markdown, boxed image, chart, cue rows, result JSON),
    first with the faces and cues, then the answer as the model's reason streams, then everything."""
    if not image_path:
        raise gr.Error("Upload an image (or pick an example) first.", title="No image")
    with backend_lease(settings.backend, settings) as backend:
        yield from _stream_answer(emo_core.analyze_image_stream(image_path, class_set, backend=backend,
                                                                settings=settings), class_set)


def _stream_answer(stream, class_set: str):
    result = next(stream)
    for note in result.notes:
        gr.Info(toast_text(note))
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
                            f"{get_class_set(class_set).title} ({result.distribution_kind})")


def analyze_many(files: list[str] | None, class_set: str, settings: Settings, csv_component, progress=gr.Progress()):
    """Handler of /analyze_images: (table rows, CSV file path in gradio's cache)."""
    if not files:
        raise gr.Error("Upload one or more images first.", title="No images")
    paths = [getattr(f, "name", f) for f in files]

    def report(done: int, total: int, name: str) -> None:
        progress((done, total), desc=f"analysing {name}", unit="images")

    chosen = get_class_set(class_set)
    with backend_lease(settings.backend, settings) as backend:
        rows = emo_core.analyze_images(paths, chosen.key, backend=backend, settings=settings, progress=report)
    labels = chosen.labels
    table = [[r["file"], r["label"], r["confidence"], r["faces"], r["expressions"], r["error"]]
             for r in (row.as_row(labels) for row in rows)]
    with downloads.request_folder() as folder:
        csv_path = folder / f"emotions_{chosen.key}.csv"
        csv_path.write_text(emo_core.rows_to_csv(rows, chosen.key), encoding="utf-8")
        return table, downloads.publish(csv_component, csv_path)


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
                class_set = gr.Dropdown(CLASS_SET_CHOICES, value=settings.image_class_set, label="Class set",
                                        elem_id="class-set")
                backend, model = model_picker.build(settings)
                run = gr.Button("Analyse", variant="primary", elem_id="analyze-btn")
                examples = sorted(str(p) for p in ASSETS.glob("*.jpg"))
                if examples:
                    gr.Examples([[path] for path in examples], inputs=[image_in], label="Examples")
            with gr.Column(scale=2):
                answer = gr.Markdown(elem_id="answer", **UNTRUSTED_MARKDOWN)
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
            return analyze_many(files, key, with_backend(settings, backend_name, model_name), csv_out, progress)

        run_many.click(user_errors(batch_handler), inputs=[files_in, class_set, backend, model],
                       outputs=[table, csv_out], api_name="analyze_images")
