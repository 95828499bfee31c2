"""Generated fine-tuning data: small distinct images and records in the three layouts ``finetune`` reads.

Each image gets one categorical sample, one conversation sample of two turns and one reasoning sample,
written as the generator's LLaVA export, its instructblip export, or EmoVIT's ``all.json`` (one turn per
record, no type). The answers follow the formats of the papers; the words are fixture text.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from emo_core import prompts
from emo_core.labels import get_class_set
from tests.datagen_fixtures import write_image

MIKELS = list(get_class_set("mikels8").labels)


def samples(count: int, first_seed: int = 0) -> list[dict]:
    """LLaVA-export samples (with ``type`` and ``label`` kept aside for the other layouts)."""
    question = prompts.render("categorical", options=MIKELS)
    out = []
    for n in range(count):
        label = MIKELS[(n + first_seed) % len(MIKELS)]
        image = f"img{n + first_seed:03d}.png"
        out.append({"id": f"c{n + first_seed}", "image": image, "type": "categorical", "label": label,
                    "conversations": [{"from": "human", "value": f"<image>\n{question}"},
                                      {"from": "gpt", "value": f"Predict emotion: {label}"}]})
        out.append({"id": f"v{n + first_seed}", "image": image, "type": "conversation", "label": label,
                    "conversations": [{"from": "human", "value": "<image>\nWhat is the main colour?"},
                                      {"from": "gpt", "value": f"Mostly bright blocks, a {label} mood."},
                                      {"from": "human", "value": "Is there a person?"},
                                      {"from": "gpt", "value": "No person is visible."}]})
        out.append({"id": f"r{n + first_seed}", "image": image, "type": "reasoning", "label": label,
                    "conversations": [{"from": "human", "value": "<image>\nWhy does this image feel this way?"},
                                      {"from": "gpt", "value": f"Predicted emotion: {label}. Reason: the colours."}]})
    return out


def write_dataset(root: Path, count: int, layout: str = "llava", first_seed: int = 0, name: str = "train.json",
                  image_size: int = 48) -> Path:
    """Images under ``root/images`` and the records in ``root/name``; returns the data file."""
    records = samples(count, first_seed)
    for record in records:
        path = root / "images" / record["image"]
        if not path.exists():
            write_image(path, int(record["image"][3:6]), image_size)
    if layout == "llava":
        written = [{"id": r["id"], "image": r["image"], "conversations": r["conversations"]} for r in records]
    elif layout == "emovit":
        written = [{"id": r["id"][-5:], "image": r["image"], "conversations": r["conversations"][2 * t:2 * t + 2]}
                   for r in records for t in range(len(r["conversations"]) // 2)]
    elif layout == "instructblip":
        written = [{"id": f"{r['id']}-{t}", "sample_id": r["id"], "image": r["image"],
                    "text_input": r["conversations"][2 * t]["value"].replace("<image>\n", ""),
                    "text_output": r["conversations"][2 * t + 1]["value"], "type": r["type"], "label": r["label"]}
                   for r in records for t in range(len(r["conversations"]) // 2)]
    else:
        raise ValueError(layout)
    path = root / name
    path.write_text(json.dumps(written, indent=1), encoding="utf-8")
    return path


def sharpened_copy(model_dir: Path, destination: Path, scale: float = 25.0) -> Path:
    """The tiny checkpoint with its output head scaled up. A random 2-layer LLM initialised at std 0.02
    predicts an almost uniform distribution whatever its input, so no soft prompt (what Q-Former tuning
    learns) can lower its loss measurably; with larger output weights its predictions depend on the input
    and training has something to find."""
    import torch
    import transformers

    from emo_core.backends.hf_loading import load_config

    shutil.copytree(model_dir, destination)
    config = load_config(str(model_dir))
    model_class = {"instructblip": transformers.InstructBlipForConditionalGeneration,
                   "llava": transformers.LlavaForConditionalGeneration}[config.model_type]
    model = model_class.from_pretrained(model_dir)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(scale)
    model.save_pretrained(destination)
    return destination
