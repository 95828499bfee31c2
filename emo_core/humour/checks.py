"""What a written caption must pass before it is shown, and when two captions are the same joke.

- ``finish_caption``: the model's text as a caption: its first line, without a "Caption:" label or
  wrapping quotes, trimmed to whole sentences (at most ``MAX_SENTENCES``); "" with the problem when
  nothing usable is left (empty, a few words, a sentence cut off by the token limit);
- ``CaptionCheck``: rejects a caption that only restates the measured cues ("one face, expression
  happy, bright") or the words read in the image, a repetition loop, a face where none was found (or
  "nobody" where one was), and, for the offline base model, which likes to lift them, a caption copied
  from a few-shot example or one that lifts an example's phrase about things no cue mentions ("the
  pizza box" in a caption for a photo of a lake);
- ``near_duplicate``: two captions whose words are nearly the same, in any order (rapidfuzz), count as
  one: the request asks the next seed instead.
"""

from __future__ import annotations

import re
from typing import Iterable

from rapidfuzz import fuzz, utils

from ..llm.text_checks import SENTENCE_END, one_line, repetition

MAX_SENTENCES = 2
MIN_WORDS = 4
# rapidfuzz similarity (0-100) at or above which two captions are one joke: "The dog owns the sofa now."
# and "Now the dog owns the sofa." (word order) or a caption that differs by a word or two.
NEAR_DUPLICATE_SIMILARITY = 80
COPY_SIMILARITY = 80  # the same against the few-shot examples' captions
# A caption lifts an example's phrase when its 4-word runs taken from the examples bring in 2 or more
# content words that no cue mentions; shorter shared runs are ordinary phrasing ("that is what a").
COPY_NGRAM = 4
COPY_UNSUPPORTED_WORDS = 2
# A caption whose content words are nearly all cue words, with fewer than this many words of its own,
# is the cue list read back.
OWN_WORDS_NEEDED = 3
CUE_SHARE_LIMIT = 0.75

_LABEL = re.compile(r"^\s*(?:caption|answer)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’"
_CUE_VALUE = re.compile(r"\(\d\.\d\d\)|\b(?:brightness|colou?rfulness)\b|\bcues?\s*:", re.IGNORECASE)
_WORD = re.compile(r"[a-z']+")
_NO_FACE = re.compile(r"\b(?:no face|no faces|no one|nobody|no people|not one person|without (?:a |any )?faces?)\b")
_FACE_WORDS = re.compile(r"\b(?:faces?|facial|smil\w*|frown\w*|grin\w*)\b")
_FUNCTION_WORDS = frozenset(
    "a an the and or but so of in on at to by for from with without into onto over under is are was were be "
    "been it its this that these those there their they them he she his her him as than then very one two "
    "i my me you your we our not no which what who whose how when where why exactly just like all here up out "
    "about has have had do does did can will would".split()
)


def finish_caption(raw: str, finish_reason: str = "stop") -> tuple[str, str]:
    """(caption, problem): ``problem`` is "" when the caption is usable. A text the model ended itself
    ("stop") counts as a finished sentence without a full stop; one cut by the token limit does not."""
    lines = [line for line in str(raw).splitlines() if line.strip()]
    text = one_line(_LABEL.sub("", lines[0])) if lines else ""
    if len(text) > 1 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    cut_off = finish_reason == "length" and len(lines) <= 1
    if not cut_off and text and not SENTENCE_END.search(text[-2:]):
        text += "."
    ends = [match.end() for match in SENTENCE_END.finditer(text)]
    if ends:
        text = text[: ends[min(len(ends), MAX_SENTENCES) - 1]]
    elif text:
        return "", "the model ran out of tokens before finishing a sentence"
    if len(_WORD.findall(text.lower())) < MIN_WORDS:
        return "", "the model wrote too little" if text else "the model wrote nothing"
    return text[0].upper() + text[1:], ""


class CaptionCheck:
    """The checks a caption must pass, prepared once per request from its cues, words and examples."""

    def __init__(self, cues: Iterable[str], words: Iterable[str], examples: Iterable[str] = ()):
        cues, self.words = list(cues), [one_line(line) for line in words if line.strip()]
        self.cue_words = frozenset(_content_words(" ".join(cues)))
        self.supported_words = self.cue_words | frozenset(_content_words(" ".join(self.words)))
        self.examples = list(examples)
        self.example_ngrams = frozenset(gram for example in self.examples for gram in _ngrams(example))
        cue_text = " ".join(cues).lower()
        self.no_face_found = "no face found" in cue_text
        self.face_found = not self.no_face_found and bool(re.search(r"\bfaces?\b", cue_text))

    def problem(self, caption: str) -> str:
        """Why ``caption`` must not be shown, or ""."""
        return (self._restates_cues(caption) or repetition(caption) or self._restates_words(caption)
                or self._face_contradiction(caption) or self._copies_example(caption))

    def _restates_cues(self, caption: str) -> str:
        if _CUE_VALUE.search(caption):
            return "the caption reads out the measured cue values"
        content = _content_words(caption)
        own = [word for word in content if word not in self.cue_words]
        if content and len(own) < OWN_WORDS_NEEDED and 1 - len(own) / len(content) >= CUE_SHARE_LIMIT:
            return "the caption only restates the measured cues"
        return ""

    def _restates_words(self, caption: str) -> str:
        written = " ".join(self.words)
        if written and fuzz.ratio(caption, written, processor=utils.default_process) >= NEAR_DUPLICATE_SIMILARITY:
            return "the caption only repeats the words written in the image"
        return ""

    def _face_contradiction(self, caption: str) -> str:
        lowered = caption.lower()
        says_no_face = bool(_NO_FACE.search(lowered))
        if self.no_face_found and _FACE_WORDS.search(_NO_FACE.sub("", lowered)):
            return "the caption describes a face, but no face was found"
        if self.face_found and says_no_face:
            return "the caption says nobody is there, but a face was found"
        return ""

    def _copies_example(self, caption: str) -> str:
        for example in self.examples:
            if fuzz.ratio(caption, example, processor=utils.default_process) >= COPY_SIMILARITY:
                return "the caption copies one of the prompt's examples"
        lifted: dict[str, None] = {}  # content words of copied runs that no cue mentions, in order
        for gram in _ngrams(caption):
            if gram in self.example_ngrams:
                lifted.update((word, None) for word in _content_words(" ".join(gram))
                              if word not in self.supported_words)
        if len(lifted) >= COPY_UNSUPPORTED_WORDS:
            return f"the caption lifts an example's phrase about things no cue mentions ({', '.join(lifted)})"
        return ""


def near_duplicate(caption: str, earlier: Iterable[str]) -> str:
    """The earlier caption that ``caption`` nearly repeats, or ""."""
    for other in earlier:
        similarity = max(fuzz.ratio(caption, other, processor=utils.default_process),
                         fuzz.token_sort_ratio(caption, other, processor=utils.default_process))
        if similarity >= NEAR_DUPLICATE_SIMILARITY:
            return other
    return ""


def _ngrams(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[start : start + COPY_NGRAM]) for start in range(len(words) - COPY_NGRAM + 1)}


def _content_words(text: str) -> list[str]:
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in _FUNCTION_WORDS and len(word) > 2]


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word
