"""Checks on the text a small language model writes, shared by the reason writer and the caption writer.

- ``one_line``: a text's whitespace (newlines too) collapsed, so it cannot break a one-line-per-field prompt;
- ``whole_words``: a streamed text up to its last complete word (the last one may still be growing);
- ``SENTENCE_END``: a full stop, question or exclamation mark, maybe closing a quotation;
- ``repetition``: why a text is a repetition loop (a 4-word sequence that comes back, one character
  repeated), or "".
"""

from __future__ import annotations

import re

REPEATED_NGRAM = 4  # a 4-word sequence that occurs twice in a text of 1-3 sentences is a loop, not style
SENTENCE_END = re.compile(r"[.!?][\"')]?(?=\s|$)")
WORD = re.compile(r"[a-z]+")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def whole_words(text: str) -> str:
    """``text`` up to its last complete word: the last word of a stream may still be growing."""
    if text.endswith((" ", ".", "!", "?", ",", ";", ":")):
        return text.strip()
    cut = text.rfind(" ")
    return text[:cut].strip() if cut > 0 else ""


def repetition(text: str) -> str:
    words = WORD.findall(text.lower())
    seen: set[tuple[str, ...]] = set()
    for start in range(len(words) - REPEATED_NGRAM + 1):
        gram = tuple(words[start : start + REPEATED_NGRAM])
        if gram in seen:
            return f"the language model repeated itself ({' '.join(gram)!r})"
        seen.add(gram)
    if re.search(r"(\S)\1{7,}", text):  # "!!!!!!!!", "........"
        return "the language model repeated one character"
    return ""
