"""MERR files -> training examples for Emotion-LLaMA's two stages.

A MERR file is a JSON object keyed by clip: ours (``python -m emo_core.merr_annotate``, keys are file
names) or the public MERR releases (keys are sample names without an extension). Each record becomes
prompts in the model's template with the record's transcript as the subtitle
(``prompts/emotion_llama.txt``; an empty transcript is "nothing", as in the video tab):

- stage 1, coarse: ``[visual]`` answered by ``visual_prior_list``, ``[audio]`` by ``audio_prior_list``
  (type *conversation*), and ``[reason]`` by the coarse description: ``multimodal_description`` (ours) or
  ``smp_reason_caption`` (the public coarse-grained file, where that field holds the coarse caption),
  type *reasoning*;
- stage 2, fine-grained: ``[emotion]`` answered ``Predicted emotion: X.`` (type *categorical*; the label
  is ``true_label`` or ``label`` when the record has one, else the pipeline's ``pseu_emotion``) and
  ``[reason]`` answered ``Predicted emotion: X. Reason: <smp_reason_caption>`` (type *reasoning*).

An example's ``image`` is the clip's path relative to ``--videos``. Every clip must exist before training.
"""

from __future__ import annotations

from pathlib import Path

from emo_core import prompts
from emo_core.labels import resolve_class_set
from emo_core.video.decode import VIDEO_SUFFIXES

from . import FinetuneError
from .config import DataConfig
from .data import Example, Splits, read_json, select


def _read(path: str | Path) -> dict:
    path = Path(path)
    records = read_json(path, "MERR file")
    if not isinstance(records, dict) or not records or not all(isinstance(r, dict) for r in records.values()):
        raise FinetuneError(f"{path.name}: a MERR file is a non-empty JSON object of records keyed by clip")
    return records


def clip_file(folder: Path, name: str) -> str | None:
    """The clip's path relative to ``folder``: ``name`` itself, or ``name`` plus a video extension."""
    if (folder / name).is_file():
        return name
    for suffix in sorted(VIDEO_SUFFIXES):
        if (folder / f"{name}{suffix}").is_file():
            return f"{name}{suffix}"
    return None


def _label(record: dict) -> str:
    for key in ("true_label", "label", "pseu_emotion"):
        if isinstance(record.get(key), str) and record[key].strip():
            return record[key].strip().casefold()
    return ""


def record_examples(name: str, video: str, record: dict, stage: int, labels: list[str]) -> list[Example]:
    tasks = prompts.sentence_table("emotion_llama_tasks.txt")
    subtitle = str(record.get("text") or "").strip() or "nothing"
    options = prompts.format_options(labels)

    def example(task: str, answer: str, kind: str, label: str | None = None) -> Example:
        question = prompts.render("emotion_llama", subtitle=subtitle, task=task,
                                  instruction=tasks[task].format(options=options))
        return Example(f"{name}|{task}", name, video, question, answer, kind, label)

    out = []
    if stage == 1:
        visual = " ".join(str(t) for t in record.get("visual_prior_list") or [] if str(t).strip())
        audio = " ".join(str(t) for t in record.get("audio_prior_list") or [] if str(t).strip())
        coarse = str(record.get("multimodal_description") or record.get("smp_reason_caption") or "").strip()
        if visual:
            out.append(example("visual", visual, "conversation"))
        if audio:
            out.append(example("audio", audio, "conversation"))
        if coarse:
            out.append(example("reason", coarse, "reasoning"))
        return out
    label = _label(record)
    reason = str(record.get("smp_reason_caption") or "").strip()
    if label:
        out.append(example("emotion", f"Predicted emotion: {label}.", "categorical", label))
        if reason:
            out.append(example("reason", f"Predicted emotion: {label}. Reason: {reason}", "reasoning", label))
    return out


def read_merr_examples(path: str | Path, folder: str | Path, stage: int, class_set: str) -> list[Example]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FinetuneError(f"clip folder {folder.name} not found")
    labels = list(resolve_class_set(class_set).class_set.labels)
    examples, missing = [], []
    for name, record in _read(path).items():
        video = clip_file(folder, name)
        if video is None:
            missing.append(name)
            continue
        examples += record_examples(name, video, record, stage, labels)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise FinetuneError(f"{len(missing)} clip{'s' if len(missing) > 1 else ''} of {Path(path).name} not found "
                            f"in the clip folder: {shown}")
    return examples


def load_splits(config: DataConfig, stage: int, seed: int) -> Splits:
    train = select(read_merr_examples(config.data, config.image_folder, stage, config.class_set),
                   config.types, config.fraction, seed)
    if not train:
        raise FinetuneError(f"no stage-{stage} training examples of type {', '.join(config.types)} in "
                            f"{Path(config.data).name}")
    val = read_merr_examples(config.val_data, config.image_folder, stage, config.class_set) if config.val_data else []
    return Splits(train, val)
