"""The one place where measured cues become a distribution over a class set (offline backend).

Faces: each face's FER2013 expression probabilities are mapped to the candidate labels through
``EXPRESSION_AFFINITY`` (hand-set weights, not learned). A row gives the share of that expression's
probability each label receives; whatever a row does not give to the class set (all of it, for an
expression the set has no class for, such as a neutral face in Emotion6) is spread evenly, because it
says nothing about those classes. So a neutral or unsure face yields a flat distribution, never a
confident label. Faces count alike unless they are much smaller than the largest (background
people), so two smiling faces outweigh one larger frowning face.

No face: only low-level cues exist. ``low_level_prior`` tilts a near-uniform distribution by valence
from brightness (brighter -> more pleasant) and by arousal from colorfulness (more saturated -> more
arousing), the two associations of Valdez & Mehrabian (1994). It is a weak rule: the offline default
abstains (``decide`` gives no label) and the distribution is shown only as that prior.

``limits(labels)`` says, from the same table, which classes of a set the offline default cannot tell
apart or never predicts; the UI shows it next to the answer.
"""

from __future__ import annotations

import numpy as np

from .cues.perception import ImagePerception

# rows: FER2013 expressions; columns: every label of every class set (absent = 0). Within one class
# set the labels present in a row share the expression's probability in these proportions (a row is
# rescaled only when its labels in the set add up to more than 1).
EXPRESSION_AFFINITY: dict[str, dict[str, float]] = {
    "angry": {"anger": 1.0, "angry": 1.0, "contempt": 0.3, "disgust": 0.15, "worried": 0.1},
    "disgust": {"disgust": 1.0, "contempt": 0.5, "anger": 0.3, "angry": 0.3},
    "fear": {"fear": 1.0, "worried": 0.6, "surprise": 0.2, "awe": 0.05},
    "happy": {"happy": 1.0, "joy": 1.0, "amusement": 0.45, "contentment": 0.3, "excitement": 0.2, "love": 0.35,
              "awe": 0.05},
    "sad": {"sad": 1.0, "sadness": 1.0, "worried": 0.25},
    "surprise": {"surprise": 1.0, "awe": 0.45, "excitement": 0.4, "amusement": 0.1, "fear": 0.1, "confusion": 0.15},
    "neutral": {"neutral": 1.0},
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
# A face counts fully when its width is at least this fraction of the largest face's, less in
# proportion below it (people in the background).
FULL_WEIGHT_SIZE = 0.5
# The offline default names a label only when its probability is at least this many times the
# uniform 1/n; below that the distribution is too flat to be an answer (a face read 0.81 neutral,
# 0.17 happy gives joy 0.24 in WebEmo-7, where uniform is 0.14: no answer).
MIN_LEAD_OVER_UNIFORM = 2.0
NO_FACE_ABSTAINS = "no face was found, so no model judged the emotion"
FLAT_ABSTAINS = "the faces show no expression that this class set can tell apart (a flat distribution)"


def affinity_row(expression: str, labels: list[str]) -> np.ndarray:
    """The share of ``expression``'s probability each label receives (before the even spread)."""
    row = np.array([EXPRESSION_AFFINITY.get(expression, {}).get(label, 0.0) for label in labels])
    return row / max(row.sum(), 1.0)


def expression_to_labels(expression_probs: dict[str, float], labels: list[str]) -> np.ndarray:
    """One face's expression probabilities -> support for each label (sums to the probabilities' sum)."""
    support = np.zeros(len(labels))
    for expression, probability in expression_probs.items():
        row = affinity_row(expression, labels)
        support += probability * (row + (1.0 - row.sum()) / len(labels))
    return support


def face_weights(sizes: list[float], scores: list[float]) -> np.ndarray:
    """Weights of faces of these widths and detector scores (see ``FULL_WEIGHT_SIZE``), summing to 1."""
    sizes = np.asarray(sizes, dtype=float)
    weights = np.minimum(sizes / (FULL_WEIGHT_SIZE * sizes.max()), 1.0) * np.asarray(scores, dtype=float)
    return weights / weights.sum()


def face_distribution(perception: ImagePerception, labels: list[str]) -> np.ndarray:
    readings = perception.faces
    weights = face_weights([r.face.size for r in readings], [r.face.score for r in readings])
    support = sum(w * expression_to_labels(r.expression_probs, labels) for w, r in zip(weights, readings))
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


_A_FACE = {"angry": "an angry", "disgust": "a disgusted", "fear": "a fearful", "happy": "a happy", "sad": "a sad",
           "surprise": "a surprised", "neutral": "a neutral"}


def decide(probabilities, labels: list[str], basis: str) -> tuple[str | None, str]:
    """(label, why there is none): the offline default abstains without a face or on a flat distribution."""
    probabilities = np.asarray(probabilities, dtype=float)
    if basis != "faces":
        return None, NO_FACE_ABSTAINS
    top = int(np.argmax(probabilities))
    if probabilities[top] < MIN_LEAD_OVER_UNIFORM / len(labels):
        return None, FLAT_ABSTAINS
    return labels[top], ""


def limits(labels: list[str] | tuple[str, ...], answerable_otherwise: frozenset[str] = frozenset()) -> list[str]:
    """What the offline default cannot do with this class set, in words, derived from the table.
    ``answerable_otherwise``: classes another cue can name (the video's action-unit pseudo-label), which
    are then not reported as never answered."""
    labels = [label.casefold() for label in labels]
    rows = {expression: affinity_row(expression, labels) for expression in EXPRESSION_AFFINITY}
    notes = []
    winners = {labels[int(np.argmax(row))] for row in rows.values() if row.sum() > 0}
    never = [label for label in labels if label not in winners and label not in answerable_otherwise]
    if never:
        notes.append(f"never the answer offline: {', '.join(never)} (no facial expression supports "
                     f"{'it' if len(never) == 1 else 'them'} more than another class)")
    main_source: dict[str, list[str]] = {}
    for index, label in enumerate(labels):
        shares = {expression: row[index] for expression, row in rows.items() if row[index] > 0}
        if shares:
            main_source.setdefault(max(shares, key=shares.get), []).append(label)
    for expression, group in main_source.items():
        if len(group) > 1 and not answerable_otherwise & set(group):  # another cue tells them apart
            both = "both" if len(group) == 2 else "all"
            notes.append(f"not told apart: {' / '.join(group)} ({both} read from {_A_FACE[expression]} face, "
                         f"split by a fixed table)")
    unsupported = [label for label in labels if all(row[labels.index(label)] == 0 for row in rows.values())
                   and label not in answerable_otherwise]
    if unsupported:
        notes.append(f"no facial expression supports {', '.join(unsupported)} at all")
    flat = [expression for expression, row in rows.items() if row.sum() == 0]
    if flat:
        faces = " or ".join(_A_FACE[expression] for expression in flat)
        notes.append(f"{faces} face gives a flat distribution and no answer (this set has no such class)")
    return notes


def _normalise(values: np.ndarray) -> np.ndarray:
    values = np.maximum(np.asarray(values, dtype=float), 0.0)
    values = values / values.sum() if values.sum() > 0 else np.full(len(values), 1.0 / len(values))
    values = (values + FLOOR) / (1.0 + FLOOR * len(values))
    return values
