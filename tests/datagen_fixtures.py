"""Generated inputs for the generator's tests: small distinct images in the three input layouts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from emo_core import Settings


def write_image(path: Path, seed: int, size: int = 48) -> Path:
    """A distinct small PNG (random blocks: every seed gives other bytes)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.kron(blocks, np.ones((size // 6, size // 6, 1), dtype=np.uint8))).save(path)
    return path


def class_folders(root: Path, per_label: dict[str, int], first_seed: int = 0) -> Path:
    """``root/<label>/<n>.png`` for each label; returns root."""
    seed = first_seed
    for label, count in per_label.items():
        for number in range(count):
            write_image(root / label / f"{number}.png", seed)
            seed += 1
    return root


def as_csv(folder_root: Path, csv_path: Path, extra: dict[str, dict] | None = None) -> Path:
    """The images of a class-folder tree as a CSV next to them (``path,label`` + ``extra`` columns by image)."""
    extra = extra or {}
    columns = ["path", "label"] + sorted({c for row in extra.values() for c in row})
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for path in sorted(folder_root.rglob("*.png")):
            relative = path.relative_to(csv_path.parent).as_posix()
            writer.writerow({"path": relative, "label": path.parent.name, **extra.get(relative, {})})
    return csv_path


def as_emoset(folder_root: Path, dataset: Path, attributes: dict | None = None) -> Path:
    """EmoSet's layout: ``dataset/image/<label>/<name>`` and ``dataset/annotation/<label>/<stem>.json``."""
    for path in sorted(folder_root.rglob("*.png")):
        label = path.parent.name
        image = dataset / "image" / label / path.name
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(path.read_bytes())
        annotation = dataset / "annotation" / label / f"{path.stem}.json"
        annotation.parent.mkdir(parents=True, exist_ok=True)
        record = {"image_id": f"{label}_{path.stem}", "image": f"image/{label}/{path.name}", "emotion": label,
                  **(attributes or {})}
        annotation.write_text(json.dumps(record))
    return dataset


def stub_settings(base_url: str, **overrides) -> Settings:
    values = dict(datagen_base_url=base_url, datagen_model="stub-model", datagen_measure="low-level",
                  datagen_api_key_env="EMOLENS_TEST_DATAGEN_KEY", datagen_concurrency=4, datagen_timeout=5.0,
                  datagen_max_retries=2, preload=False)
    values.update(overrides)
    return Settings(**values)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
