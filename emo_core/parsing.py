"""Reading a model's free-text answer (``Predicted emotion: X. Reason: ...``) into a label.

EmoVIT's categorical answers say ``Predict emotion: X``, its reasoning answers ``Predicted emotion: X.
Reason: ...``; other models add words around them. An answer that names no label of the class set, or
names several, is reported as *unparsed* (``label is None``): it is never mapped to a default class.
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
        segment = raw[marker.end():]
        # The predicted label ends at the first sentence break or at "Reason:".
        segment = re.split(r"[.\n;]|\breason\s*[:：]", segment, maxsplit=1, flags=re.IGNORECASE)[0]
    else:
        segment = raw[: reason_match.start()] if reason_match else raw

    candidate = segment.strip().strip("\"'[]()*`").strip().casefold()
    if candidate in labels:
        return ParsedAnswer(candidate, "exact", reason, raw)

    found: list[str] = []
    for word in _WORD.findall(segment):
        label = label_for_word(word, labels)
        if label is not None and label not in found:
            found.append(label)
    if len(found) == 1:
        status = "exact" if any(w.casefold() == found[0] for w in _WORD.findall(segment)) else "synonym"
        return ParsedAnswer(found[0], status, reason, raw)
    return ParsedAnswer(None, "unparsed", reason, raw)


def format_prediction(label: str, reason: str) -> str:
    """The paper's reasoning format."""
    reason = reason.strip()
    if reason and not reason.endswith((".", "!", "?")):
        reason += "."
    return f"Predicted emotion: {label}. Reason: {reason}"
