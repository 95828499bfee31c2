"""Label, class distribution and reason from a model backend, agreeing with one another.

Shared by the image and video tasks (each brings its own prompts):

- a backend that scores and can continue an answer (``hf``): the label is the best-scored class, the
  distribution a softmax over the model's log-likelihood of each class name ("model scores"); the
  reason is generated **continuing** ``Predicted emotion: <label>. Reason:``, so it explains that label;
- a backend that only generates (``openai``): **one** generation answers the reasoning prompt, and the
  label and reason are both read from it. Where the endpoint returned token log-probabilities, the
  distribution is each label's first-token probability where the answer names its label
  ("first-token probabilities", see ``token_probs``); otherwise there is none ("parsed answer") and
  no bar of 100% is drawn;
- a backend that scores but cannot continue: one generation gives label and reason, the distribution
  comes from the scores, and a label that disagrees with them is said so in a note.

The model's raw text is never shown as a reason: the reason is what follows "Reason:" up to a second
answer, if the model starts one; an answer without it has no reason, and a note says so. Without a
reason (batch runs, the ``[emotion]`` task) no reason is generated at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

from ..backends import Backend, TokenChoices
from ..errors import CapabilityError
from ..parsing import answer_prefix, parse_prediction, split_reason
from ..token_probs import label_probabilities

# What ``distribution`` holds; only the first three are probabilities a model gave.
MODEL_SCORES = "model scores"  # softmax over the model's log-likelihood of each class name
FIRST_TOKEN = "first-token probabilities"  # the endpoint's log-probabilities where the answer names a label
CUE_MAPPING = "cue mapping"  # measured cues through a fixed table (offline backend), not a model's judgement
PARSED = "parsed answer"  # no distribution: the label was read from the model's text
NO_LABEL = "none"  # the answer named no class of the set
PROBABILITY_KINDS = (MODEL_SCORES, FIRST_TOKEN, CUE_MAPPING)

LABEL_TOKENS = 32  # enough for "Predicted emotion: <label>." and some politeness
SCORED_BASIS = "model likelihood of each label"


@dataclass
class ModelAnswer:
    label: str | None = None
    distribution: dict[str, float] = field(default_factory=dict)
    distribution_kind: str = NO_LABEL
    reason: str = ""
    raw_text: str = ""  # the model's whole answer (with the prefix it continued), for the record
    basis: str = ""
    notes: list[str] = field(default_factory=list)
    reason_by_model: bool = False
    complete: bool = False  # False while the answer streams

    @property
    def confidence(self) -> float | None:
        """The label's probability, where the distribution is one."""
        if self.label is None or self.distribution_kind not in PROBABILITY_KINDS:
            return None
        return round(self.distribution.get(self.label, 0.0), 4)


def softmax(log_likelihoods: dict[str, float], labels: list[str]) -> dict[str, float]:
    top = max(log_likelihoods.values())
    weights = {label: math.exp(log_likelihoods[label] - top) for label in labels}
    total = sum(weights.values())
    return {label: weight / total for label, weight in weights.items()}


METHODS = ("auto", "score", "generate")


def answer_stream(backend: Backend, label_messages: list, reason_messages: list, labels: list[str], *,
                  with_reason: bool, reason_tokens: int, method: str = "auto") -> Iterator[ModelAnswer]:
    """Yields one ``ModelAnswer`` as it fills: when the label is known (score) and each time the
    generated text grows; the last one has ``complete`` set. ``label_messages`` ask for the label only
    (scored, or answered in a few tokens when no reason is wanted), ``reason_messages`` for label and
    reason. A backend without "generate" gives no reason here (the caller writes its own).
    ``method``: "auto" scores where the backend can; "score" and "generate" insist on one way (an
    evaluation compares them), and a backend that cannot do it raises ``CapabilityError``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "score" and not backend.supports("score"):
        raise CapabilityError(f"the {backend.name} backend cannot score candidate answers; use the generate method")
    answer = ModelAnswer()
    scores = None
    if backend.supports("score") and method != "generate":
        scores = softmax(backend.score(label_messages, labels), labels)
        answer.label = max(scores, key=scores.get)
        answer.distribution = scores
        answer.distribution_kind = CUE_MAPPING if backend.judges_from_cues else MODEL_SCORES
        answer.basis = SCORED_BASIS
        if not (with_reason and backend.supports("generate")):
            answer.complete = True
            yield answer
            return
        yield answer
        if backend.supports("continue"):
            yield from _continue_reason(backend, reason_messages, answer, reason_tokens)
            return
    if not backend.supports("generate"):
        raise CapabilityError(f"the {backend.name} backend cannot generate text"
                              + ("; it answers by scoring (the score method)" if backend.supports("score") else ""))
    messages, tokens = (reason_messages, reason_tokens) if with_reason else (label_messages, LABEL_TOKENS)
    yield from _one_generation(backend, messages, tokens, labels, answer, scores, with_reason)


def _continue_reason(backend: Backend, messages: list, answer: ModelAnswer, tokens: int) -> Iterator[ModelAnswer]:
    """The reason for the scored label: the model continues the answer that names it."""
    prefix = answer_prefix(answer.label)  # "Predicted emotion: awe. Reason:"
    text = ""
    for piece in backend.generate_stream(messages, max_new_tokens=tokens, answer_prefix=prefix):
        text += piece
        answer.reason = split_reason(text)[0]
        answer.raw_text = prefix + text
        yield answer
    answer.reason, second = split_reason(text)
    if second:
        answer.notes.append("after its reason the model began another answer; that part is not shown as the "
                            "reason (it is in raw_text)")
    if not answer.reason:
        answer.notes.append("the model wrote no reason for this label")
    answer.reason_by_model = bool(answer.reason)
    answer.complete = True
    yield answer


def _one_generation(backend: Backend, messages: list, tokens: int, labels: list[str], answer: ModelAnswer,
                    scores: dict[str, float] | None, with_reason: bool) -> Iterator[ModelAnswer]:
    """Label and reason read from one generated answer (and its token log-probabilities, if any)."""
    choices: list[TokenChoices] = []
    text = ""
    for piece in backend.generate_stream(messages, max_new_tokens=tokens, token_choices=choices):
        text += piece
        answer.raw_text = text
        if with_reason:
            parsed = parse_prediction(text, labels)
            if parsed.has_reason:  # the label's sentence is complete
                answer.label = parsed.label
                answer.reason = split_reason(parsed.reason)[0]
            yield answer

    parsed = parse_prediction(text, labels)
    answer.label = parsed.label
    answer.basis = f"model answer ({parsed.status})"
    if with_reason:
        answer.reason, second = split_reason(parsed.reason)
        if not parsed.has_reason:
            answer.notes.append("the model's answer has no 'Reason:' part, so no reason is shown (its text is in "
                                "raw_text)")
        elif second:
            other = parse_prediction(second, labels).label
            named = f" naming {other}" if other and other != parsed.label else ""
            answer.notes.append(f"after its reason the model began another answer{named}; that part is not shown "
                                "as the reason (it is in raw_text)")
        answer.reason_by_model = bool(answer.reason)
    if parsed.label is None:
        answer.distribution, answer.distribution_kind = {}, NO_LABEL
        answer.notes.append("the model's answer names no single class of this set, so there is no label")
    elif scores is not None:
        answer.distribution, answer.distribution_kind = scores, MODEL_SCORES
        favoured = max(scores, key=scores.get)
        if favoured != parsed.label:
            answer.notes.append(f"the model's written answer is {parsed.label}, but its scores favour {favoured} "
                                f"({scores[favoured]:.0%} against {scores[parsed.label]:.0%})")
    else:
        _first_token_distribution(answer, choices, text, parsed.label_start, labels)
    answer.complete = True
    yield answer


def _first_token_distribution(answer: ModelAnswer, choices: list[TokenChoices], text: str, label_start: int | None,
                              labels: list[str]) -> None:
    probabilities = label_probabilities(choices, text, label_start, labels) if choices and label_start is not None \
        else None
    if probabilities is None:
        answer.distribution, answer.distribution_kind = {}, PARSED
        return
    answer.distribution, answer.distribution_kind = probabilities.distribution, FIRST_TOKEN
    answer.basis += ", with the endpoint's token probabilities"
    details = f"{probabilities.coverage:.0%} of the probability at that token was on class names"
    if probabilities.ambiguous:
        details += f", {probabilities.ambiguous:.0%} on tokens that begin several of them (counted for none)"
    if probabilities.unseen:
        details += f"; not among the endpoint's likeliest tokens (shown as 0): {', '.join(probabilities.unseen)}"
    answer.notes.append(f"probabilities of each class's first token where the answer names its label: {details}")
    favoured = max(probabilities.distribution, key=probabilities.distribution.get)
    if favoured != answer.label:
        answer.notes.append(f"the model wrote {answer.label}, but its first-token probabilities favour {favoured}")
