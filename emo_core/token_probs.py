"""Class probabilities from the token log-probabilities an OpenAI-compatible endpoint returned.

A chat endpoint cannot score candidate answers, but many (OpenAI, vLLM, llama.cpp's server) return,
for each token they wrote, the log-probabilities of the ``k`` likeliest tokens at that position. At
the position where the answer names its label, those alternatives say how likely each *other* label
was to be written there. A label counts the probability of the alternatives that begin it (``" Joy"``,
``"joy"`` and ``"jo"`` all begin "joy"); a token that begins several labels (``"a"`` for "amusement"
and "awe") is attributed to none of them and reported as ambiguous.

This is the probability of each label's **first token**, which equals the label's probability when
the model, once it has started a label's word, finishes it (it almost always does); labels outside the
endpoint's top ``k`` count as 0, and the values are renormalised over the labels found. The result
says how much of that position's probability fell on label tokens (``coverage``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .backends.base import TokenChoices

# What may stand before a label's word inside the token that writes it ("Predicted emotion: joy").
_LEAD = " \t\n\"'*[(:`"
_TRAIL = " \t\n\"'*])`.,;:!?"


@dataclass
class LabelProbabilities:
    distribution: dict[str, float]  # over the labels, in their order; sums to 1
    coverage: float  # share of the position's probability on tokens that begin exactly one label
    ambiguous: float  # share on tokens that begin several labels (counted for none)
    unseen: list[str] = field(default_factory=list)  # labels not among the endpoint's alternatives


def label_probabilities(tokens: list[TokenChoices], text: str, label_start: int,
                        labels: list[str]) -> LabelProbabilities | None:
    """Probabilities of ``labels`` at the token that writes character ``label_start`` of ``text``; None when
    the tokens do not spell the text up to there (an endpoint may show partial characters as bytes), the
    label shares a token with the words before it, or no alternative begins a label."""
    spelled = "".join(token.text for token in tokens)
    if spelled[:label_start] != text[:label_start]:
        return None
    offset = 0
    for token in tokens:
        end = offset + len(token.text)
        if offset <= label_start < end:
            if token.text[: label_start - offset].strip(_LEAD):
                return None  # letters before the label in the same token: its alternatives are not labels
            return _at_position(token, labels)
        offset = end
    return None


def _at_position(token: TokenChoices, labels: list[str]) -> LabelProbabilities | None:
    mass = {label: 0.0 for label in labels}
    ambiguous = 0.0
    for text, logprob in token.alternatives.items():
        word = text.lstrip(_LEAD).rstrip(_TRAIL).casefold()
        if not word:
            continue
        # the token begins the label ("amu" for amusement), or is the label's word with an ending ("sadness"
        # for sad)
        begun = [label for label in labels if label.casefold().startswith(word) or word.startswith(label.casefold())]
        if len(begun) == 1:
            mass[begun[0]] += math.exp(logprob)
        elif len(begun) > 1:
            ambiguous += math.exp(logprob)
    covered = sum(mass.values())
    if covered <= 0:
        return None
    distribution = {label: value / covered for label, value in mass.items()}
    unseen = [label for label, value in mass.items() if value == 0]
    return LabelProbabilities(distribution, round(covered, 4), round(ambiguous, 4), unseen)
