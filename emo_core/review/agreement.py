"""Agreement between annotators: Cohen's kappa on accept/reject, and how much editors changed the text.

Kappa is computed here (two raters, any labels): ``(p_o - p_e) / (1 - p_e)`` with ``p_o`` the share of
items on which the two agree and ``p_e`` the agreement expected from each rater's label shares. When
``p_e`` is 1 (both raters gave one and the same label throughout) kappa is undefined and None is
returned, where sklearn returns nan. Edit distance is rapidfuzz's normalised Levenshtein distance
(0: unchanged, 1: nothing in common).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels for the same items (None when undefined or no items)."""
    if len(first) != len(second):
        raise ValueError("both raters must label the same items")
    total = len(first)
    if total == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second)) / total
    first_counts, second_counts = Counter(first), Counter(second)
    expected = sum(first_counts[label] * second_counts[label] for label in first_counts) / total ** 2
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def edit_distance(original: str, edited: str) -> float:
    """Normalised Levenshtein distance between two texts, in [0, 1]."""
    from rapidfuzz.distance import Levenshtein

    return float(Levenshtein.normalized_distance(original, edited))
