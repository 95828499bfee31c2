"""Shared by the study tests: generated images, a pairs CSV, a created study and a rater that votes by system."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

from emo_core import Settings
from emo_core.study import create_study, invite_raters

SYSTEMS = ("model-x", "human")  # names that never appear in the captions below


@dataclass
class MadeStudy:
    name: str
    captions: dict[str, str]  # caption -> the system that wrote it
    tokens: list[str]


def write_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        image = Image.new("RGB", (96, 64), (40 + 7 * index % 200, 90, 160))
        ImageDraw.Draw(image).ellipse((10 + index % 50, 10, 50 + index % 50, 50), fill=(250, 220, 30))
        paths.append(folder / f"picture{index}.png")
        image.save(paths[-1])
    return paths


def write_pairs(path: Path, rows: list[list[str]], header=("image", "caption_a", "system_a", "caption_b", "system_b")):
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_study(settings: Settings, folder: Path, name: str, n_items: int, n_raters: int,
               systems: tuple[str, str] = SYSTEMS) -> MadeStudy:
    images = write_images(folder / "images", n_items)
    captions, rows = {}, []
    for index, image in enumerate(images):
        first, second = f"a dog walks into bar {index}", f"the cat files taxes {index}"
        captions[first], captions[second] = systems
        rows.append([f"images/{image.name}", first, systems[0], second, systems[1]])
    create_study(settings, name, write_pairs(folder / "pairs.csv", rows))
    return MadeStudy(name, captions, [token_of(link) for _, link in invite_raters(settings, name, n_raters)])


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def choice_for(captions: dict[str, str], left: str, right: str, outcome: str) -> str:
    """The button that gives ``outcome`` (a system name, or tie / neither / skip) for this placement."""
    if outcome in ("tie", "neither", "skip"):
        return outcome
    if captions[left] == outcome:
        return "left"
    assert captions[right] == outcome
    return "right"
