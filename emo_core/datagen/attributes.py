"""EmoVIT's emotion attribute list for one image: given by the input, measured, or honestly absent.

Each attribute records its ``source``: ``given`` (the input stated it), ``measured`` (the image tab's
cues: brightness and colorfulness from ``cues.lowlevel``; objects, faces with their expressions and a
pose-based action from the offline models in ``cues.perception``) or ``not measured`` with the reason
(no offline model measures a scene type; ``--measure`` may switch measuring off). Nothing is filled
in by guessing.

``context_text`` writes EmoVIT's layout, which the LLM reads: the caption, a blank line, then
``emotion: X`` and one ``name: value`` line per attribute that has a value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..cues import lowlevel
from .sources import ATTRIBUTE_NAMES

MEASURE_MODES = ("models", "low-level", "none")
MODEL_ATTRIBUTES = ("object", "facial_expression", "human_action")  # need the offline models
MIN_OBJECT_PROBABILITY = 0.10  # below it the ImageNet classifier's top classes are noise
MAX_OBJECTS = 3

GIVEN, MEASURED, NOT_MEASURED = "given", "measured", "not measured"

METHODS = {
    "brightness": "mean sRGB lightness, 0 black to 1 white (cues.lowlevel)",
    "colorfulness": "Hasler-Süsstrunk M (0 grey, 33 moderately, 59 quite, 109 extremely colourful), not EmoSet's 0-1 "
                    "scale (cues.lowlevel)",
    "object": "EfficientNet-Lite0 ImageNet classes at probability >= 0.10 (an object cue, not a scene label)",
    "facial_expression": "BlazeFace faces, mini-Xception FER2013 expression per face, largest face first",
    "human_action": "mediapipe Pose landmarks and documented rules (cues.pose)",
}
NO_SCENE_MODEL = "no offline scene classifier (Places365 and the like need a hub download)"


@dataclass
class Attribute:
    value: object  # None when absent
    source: str  # given, measured or not measured
    text: str  # as written in the LLM's context ("" leaves the line out)
    note: str = ""  # how it was measured, or why it is absent

    def to_dict(self) -> dict:
        return asdict(self)


def describe_image(given: dict, rgb: np.ndarray, mode: str, perceiver_for=None) -> dict[str, Attribute]:
    """The attributes of one image (an HxWx3 uint8 array): the ``given`` ones as stated, the others
    measured as ``mode`` allows. ``perceiver_for`` returns the offline perceiver (models mode only)."""
    if mode not in MEASURE_MODES:
        raise ValueError(f"measure mode must be one of {', '.join(MEASURE_MODES)}, got {mode!r}")
    attributes = {name: _given(given[name]) for name in ATTRIBUTE_NAMES if name in given}
    missing = [name for name in ATTRIBUTE_NAMES if name not in attributes]
    if mode == "none":
        measured = {}
    else:
        small = lowlevel.downscaled(rgb)
        measured = {}
        if "brightness" in missing:
            value = lowlevel.brightness(small)
            measured["brightness"] = Attribute(round(value, 3), MEASURED,
                                               f"{value:.2f} ({lowlevel.describe_brightness(value)})",
                                               METHODS["brightness"])
        if "colorfulness" in missing:
            value = lowlevel.colorfulness(small)
            measured["colorfulness"] = Attribute(round(value, 1), MEASURED,
                                                 f"{value:.0f} ({lowlevel.describe_colorfulness(value)})",
                                                 METHODS["colorfulness"])
        if mode == "models" and any(name in missing for name in MODEL_ATTRIBUTES):
            measured.update(_from_models(perceiver_for().perceive(rgb)))
    for name in missing:
        if name in measured:
            attributes[name] = measured[name]
        elif name == "scene":
            attributes[name] = Attribute(None, NOT_MEASURED, "", NO_SCENE_MODEL)
        else:
            attributes[name] = Attribute(None, NOT_MEASURED, "", f"measuring switched off (--measure {mode})")
    return {name: attributes[name] for name in ATTRIBUTE_NAMES}


def _given(value) -> Attribute:
    if isinstance(value, (list, tuple)):
        text = ", ".join(str(part) for part in value)
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return Attribute(value, GIVEN, " ".join(text.split()))


def _from_models(perception) -> dict[str, Attribute]:
    from ..cues.objects import short_name

    found = {}
    objects = [(short_name(name), p) for name, p in perception.objects if p >= MIN_OBJECT_PROBABILITY][:MAX_OBJECTS]
    found["object"] = Attribute(
        [{"class": name, "probability": round(p, 3)} for name, p in objects], MEASURED,
        ", ".join(name for name, _ in objects),
        METHODS["object"] if objects else f"the object classifier is unsure (no class at {MIN_OBJECT_PROBABILITY:.2f} "
                                          "or above)")
    faces = sorted(perception.faces, key=lambda reading: -_area(reading.face.box))
    found["facial_expression"] = Attribute(
        [{"expression": r.expression, "confidence": round(r.confidence, 3)} for r in faces], MEASURED,
        ", ".join(r.expression for r in faces), METHODS["facial_expression"] if faces else "no face found")
    pose = perception.pose
    found["human_action"] = Attribute(list(pose.actions), MEASURED, ", ".join(pose.actions),
                                      METHODS["human_action"] if pose.actions else pose.summary)
    return found


def _area(box) -> float:
    x0, y0, x1, y1 = box
    return float(max(0, x1 - x0) * max(0, y1 - y0))


def context_text(caption: str, label: str, attributes: dict[str, Attribute]) -> str:
    """EmoVIT's layout: the caption, a blank line, ``emotion: X``, then ``name: value`` lines."""
    lines = [f"emotion: {label}"] + [f"{name}: {attribute.text}" for name, attribute in attributes.items()
                                     if attribute.text]
    return (caption.strip() + "\n\n" if caption.strip() else "") + "\n".join(lines)


def quoted_numbers(attributes: dict[str, Attribute]) -> list[str]:
    """The decimal numbers the context shows (e.g. "0.71"): an answer that repeats one quotes its input."""
    numbers = []
    for attribute in attributes.values():
        for word in attribute.text.replace(",", " ").replace("(", " ").split():
            if "." in word.strip(".") and word.replace(".", "", 1).isdigit():
                numbers.append(word)
    return numbers
