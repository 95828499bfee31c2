"""The "Instruction sensitivity" tab: the same question in several phrasings, on one image or a dataset.

Events a client may call:

- ``/sensitivity_image`` (image, class set, instruction ids, typed instructions[, backend, model]):
  every chosen instruction's answer, side by side;
- ``/sensitivity_dataset`` (source "demo" | "zip" | "folder", zip file, folder, class set, model names,
  instruction ids, typed instructions): per-instruction metrics, Sensitivity per model, a chart, the
  confusion matrices, the samples whose answer changed, and the summaries as JSON. A second client call
  (or the Cancel button) stops it after the current sample.

Typed instructions: one per paragraph, each with a ``{classes}`` slot. Models: the configured one, or
those the operator allow-listed when switching is on (``emo_core.model_choice``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import gradio as gr

from emo_core import IMAGE_CLASS_SETS, Settings, backend_lease, choose_model, class_set_menu, model_options
from emo_core.evaluate import instructions as instruction_lib
from emo_core.evaluate import load_dataset
from emo_core.evaluate.archive import dataset_entry, extract_zip, folder_under_root
from emo_core.evaluate.demo_set import write_demo_set
from emo_core.evaluate.multi import evaluate_models
from emo_core.evaluate.report import OFFLINE_NOTE
from emo_core.evaluate.single import answers_per_instruction

from . import downloads
from .errors import user_errors
from .image_tab import IMAGE_TYPES
from .markdown_text import UNTRUSTED_MARKDOWN, escape_markdown

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_CLASS_SET = "fer7"
# The demo set's labels are ours: the smiling astronaut (alone and in a group) as happy, the photos
# without a person as neutral. It shows the workflow, not a benchmark.
DEMO_SOURCES = {"happy": ("astronaut.jpg", "group.jpg"), "neutral": ("coffee.jpg", "cat.jpg")}
DEMO_NOTE = ("Demo set: the example photos in four variants each, labelled by us (smiling people: happy; photos "
             "without a person: neutral). It shows how the evaluation works; it is not a benchmark.")
CLASS_SET_CHOICES = class_set_menu(IMAGE_CLASS_SETS)
INSTRUCTION_CHOICES = [(f"{i.id}: {i.source}", i.id) for i in instruction_lib.BUILTIN.values()
                       if i.id in instruction_lib.IMAGE_INSTRUCTIONS]
METRIC_HEADERS = ["model", "instruction", "n", "accuracy %", "UAR %", "macro F1 %", "weighted F1 %", "unparsed",
                  "accuracy 95% interval"]
POLL_SECONDS = 0.3


def chosen_instructions(ids: list[str] | None, typed: str | None) -> list:
    chosen = instruction_lib.by_ids(list(ids or []))
    if typed and typed.strip():
        chosen += instruction_lib.parse_custom(typed, prefix="typed")
    return chosen


def _model_settings(settings: Settings, names: list[str] | None) -> list[tuple[str, Settings]]:
    """Each chosen model's settings through the model-choice guard (unknown names are refused by it)."""
    options = {o.name: o for o in model_options(settings)}
    names = [n for n in (names or []) if n] or [next(iter(options))]
    return [(name, choose_model(settings, options[name].backend if name in options else settings.backend, name))
            for name in dict.fromkeys(names)]


def single_image(settings: Settings, image_path, class_set, ids, typed, backend_name=None, model_name=None):
    """Handler of /sensitivity_image: (table rows, note markdown)."""
    if not image_path:
        raise gr.Error("Upload an image first.", title="No image")
    chosen = chosen_instructions(ids, typed)
    if not chosen:
        raise gr.Error("Choose or type at least one instruction.", title="No instruction")
    request_settings = choose_model(settings, backend_name, model_name)
    with backend_lease(request_settings.backend, request_settings) as backend:
        result = answers_per_instruction(image_path, class_set, chosen, backend, request_settings)
    rows = [[r["instruction"], r["answer"], r["prediction"] or f"unparsed ({r['unparsed_reason']})"]
            for r in result["rows"]]
    note = f"Method: {result['method']}."
    if not result["reads_instruction"]:
        note += " " + escape_markdown(OFFLINE_NOTE[0].upper() + OFFLINE_NOTE[1:]) + "."
    abstained = {r["abstained"] for r in result["rows"] if r["abstained"]}
    if abstained:
        note += " No label: " + escape_markdown("; ".join(sorted(abstained))) + "."
    return rows, note


def _dataset_path(settings: Settings, source: str, zip_file, folder_text: str, workdir: Path) -> tuple[Path, Path, str]:
    """(what to load, the folder it must stay inside, the class set to use or "")."""
    if source == "demo":
        sources = {label: [ASSETS / name for name in names if (ASSETS / name).is_file()]
                   for label, names in DEMO_SOURCES.items()}
        if not all(sources.values()):
            raise gr.Error("The demo photos are not installed here; upload a zip instead.", title="No demo set")
        root = write_demo_set(workdir / "demo", sources)
        return root, root, DEMO_CLASS_SET
    if source == "zip":
        if not zip_file:
            raise gr.Error("Upload a zip of the dataset first.", title="No zip")
        path = Path(getattr(zip_file, "name", zip_file))
        if path.stat().st_size > settings.max_upload_mb * 1e6:
            raise gr.Error(f"The zip is over the upload limit of {settings.max_upload_mb:g} MB.", title="Too large")
        root = extract_zip(path, workdir / "upload", max_bytes=int(settings.eval_max_zip_mb * 1e6),
                           max_files=settings.eval_max_zip_files)
        return dataset_entry(root), root, ""
    if source == "folder":
        root = Path(settings.eval_data_root).resolve() if settings.eval_data_root else Path()
        return folder_under_root(folder_text, settings.eval_data_root), root, ""
    raise gr.Error("Choose where the dataset comes from: demo, zip or folder.", title="No dataset")


def dataset_run(settings: Settings, file_component, source, zip_file, folder_text, class_set, model_names, ids, typed,
                progress=gr.Progress()):
    """Handler of /sensitivity_dataset, a generator: status updates, then (status, metrics, chart,
    confusion, changed samples, summaries JSON file)."""
    chosen = chosen_instructions(ids, typed)
    if len(chosen) < 2:
        raise gr.Error("Choose or type at least two instructions: Sensitivity compares them.", title="Instructions")
    models = _model_settings(settings, model_names)
    skip = (gr.skip(),) * 5
    with downloads.request_folder() as workdir:
        data, root, fixed_class_set = _dataset_path(settings, source, zip_file, folder_text, workdir)
        dataset = load_dataset(data, fixed_class_set or class_set, confine_to=root, limit=settings.eval_max_samples)
        state = {"done": 0, "total": len(dataset.samples) * len(models), "name": "", "runs": None, "error": None}
        stop = threading.Event()

        def report(done: int, total: int, name: str) -> None:
            state.update(done=done, total=total, name=name)

        def work() -> None:
            try:
                state["runs"] = evaluate_models(dataset, chosen, models, workdir / "runs", progress=report,
                                                should_stop=stop.is_set)
            except Exception as exc:  # handed to the request's thread, which reports it
                state["error"] = exc

        worker = threading.Thread(target=work, name="sensitivity-run", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                progress((state["done"], state["total"]), desc="evaluating", unit="samples")
                yield (f"Evaluating {state['done']} / {state['total']} …",) + skip
                worker.join(POLL_SECONDS)
        finally:
            stop.set()  # the visitor cancelled (the generator is closed) or the run ended
            worker.join()
        if state["error"] is not None:
            raise state["error"]
        yield _results(state["runs"], dataset, source, workdir, file_component)


def _results(runs, dataset, source: str, workdir: Path, file_component):
    from .sensitivity_view import changed_rows, chart, confusion_rows, metric_rows, status_markdown

    summaries = {run.name: run.outcome.summary for run in runs}
    path = workdir / "sensitivity_summaries.json"
    path.write_text(json.dumps(summaries, ensure_ascii=False, indent=1), encoding="utf-8")
    note = DEMO_NOTE if source == "demo" else ""
    if dataset.total > len(dataset.samples):
        note += f" A fixed subset of {len(dataset.samples)} of the {dataset.total} samples was evaluated (the limit here)."
    return (status_markdown(runs, dataset, note), metric_rows(runs), chart(runs), confusion_rows(runs),
            changed_rows(runs), downloads.publish(file_component, path))


def build(settings: Settings) -> None:
    """Lay out the tab inside the current ``gr.Blocks`` context and wire its events."""
    options = model_options(settings)
    with gr.Tab("Instruction sensitivity", id="sensitivity"):
        gr.Markdown("Ask the same question in several phrasings (EmoVIT Sec. 4.3.2) and see whether the answers "
                    "change. **Sensitivity** = standard deviation of accuracy across instructions / its mean "
                    "(population standard deviation); lower is steadier.")
        ids = gr.CheckboxGroup(INSTRUCTION_CHOICES, value=["sensitivity_1", "sensitivity_2"], label="Instructions",
                               elem_id="sens-instructions")
        typed = gr.Textbox(label="Your own instructions (one per paragraph, each with a {classes} slot)", lines=3,
                           elem_id="sens-typed")
        with gr.Tab("Single image", id="sens-single"):
            with gr.Row():
                with gr.Column(scale=1):
                    image_in = gr.File(label="Image", file_types=IMAGE_TYPES, type="filepath", elem_id="sens-image")
                    image_class_set = gr.Dropdown(CLASS_SET_CHOICES, value=settings.image_class_set, label="Class set",
                                                  elem_id="sens-class-set")
                    with gr.Accordion("Model", open=False, visible=len(options) > 1):
                        backend = gr.Dropdown(list(dict.fromkeys(o.backend for o in options)), value=options[0].backend,
                                              label="Backend", allow_custom_value=True, elem_id="sens-backend")
                        model = gr.Dropdown([o.name for o in options], value=options[0].name, label="Model",
                                            allow_custom_value=True, elem_id="sens-model")
                    ask = gr.Button("Ask every instruction", variant="primary", elem_id="sens-ask")
                with gr.Column(scale=2):
                    answers = gr.Dataframe(headers=["instruction", "answer", "prediction"], interactive=False, wrap=True,
                                           elem_id="sens-answers")
                    single_note = gr.Markdown(elem_id="sens-single-note", **UNTRUSTED_MARKDOWN)

        def single_handler(path, key, chosen_ids, typed_text, backend_name=None, model_name=None):
            return single_image(settings, path, key, chosen_ids, typed_text, backend_name, model_name)

        ask.click(user_errors(single_handler), inputs=[image_in, image_class_set, ids, typed, backend, model],
                  outputs=[answers, single_note], api_name="sensitivity_image")

        with gr.Tab("Dataset", id="sens-dataset"):
            with gr.Row():
                with gr.Column(scale=1):
                    source = gr.Radio([("Demo set (generated)", "demo"), ("Upload a zip", "zip")]
                                      + ([("Folder on this server", "folder")] if settings.eval_data_root else []),
                                      value="demo", label="Dataset", elem_id="sens-source")
                    zip_in = gr.File(label="Dataset zip (a folder per class, or path,label CSV / EmoSet JSON inside)",
                                     file_types=[".zip"], type="filepath", elem_id="sens-zip")
                    folder_in = gr.Textbox(label="Folder (relative to the allowed root)", visible=bool(settings.eval_data_root),
                                           elem_id="sens-folder")
                    data_class_set = gr.Dropdown(CLASS_SET_CHOICES, value=settings.image_class_set,
                                                 label="Class set (the demo set uses FER-7)", elem_id="sens-data-class-set")
                    models = gr.CheckboxGroup([o.name for o in options], value=[options[0].name],
                                              label="Models (offered by this server)", elem_id="sens-models")
                    with gr.Row():
                        run = gr.Button("Evaluate", variant="primary", elem_id="sens-run")
                        cancel = gr.Button("Cancel", elem_id="sens-cancel")
                with gr.Column(scale=2):
                    status = gr.Markdown(elem_id="sens-status", **UNTRUSTED_MARKDOWN)
                    metrics = gr.Dataframe(headers=METRIC_HEADERS, interactive=False, wrap=True, elem_id="sens-metrics")
                    plot = gr.Plot(label="Accuracy per instruction", elem_id="sens-chart")
            with gr.Accordion("Confusion matrices (rows: true class; last column: unparsed answers)", open=False):
                confusion = gr.Dataframe(interactive=False, wrap=True, elem_id="sens-confusion")
            with gr.Accordion("Samples whose answer changed between instructions", open=True):
                changed = gr.Dataframe(interactive=False, wrap=True, elem_id="sens-changed")
            summary_file = gr.File(label="Summaries (JSON)", interactive=False, elem_id="sens-summary")

        def dataset_handler(source_kind, zip_path, folder_text, key, model_names, chosen_ids, typed_text,
                            progress=gr.Progress()):
            yield from dataset_run(settings, summary_file, source_kind, zip_path, folder_text, key, model_names, chosen_ids,
                                   typed_text, progress)

        event = run.click(user_errors(dataset_handler),
                          inputs=[source, zip_in, folder_in, data_class_set, models, ids, typed],
                          outputs=[status, metrics, plot, confusion, changed, summary_file],
                          api_name="sensitivity_dataset")
        cancel.click(lambda: "Cancelled: the run stops after the current sample.", outputs=[status], cancels=[event],
                     api_visibility="private")
