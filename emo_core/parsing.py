"""Reading a model's free-text answer (``Predicted emotion: X. Reason: ...``) into a label.

EmoVIT's categorical answers say ``Predict emotion: X``, its reasoning answers ``Predicted emotion: X.
Reason: ...``; other models add words around them. An answer that names no label of the class set, or
names several, is reported as *unparsed* (``label is None``): it is never mapped to a default class.

A reason is the text after ``Reason:``, up to a second ``Predicted emotion:`` if the model starts
another answer (``split_reason``): what comes after is another answer, not a reason for this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .labels import label_for_word

_MARKER = re.compile(r"predict(?:ed)?\s+emotion\s*(?:is|was)?\s*[:：\-]?\s*", re.IGNORECASE)
_REASON = re.compile(r"\breason\s*[:：]\s*", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class ParsedAnswer:
    label: str | None
    status: str  # "exact", "synonym", "unparsed"
    reason: str
    raw: str
    label_start: int | None = None  # where the label's word starts in ``raw``
    has_reason: bool = False  # the answer has a "Reason:" part (maybe still empty while it streams)
    named: tuple[str, ...] = ()  # every label the answer's label part names (two or more: ambiguous)

    @property
    def parsed(self) -> bool:
        return self.label is not None


def parse_prediction(text: str, labels: tuple[str, ...] | list[str]) -> ParsedAnswer:
    """Find which of ``labels`` the answer ``text`` predicts."""
    labels = tuple(label.casefold() for label in labels)
    raw = text or ""
    reason_match = _REASON.search(raw)
    reason = raw[reason_match.end():].strip() if reason_match else ""

    marker = _MARKER.search(raw)
    if marker:
        start = marker.end()
        segment = raw[start:]
        # The predicted label ends at the first sentence break or at "Reason:".
        segment = re.split(r"[.\n;]|\breason\s*[:：]", segment, maxsplit=1, flags=re.IGNORECASE)[0]
    else:
        start = 0
        segment = raw[: reason_match.start()] if reason_match else raw

    stripped = segment.strip().strip("\"'[]()*`").strip()
    candidate = stripped.casefold()
    if candidate in labels:
        return ParsedAnswer(candidate, "exact", reason, raw, start + segment.find(stripped), bool(reason_match),
                            (candidate,))

    found: list[tuple[str, int]] = []
    for word in _WORD.finditer(segment):
        label = label_for_word(word.group(), labels)
        if label is not None and label not in [f[0] for f in found]:
            found.append((label, start + word.start()))
    named = tuple(label for label, _ in found)
    if len(found) == 1:
        label, position = found[0]
        status = "exact" if any(w.casefold() == label for w in _WORD.findall(segment)) else "synonym"
        return ParsedAnswer(label, status, reason, raw, position, bool(reason_match), named)
    return ParsedAnswer(None, "unparsed", reason, raw, None, bool(reason_match), named)


def unparsed_reason(parsed: ParsedAnswer) -> str:
    """Why an answer has no label: "empty" (no text), "ambiguous" (names two or more classes) or
    "not a class" (names none); "" for a parsed answer."""
    if parsed.label is not None:
        return ""
    if not parsed.raw.strip():
        return "empty"
    return "ambiguous" if len(parsed.named) > 1 else "not a class"


def split_reason(reason: str) -> tuple[str, str]:
    """(the reason, a second answer the model went on to write after it, or "")."""
    second = _MARKER.search(reason)
    if second is None:
        return reason.strip(), ""
    return reason[: second.start()].strip(), reason[second.start():].strip()


def answer_prefix(label: str) -> str:
    """The start of an answer in the paper's reasoning format, up to where its reason begins."""
    return f"Predicted emotion: {label}. Reason:"


def format_prediction(label: str, reason: str) -> str:
    """The paper's reasoning format; without a reason, the label's sentence alone."""
    reason = reason.strip()
    if not reason:
        return f"Predicted emotion: {label}."
    if not reason.endswith((".", "!", "?")):
        reason += "."
    return f"{answer_prefix(label)} {reason}"
