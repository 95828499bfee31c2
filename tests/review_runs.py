"""Writes generator run folders for the review tests: images drawn with Pillow, LLaVA-format samples of the
three types with attributes (given / measured) and provenance, as the generator lays them out."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

LABELS = ("amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness")
TYPES = ("categorical", "conversation", "reasoning")


def draw_image(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    image = Image.new("RGB", (96, 72), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(80), rng.randrange(60)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x, y, x + rng.randrange(8, 30), y + rng.randrange(8, 30)), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def sample(image: str, kind: str, index: int, label: str, *, answer: str | None = None, prompt_version: str = "v1") -> dict:
    sample_id = hashlib.sha256(f"{image}|{kind}|{index}|{prompt_version}".encode()).hexdigest()[:24]
    if kind == "categorical":
        turns = [("Which emotion does this image evoke? Choose one of: " + ", ".join(LABELS) + ".", f"Predict emotion: {label}")]
    elif kind == "conversation":
        turns = [("How bright is the picture?", "Quite bright, with soft light."),
                 ("What is the mood?", answer or f"It feels like {label}.")]
    else:
        turns = [("Why does this image evoke this feeling?", answer or f"The colours and the faces suggest {label}.")]
    conversations = []
    for number, (question, reply) in enumerate(turns):
        conversations.append({"from": "human", "value": ("<image>\n" if number == 0 else "") + question})
        conversations.append({"from": "gpt", "value": reply})
    return {
        "id": sample_id, "image": image, "conversations": conversations, "type": kind, "label": label,
        "attributes": {"caption": {"value": f"A drawn scene number {index}.", "source": "given"},
                       "emotion": {"value": label, "source": "given"},
                       "brightness": {"value": 0.61, "source": "measured"},
                       "colorfulness": {"value": 0.33, "source": "measured"}},
        "provenance": {"model": "scripted-llm", "temperature": 0.7, "seed": index, "prompt_file": f"{kind}.txt",
                       "prompt_hash": "ab12cd34", "prompt_version": prompt_version, "raw_text": turns[-1][1],
                       "tokens": {"in": 120, "out": 40}, "seconds": 0.01},
    }


def write_run(folder: Path, n_images: int = 4, *, run_id: str | None = "run-test", types=TYPES, seed: int = 0,
              answers: dict | None = None, prompt_version: str = "v1", torn_tail: str = "") -> list[dict]:
    """A run folder with ``n_images`` images under ``images/`` and one sample per image and type."""
    folder = Path(folder)
    rows = []
    for number in range(n_images):
        image = f"{LABELS[number % len(LABELS)]}/img_{seed}_{number}.png"
        draw_image(folder / "images" / image, seed * 1000 + number)
        for kind in types:
            rows.append(sample(image, kind, number, LABELS[number % len(LABELS)],
                               answer=(answers or {}).get((number, kind)), prompt_version=prompt_version))
    meta = {"image_root": "images", "types": list(types)}
    if run_id is not None:
        meta["run_id"] = run_id
    (folder / "run.json").write_text(json.dumps(meta))
    with open(folder / "samples.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
        handle.write(torn_tail)
    return rows
