"""The offline video label: a documented fusion of face expressions, the AU pseudo-label and the
voice's arousal, over the chosen class set (MER2023, MERR-9, DFEW-7).

    support = W_FACE * faces + W_AU * au_pseudo_label + W_UNIFORM * uniform
    faces: FER2013 probabilities, mean of the peak frame and the track average, mapped to the
           class set by ``emo_core.expression_map`` (the same table as the image tab);
    au_pseudo_label: the EMFACS-style pseudo-label of the peak frame, mapped the same way;
    then each label is scaled by (1 + AROUSAL_GAIN * arousal * sign), sign +1 for high-arousal
    labels (angry, surprise, fear, happy), -1 for low-arousal ones (sad, neutral, doubt).

The weights are hand-set rules, not learned. Without a face only the voice is left: the result is
a near-uniform distribution tilted by arousal, and says so.
"""

from __future__ import annotations

import numpy as np

from ..expression_map import expression_to_labels, limits
from .au_rules import AU_COMBINATIONS

W_FACE, W_AU, W_UNIFORM = 0.6, 0.3, 0.1
AROUSAL_GAIN = 0.3
HIGH_AROUSAL = frozenset({"angry", "surprise", "fear", "happy", "anger", "excitement"})
LOW_AROUSAL = frozenset({"sad", "neutral", "doubt", "contentment", "sadness"})
# pseudo-labels are named like FER expressions, except "worried" which the MER sets have as a class
_PSEUDO_AS_EXPRESSION = {"worried": "fear"}


def fuse(labels: list[str], peak_expression: dict[str, float] | None, track_expression: dict[str, float] | None,
         pseudo_label: str | None, arousal: float | None) -> tuple[np.ndarray, str]:
    """(probabilities over ``labels``, basis text)."""
    labels = [label.casefold() for label in labels]
    uniform = np.full(len(labels), 1.0 / len(labels))
    parts = []
    if peak_expression:
        faces = {k: 0.5 * peak_expression[k] + 0.5 * (track_expression or peak_expression)[k] for k in peak_expression}
        face_support = expression_to_labels(faces, labels)
        if pseudo_label in labels:
            au_support = np.array([1.0 if label == pseudo_label else 0.0 for label in labels])
        else:
            expression = _PSEUDO_AS_EXPRESSION.get(pseudo_label, pseudo_label)
            au_support = expression_to_labels({expression: 1.0}, labels)
        support = W_FACE * face_support / face_support.sum() + W_AU * au_support / au_support.sum() + W_UNIFORM * uniform
        parts.append("face expressions (FER2013 model) and the AU pseudo-label, mapped by fixed tables")
    else:
        support = uniform.copy()
        parts.append("no face: only the voice")
    if arousal is not None:
        sign = np.array([1 if label in HIGH_AROUSAL else -1 if label in LOW_AROUSAL else 0 for label in labels])
        support = support * (1.0 + AROUSAL_GAIN * float(np.clip(arousal, -1, 1)) * sign)
        parts.append("voice arousal (prosody rule)")
    support = np.maximum(support, 1e-6)
    return support / support.sum(), "; ".join(parts)


def fusion_limits(labels: list[str]) -> list[str]:
    """What the offline video default cannot tell apart or never answers in this class set: the face
    table's limits, less the classes an action-unit pseudo-label names directly."""
    return limits(labels, frozenset(AU_COMBINATIONS) & {label.casefold() for label in labels})
