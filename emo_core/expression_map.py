"""The one place where measured cues become a distribution over a class set (offline backend).

Faces: each face's FER2013 expression probabilities are mapped to the candidate labels through
``EXPRESSION_AFFINITY`` (hand-set weights, not learned: a happy face supports "joy" fully and the
positive Mikels classes in part; a neutral face supports "neutral" and, weakly, "contentment"). An
expression with no affinity to any candidate spreads its mass evenly (it carries no information for
that class set). Faces are weighted by area x detector score, so the main subject counts most.

No face: only low-level cues exist. ``low_level_prior`` tilts a near-uniform distribution by valence
from brightness (brighter -> more pleasant) and by arousal from colorfulness (more saturated -> more
arousing), the two associations of Valdez & Mehrabian (1994). It is a weak rule, its maximum stays
low, and the result says that no model judged the image.
"""

from __future__ import annotations

import numpy as np

from .cues.perception import ImagePerception

# rows: FER2013 expressions; columns: every label of every class set (absent = 0).
EXPRESSION_AFFINITY: dict[str, dict[str, float]] = {
    "angry": {"anger": 1.0, "angry": 1.0, "contempt": 0.3, "disgust": 0.15, "worried": 0.1, "negative": 1.0},
    "disgust": {"disgust": 1.0, "contempt": 0.5, "anger": 0.3, "angry": 0.3, "negative": 1.0},
    "fear": {"fear": 1.0, "worried": 0.6, "surprise": 0.2, "awe": 0.05, "negative": 1.0},
    "happy": {
        "happy": 1.0, "joy": 1.0, "amusement": 0.45, "contentment": 0.3, "excitement": 0.2, "love": 0.35,
        "awe": 0.05, "positive": 1.0,
    },
    "sad": {"sad": 1.0, "sadness": 1.0, "worried": 0.25, "doubt": 0.1, "negative": 1.0},
    "surprise": {
        "surprise": 1.0, "awe": 0.45, "excitement": 0.4, "amusement": 0.1, "fear": 0.1, "confusion": 0.15,
        "positive": 0.6, "negative": 0.4,
    },
    "neutral": {
        "neutral": 1.0, "contentment": 0.4, "awe": 0.15, "doubt": 0.2, "confusion": 0.2,
        "positive": 0.5, "negative": 0.5,
    },
}

POSITIVE_LABELS = frozenset({"amusement", "awe", "contentment", "excitement", "joy", "love", "happy", "positive"})
NEGATIVE_LABELS = frozenset(
    {"anger", "angry", "disgust", "fear", "sadness", "sad", "worried", "contempt", "confusion", "doubt", "negative"}
)
HIGH_AROUSAL_LABELS = frozenset({"amusement", "excitement", "anger", "angry", "fear", "surprise", "awe"})
LOW_AROUSAL_LABELS = frozenset({"contentment", "sadness", "sad", "neutral", "love", "doubt"})
COLORFULNESS_MIDPOINT = 45.0  # Hasler-Suesstrunk "averagely colourful"
FLOOR = 0.01  # keeps every class possible; the chart never shows a hard zero it did not measure
LOW_LEVEL_STRENGTH = 0.25  # how far brightness may move the no-face prior away from uniform


def expression_to_labels(expression_probs: dict[str, float], labels: list[str]) -> np.ndarray:
    """One face's expression probabilities -> unnormalised support for each label."""
    support = np.zeros(len(labels))
    uniform = np.full(len(labels), 1.0 / len(labels))
    for expression, probability in expression_probs.items():
        row = np.array([EXPRESSION_AFFINITY.get(expression, {}).get(label, 0.0) for label in labels])
        support += probability * (row / row.sum() if row.sum() > 0 else uniform)
    return support


def face_distribution(perception: ImagePerception, labels: list[str]) -> np.ndarray:
    weights = np.array([reading.face.area * reading.face.score for reading in perception.faces])
    weights = weights / weights.sum()
    support = sum(w * expression_to_labels(r.expression_probs, labels) for w, r in zip(weights, perception.faces))
    return _normalise(support)


def low_level_prior(brightness: float, colorfulness: float, labels: list[str]) -> np.ndarray:
    valence = float(np.clip((brightness - 0.5) * 2.0, -1.0, 1.0))  # -1 dark .. +1 bright
    arousal = float(np.clip((colorfulness - COLORFULNESS_MIDPOINT) / COLORFULNESS_MIDPOINT, -1.0, 1.0))

    def sign(label: str, plus: frozenset[str], minus: frozenset[str]) -> int:
        return 1 if label in plus else -1 if label in minus else 0

    tilt = np.array([
        1.0
        + LOW_LEVEL_STRENGTH * valence * sign(label, POSITIVE_LABELS, NEGATIVE_LABELS)
        + 0.5 * LOW_LEVEL_STRENGTH * arousal * sign(label, HIGH_AROUSAL_LABELS, LOW_AROUSAL_LABELS)
        for label in labels
    ])
    return _normalise(tilt)


def distribution(perception: ImagePerception, labels: list[str]) -> tuple[np.ndarray, str]:
    """(probabilities over ``labels``, basis), basis being ``"faces"`` or ``"low-level cues only"``."""
    labels = [label.casefold() for label in labels]
    if perception.faces:
        return face_distribution(perception, labels), "faces"
    return low_level_prior(perception.brightness, perception.colorfulness, labels), "low-level cues only"


def _normalise(values: np.ndarray) -> np.ndarray:
    values = np.maximum(np.asarray(values, dtype=float), 0.0)
    values = values / values.sum() if values.sum() > 0 else np.full(len(values), 1.0 / len(values))
    values = (values + FLOOR) / (1.0 + FLOOR * len(values))
    return values
