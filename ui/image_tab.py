"""The "Image emotion" tab: one image -> label, reason, chart, boxed faces and cues; or many -> a CSV.

Events a client may call: ``/analyze_image`` (file, class-set key) and ``/analyze_images``
(files, class-set key).
"""

from __future__ import annotations

import tempfile
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


def analyze_one(image_path: str | None, class_set: str, settings: Settings):
    """Handler of /analyze_image: (answer markdown, boxed image, chart, cue rows, result JSON)."""
    if not image_path:
        raise gr.Error("Upload an image (or pick an example) first.", title="No image")
    result = emo_core.analyze_image(image_path, class_set, settings=settings)
    for note in result.notes:
        gr.Info(note)
    chart = render.bar_chart(result.distribution, result.label, CLASS_SETS[class_set].title) \
        if result.distribution else None
    return (
        render.answer_markdown(result),
        render.draw_faces(result.image, result.faces),
        chart,
        render.cue_rows(result.cues),
        result.to_dict(),
    )


def analyze_many(files: list[str] | None, class_set: str, settings: Settings, progress=gr.Progress()):
    """Handler of /analyze_images: (table rows, CSV file path)."""
    if not files:
        raise gr.Error("Upload one or more images first.", title="No images")
    paths = [getattr(f, "name", f) for f in files]

    def report(done: int, total: int, name: str) -> None:
        progress((done, total), desc=f"analysing {name}", unit="images")

    rows = emo_core.analyze_images(paths, class_set, settings=settings, progress=report)
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

        handler = user_errors(lambda path, key: analyze_one(path, key, settings))
        run.click(handler, inputs=[image_in, class_set], outputs=[answer, boxed, chart, cues, result_json],
                  api_name="analyze_image")

        with gr.Accordion("Several images at once", open=False):
            files_in = gr.File(label="Images", file_count="multiple", file_types=IMAGE_TYPES, type="filepath",
                               elem_id="batch-input")
            run_many = gr.Button("Analyse all", elem_id="batch-btn")
            table = gr.Dataframe(headers=["file", "label", "confidence", "faces", "expressions", "error"],
                                 interactive=False, wrap=True, elem_id="batch-table")
            csv_out = gr.File(label="CSV", interactive=False, elem_id="batch-csv")

        def batch_handler(files, key, progress=gr.Progress()):
            return analyze_many(files, key, settings, progress)

        run_many.click(user_errors(batch_handler), inputs=[files_in, class_set], outputs=[table, csv_out],
                       api_name="analyze_images")
