"""The "Humour captions" tab: an image -> K humorous captions that stream in, each with its seed.

Event a client may call: ``/humour_captions`` (file, number of captions 1-5, temperature, seed[, backend,
model]) -> (captions markdown, the analysed image, cue rows, result JSON). Backend and model work as in
the image tab (``model_picker``). Everything a model or the OCR wrote is escaped before it is shown.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import gradio as gr

import emo_core
from emo_core import Settings, backend_lease, choose_model
from emo_core.humour import DEFAULT_TEMPERATURE, MAX_CAPTIONS

from . import model_picker, render
from .errors import toast_text, user_errors
from .image_tab import ASSETS, CUE_HEADERS, IMAGE_TYPES
from .markdown_text import UNTRUSTED_MARKDOWN, escape_markdown

INTRO = (
    "Upload an image and get humorous captions (EmoVIT's humour task). Each caption shows its seed and "
    "temperature: ask for one caption with that seed and temperature to get it again.\n\n"
    "**Offline, the captions come from Gemma 3 270M, a small *base* language model that reads the measured "
    "cues (faces and their expressions, objects, body pose, brightness, colourfulness) and the words OCR "
    "finds in the image, not the picture itself.** Expect plain, often unfunny lines. An `hf` or `openai` "
    "model, where the server offers one, sees the picture."
)


def write_captions(image_path: str | None, n, temperature, seed, settings: Settings):
    """Handler of /humour_captions, a generator: (captions markdown, image, cue rows, result JSON), first
    with the cues and the words read, then as each caption is written, then everything."""
    if not image_path:
        raise gr.Error("Upload an image (or pick an example) first.", title="No image")
    with backend_lease(settings.backend, settings) as backend:
        stream = emo_core.humour_captions_stream(image_path, n, temperature, 0 if seed is None else seed,
                                                 backend=backend, settings=settings)
        result = next(stream)
        for note in result.notes:
            gr.Info(toast_text(note))
        # The image and the cues go out once; while captions stream only the text changes.
        yield captions_markdown(result), result.image, cue_rows(result), None
        for result in stream:
            if not result.complete:
                yield captions_markdown(result), gr.skip(), gr.skip(), gr.skip()
        yield captions_markdown(result), gr.skip(), gr.skip(), result.to_dict()


def cue_rows(result) -> list[list[str]]:
    words = "; ".join(f'"{line}" ({score:.2f})' for line, score in zip(result.words, result.word_scores))
    return render.cue_rows(result.attributes) + [["words in the image", f"{words or 'none found'} "
                                                                        f"(OCR: {result.ocr_model})"]]


def captions_markdown(result) -> str:
    """The captions as a numbered list with their seeds, the one being written, what fell short and who
    wrote them. Every caption, OCR line and model name is escaped."""
    done = len(result.captions)
    lines = [f"### {done} of {result.requested} caption{'s' if result.requested > 1 else ''}"
             + ("" if result.complete else " …"), ""]
    for number, caption in enumerate(result.captions, start=1):
        lines.append(f"{number}\\. **{escape_markdown(caption.text, one_line=True)}**  ·  "
                     f"<small>seed {caption.seed}, temperature {caption.temperature:g}</small>")
        lines.append("")
    if result.draft is not None:
        text = escape_markdown(result.draft.text, one_line=True) if result.draft.text else ""
        lines += [f"*writing (seed {result.draft.seed}, not yet checked):* {text} …", ""]
    if result.shortfall:
        lines += [f"**{escape_markdown(result.shortfall)}.**", ""]
    picture = "the picture, its measured cues and the words read in it" if result.reads_picture else \
        "the measured cues and the words read in the image (it does not see the picture)"
    lines.append(f"*Written by* {escape_markdown(result.model, one_line=True)} *from* {picture}; prompt "
                 f"{escape_markdown(result.prompt_version, one_line=True)}.")
    words = " / ".join(f"“{escape_markdown(line, one_line=True)}”" for line in result.words)
    lines += ["", f"*Words read in the image:* {words or 'none found'}."]
    if result.rejected and result.complete:
        dropped = "; ".join(f"seed {r.seed}: {r.problem}" for r in result.rejected)
        lines += ["", f"*Dropped:* {escape_markdown(dropped)}."]
    if result.notes:
        lines += ["", "*Input notes:* " + escape_markdown("; ".join(result.notes)) + "."]
    return "\n".join(lines)


_drawn_examples: list[Path] = []  # the meme drawn for this process


def example_images() -> list[str]:
    """The checkout's example photos and a meme drawn once per process (no image of it is kept in the
    repository), in a folder that lives as long as the process (not a request's: those are "emolens-*")."""
    if not (_drawn_examples and _drawn_examples[0].is_file()):
        folder = Path(tempfile.mkdtemp(prefix="humour-examples-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _drawn_examples[:] = [draw_meme(folder / "meme.png")]
    return sorted(str(p) for p in ASSETS.glob("*.jpg")) + [str(_drawn_examples[0])]


def draw_meme(path: Path) -> Path:
    """A meme-style picture: white words with a black outline above and below a simple drawn scene."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (640, 480), (96, 150, 210))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 330, 640, 480), fill=(70, 140, 60))  # grass
    draw.ellipse((250, 170, 390, 310), fill=(240, 200, 80))  # a round, smiley sun of a face
    draw.arc((285, 215, 355, 285), 20, 160, fill=(60, 40, 20), width=6)
    font = ImageFont.load_default(size=52)
    for text, y in (("WHEN THE CODE", 60), ("WORKS FIRST TIME", 420)):
        draw.text((320, y), text, font=font, fill="white", anchor="mm", stroke_width=3, stroke_fill="black")
    image.save(path)
    return path


def build(settings: Settings) -> None:
    """Lay out the tab inside the current ``gr.Blocks`` context and wire its event."""
    with gr.Tab("Humour captions", id="humour"):
        gr.Markdown(INTRO, elem_id="humour-intro")
        with gr.Row():
            with gr.Column(scale=1):
                image_in = gr.File(label="Image", file_types=IMAGE_TYPES, type="filepath", elem_id="humour-input")
                count = gr.Slider(1, MAX_CAPTIONS, value=3, step=1, label="Number of captions", elem_id="humour-n")
                temperature = gr.Slider(0.0, 2.0, value=DEFAULT_TEMPERATURE, step=0.05,
                                        label="Temperature (0: the same caption for every seed)",
                                        elem_id="humour-temperature")
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed (caption k uses seed, seed+1, ...)",
                                 elem_id="humour-seed")
                backend, model = model_picker.build(settings, id_prefix="humour-")
                run = gr.Button("Write captions", variant="primary", elem_id="humour-btn")
                gr.Examples([[path] for path in example_images()], inputs=[image_in], label="Examples")
            with gr.Column(scale=2):
                captions = gr.Markdown(elem_id="humour-captions", **UNTRUSTED_MARKDOWN)
                shown = gr.Image(label="Image", type="pil", interactive=False, height=360, elem_id="humour-image")
        with gr.Accordion("Measured cues and words read (what the offline model reads)", open=False):
            cues = gr.Dataframe(headers=CUE_HEADERS, interactive=False, wrap=True, elem_id="humour-cues")
        with gr.Accordion("Result as JSON", open=False):
            result_json = gr.JSON(elem_id="humour-json")

        def handler(path, n, temp, first_seed, backend_name=None, model_name=None):
            yield from write_captions(path, n, temp, first_seed, choose_model(settings, backend_name, model_name))

        run.click(user_errors(handler), inputs=[image_in, count, temperature, seed, backend, model],
                  outputs=[captions, shown, cues, result_json], api_name="humour_captions")
