"""``write_reason``: the small language model explains an emotion label from measured cues, streamed.

The classifiers choose the label; the model never does (the base 270M model is poor at it). It only
continues a few-shot pattern from ``prompts/reason_fewshot_{image,video}.txt``::

    Cues: one face, expression happy (0.93); bright (brightness 0.71); ...
    Emotion: amusement
    Reason: <the model writes this line>

The video examples use the app's own cue phrases (``video_emotion._cue_phrases``) and restate them in
plain words, one example per kind of clip the app meets (face, voice and words; no audio track; no
face; a silent track; a face read as another expression).

Generation stops at the end of that line (or at a following ``Cues:``/``Emotion:``), the text is
trimmed to whole sentences (at most ``MAX_SENTENCES``), and guards reject what a reader must not see:

- nothing usable (empty, a few words, an unfinished sentence);
- a repetition loop (a 4-word sequence that comes back, or one character repeated);
- an emotion other than the label, unless the cues themselves report it (a "sad" face may be quoted
  in a reason for "anger"; a reason for "anger" that calls the scene "joyful" is rejected). Words are
  matched with the synonym groups of ``emo_core.labels``; a negation ("not sad") is rejected too,
  on purpose: it is cheaper to show the template than to parse negation;
- the label denied ("not angry") or, for an emotion other than neutral, "no particular emotion";
- a phrase lifted from an example about things no cue mentions ("a plain remark about a meeting time");
  the examples' shared way of explaining ("show", "the speaker") is not counted as lifted;
- the cue list repeated in its own notation ("voice: ...", "happy (0.93)");
- a face where the cues say "no face found", or "no face" where they report one;
- a video cue said the other way round: a still or calm face where action units were measured, a
  facial movement whose action units were not (``au_rules.AU_MENTIONS``), closed lips with an open
  mouth, "no words" or "no sound" where speech was heard, a voice described where none was, a voice
  level the tone scales did not measure ("fast" for slow speech).

While decoding, the phrases these guards would reject that are a few fixed words are banned
(``SmallLM.stream``'s ``avoid``, built by ``_Guard.avoid_phrases``): other emotions' words, the label
denied, "no emotion", the contradicting cue phrases and 3-word runs of the examples that bring in a
detail no cue has. The base model writes them often (on ``benchmarks/bench_reasons.py``'s clips 20-43%
of first attempts passed the guards without the bans, 89-96% with them); the guards still check every
text, since the same claim in other words gets through the bans. The guards only recognise these
patterns: a reason can still misstate a cue in words they do not know (the README gives a count).

A rejected text is tried again with the next seed (``attempts``, default 2); after that, or when no
model is available (llama.cpp missing) or the model fails part-way (e.g. its process stopped answering
and was restarted: no retry then), the caller's template text is used instead, with ``by_model=False``
and the ``problem`` in words, so the UI can say which one it shows.

    stream = write_reason("amusement", cues, modality="image", fallback=template_text)
    for text_so_far in stream:          # each item is the whole reason so far: show it, replacing the last
        box.update(text_so_far)
    stream.result.text, stream.result.by_model, stream.result.problem

A streamed item never ends in a half-written word, and it is checked before it is yielded, so a
rejected emotion or copied phrase never reaches the screen; a retry starts again from a short text,
and the last item is always the final text (trimmed, or the fallback).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Iterator, Literal, Protocol, Sequence, overload

from ..errors import BackendError
from ..labels import SYNONYM_GROUPS, synonym_group
from .clip_claims import ClipClaims
# A newline inside a cue or label would break the one-example-per-block pattern (and is a stop string).
from .text_checks import SENTENCE_END as _SENTENCE_END
from .text_checks import WORD as _WORD
from .text_checks import one_line as _one_line
from .text_checks import repetition as _repetition
from .text_checks import whole_words as _whole_words

if TYPE_CHECKING:
    from .small_lm import GenerationStats

Modality = Literal["image", "video"]

FEWSHOT_TEMPLATES: dict[str, str] = {
    "image": "reason_fewshot_image.txt",
    "video": "reason_fewshot_video.txt",
}
# The reason is one line; a base model that goes on writes the next example, which starts with these.
STOP_STRINGS = ("\n", "Cues:", "Emotion:")
MAX_SENTENCES = 3
MIN_WORDS = 5
# A text copies an example when its 5-word runs taken from the examples bring in 2 or more content words
# that no cue mentions ("the fast, high-pitched voice" for a clip with no speech). Shorter shared runs
# are ordinary phrasing ("is a sign of").
COPY_NGRAM = 5
COPY_UNSUPPORTED_WORDS = 2
STYLE_WORD_EXAMPLES = 2  # a word in the reasons of this many examples is their phrasing, not one example's content
DEFAULT_ATTEMPTS = 2  # a rejected text gets one more try with another seed before the template is used
RETRY_TEMPERATURE = 0.6

# Sampling: a little temperature keeps the base model out of greedy loops; the fixed seed makes a
# given input give the same reason every time; the mild penalty discourages repeating recent words.
DEFAULT_SAMPLING = dict(max_tokens=80, temperature=0.3, seed=0, top_k=40, top_p=0.9, repeat_penalty=1.1)

# Inflections the synonym groups do not list, mapped to a word that is in a group.
_EXTRA_EMOTION_FORMS = {
    "happily": "happy", "sadly": "sad", "angrily": "angry", "fearfully": "fearful", "scary": "fear",
    "frightening": "fear", "terrifying": "fear", "joyfully": "joyful", "sorrowfully": "sorrowful",
    "disgusting": "disgust", "surprising": "surprised", "amusing": "amusement", "exciting": "excitement",
    "awesome": "awe", "worriedly": "worried", "contemptuously": "contempt", "doubtfully": "doubt",
}
# Emotion words that are mostly used in another sense ("the content of the image"): never flagged.
_AMBIGUOUS_WORDS = frozenset({"content"})
_EMOTION_WORDS = tuple(sorted({word for group in SYNONYM_GROUPS for word in group} | set(_EXTRA_EMOTION_FORMS)))
# Words that carry no content: a copied run made only of these and cue words is not a copy.
_FUNCTION_WORDS = frozenset(
    "a an the and or but so of in on at to by for from with without into onto over under beside near "
    "is are was were be been being it its this that these those which who whose there their they them "
    "he she his her him as than then while when where what how very more most".split()
)
_NO_FACE = re.compile(r"\b(?:no|without an?|without any)\s+faces?\b"
                      r"|\bfaces? (?:is|was|are|were) not (?:seen|visible)\b")
_FACE_WORDS = re.compile(r"\b(?:faces?|facial|smil\w*|frown\w*|grin\w*)\b")
_SCORE = re.compile(r"\(\d\.\d+\)")  # "(0.93)": a cue's probability, copied
# The label denied: "no emotion" (for any label but neutral), "not sad" (for sadness).
_NO_EMOTION = re.compile(
    r"\b(?:no|not any|without any|without an?)\s+(?:particular |specific |real |strong |clear |obvious )?emotions?\b"
    r"|\bnot (?:\w+\s+){0,3}(?:an? )?emotion\b|\b(?:no|not an?) (?:real |particular |specific )?emotional\b"
    r"|\b(?:emotionless|non-emotional|unemotional)\b"
    r"|\b(?:does|do)(?: not|n't) (?:show|express|display|reveal) (?:any |an |much )?emotion")
_NEGATIONS = ("not", "no", "never", "not very", "not a", "not a particular", "not read as", "not read as a",
              "not have any")
# Decoding bans for those claims (``SmallLM.stream``'s ``avoid``); the guard still checks the text.
_NO_EMOTION_PHRASES = ("no particular emotion", "no particular emotions", "no emotion", "no emotions",
                       "no specific emotion", "no specific emotions", "not a particular emotion", "emotionless",
                       "non-emotional", "unemotional", "not a particular emotional", "no particular emotional",
                       "not a specific emotion", "not a real emotion", "no emotional", "no specific emotional",
                       "not a specific emotional", "not a real emotional")
_NO_FACE_PHRASES = ("no face", "no faces", "face is not seen", "face was not seen")
_A_FACE_PHRASES = ("the face", "a face", "his face", "her face", "their face")  # where no face was found
COPY_BAN_WORDS = 3  # the decoder may not write 3 words of an example in a row that bring in a word no cue has


class TextStreamer(Protocol):
    """What ``write_reason`` needs from a language model (``SmallLM``, or a stand-in in tests)."""

    def stream(self, prompt: str, **options) -> Iterator[str]: ...

    @property
    def stats(self) -> "GenerationStats | None": ...


@dataclass(frozen=True)
class ReasonResult:
    text: str  # the reason to show
    by_model: bool  # True: the language model wrote it; False: it is the caller's template text
    label: str
    modality: str
    problem: str  # why the model's text was not used ("" when it was)
    model_text: str  # the model's raw completion, kept for inspection even when rejected
    stats: "GenerationStats | None"  # tokens, seconds, tokens/s of the last generation (None: none ran or broke off)
    attempts: int  # generations run (a rejected text is retried with another seed)
    seconds: float  # wall time of the whole call: model load if it was not loaded, every attempt, checks
    rejections: tuple[str, ...] = ()  # why each generation that was not used was rejected, in order


class ReasonStream:
    """Iterate for the reason so far (each item replaces the previous one); ``result`` once done."""

    def __init__(self, updates: Iterator[str], holder: list[ReasonResult]):
        self._updates = updates
        self._holder = holder

    def __iter__(self) -> Iterator[str]:
        return self._updates

    @property
    def result(self) -> ReasonResult:
        if not self._holder:
            raise RuntimeError("the reason is not finished: iterate the stream (or call finish()) first")
        return self._holder[0]

    def finish(self) -> ReasonResult:
        """Run the stream to its end without showing it; return the result."""
        for _ in self._updates:
            pass
        return self.result

    def close(self) -> None:
        """Stop early (e.g. the user left): ends the generation and frees the model for other calls.
        Dropping the last reference to an unfinished stream does the same."""
        self._updates.close()

    def __enter__(self) -> "ReasonStream":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@overload
def write_reason(label: str, cues: Sequence[str], *, modality: Modality, fallback: str,
                 stream: Literal[True] = ..., lm: TextStreamer | None = ..., attempts: int = ...,
                 constrained: bool = ..., **sampling) -> ReasonStream: ...
@overload
def write_reason(label: str, cues: Sequence[str], *, modality: Modality, fallback: str,
                 stream: Literal[False], lm: TextStreamer | None = ..., attempts: int = ...,
                 constrained: bool = ..., **sampling) -> ReasonResult: ...


def write_reason(
    label: str,
    cues: Sequence[str],
    *,
    modality: Modality,
    fallback: str,
    stream: bool = True,
    lm: TextStreamer | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    constrained: bool = True,
    **sampling,
) -> ReasonStream | ReasonResult:
    """Explain ``label`` from ``cues`` (short phrases such as "one face, expression happy (0.93)").

    ``fallback``: the template reason to use when the model's text is rejected or no model is available.
    ``lm``: the language model; None means the process-wide ``get_small_lm()`` (loaded on first use).
    ``attempts``: generations to try (each with the next seed) before falling back to ``fallback``.
    ``constrained``: ban, while decoding, the fixed phrases the guards would reject (``_Guard.avoid_phrases``);
    False lets the model write them and only the guards act (``benchmarks/bench_reasons.py --unconstrained``).
    ``sampling`` overrides ``DEFAULT_SAMPLING`` (max_tokens, temperature, seed, top_k, top_p, repeat_penalty).
    ``stream=True`` returns a ``ReasonStream``; ``stream=False`` runs it and returns the ``ReasonResult``.
    """
    if modality not in FEWSHOT_TEMPLATES:
        raise ValueError(f"modality must be one of {', '.join(FEWSHOT_TEMPLATES)}, got {modality!r}")
    label = _one_line(label)
    if not label:
        raise ValueError("label must be a non-empty emotion name")
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    unknown = set(sampling) - set(DEFAULT_SAMPLING)
    if unknown:
        raise TypeError(f"unknown sampling options: {', '.join(sorted(unknown))}")
    holder: list[ReasonResult] = []
    updates = _updates(label, [c for c in (_one_line(c) for c in cues) if c], modality, fallback, lm,
                       {**DEFAULT_SAMPLING, **sampling}, attempts, constrained, holder)
    reason_stream = ReasonStream(updates, holder)
    return reason_stream if stream else reason_stream.finish()


def warm_up(modality: Modality = "image", lm: TextStreamer | None = None) -> None:
    """Load the model and read the few-shot examples once, so the first reason starts streaming at once.

    llama-cpp-python keeps the last prompt in its cache and reuses the longest shared beginning, so
    later prompts of the same modality only read their own cues (tens of tokens instead of ~450).
    Meant for the app's background preload."""
    lm = lm if lm is not None else _default_lm()
    for _ in lm.stream(build_prompt("unknown", ["none"], modality), max_tokens=1, temperature=0.0):
        pass


def _default_lm() -> TextStreamer:
    from .small_lm import get_small_lm

    return get_small_lm()


def build_prompt(label: str, cues: Sequence[str], modality: Modality) -> str:
    """The few-shot prompt: the examples of the modality, then the cues and label to explain.

    The examples come first and never change, so llama-cpp-python's prompt cache covers them and only
    the cue and label lines are read on each call (leaving out the example of the same emotion, to
    stop the model copying it, changed the prompt early and cost seconds of prompt reading per call
    on a busy 2-core machine; the copy guard and a retry handle copying instead)."""
    cue_line = "; ".join(_one_line(c).rstrip(".;") for c in cues)
    return _fewshot_template(modality).format(cues=cue_line, label=_one_line(label))


@lru_cache(maxsize=None)
def _fewshot_template(modality: str) -> str:
    text = resources.files("emo_core.prompts").joinpath(FEWSHOT_TEMPLATES[modality]).read_text(encoding="utf-8")
    return text.strip()  # the prompt must end right after "Reason:" so the model writes the reason


def _updates(label: str, cues: list[str], modality: Modality, fallback: str, lm: TextStreamer | None,
             sampling: dict, attempts: int, constrained: bool, holder: list[ReasonResult]) -> Iterator[str]:
    def give_up(problem: str, model_text: str = "", stats=None) -> Iterator[str]:
        holder.append(ReasonResult(fallback, False, label, modality, problem, model_text, stats, attempts_used,
                                   round(time.perf_counter() - started, 4), tuple(rejections)))
        yield fallback

    started = time.perf_counter()
    attempts_used = 0
    rejections: list[str] = []
    if not cues:
        yield from give_up("no cues were measured, so the language model had nothing to explain from")
        return
    if lm is None:
        lm = _default_lm()
    prompt = build_prompt(label, cues, modality)
    guard = _Guard(label, cues, modality)
    avoid = {"avoid": guard.avoid_phrases()} if constrained else {}
    problem, raw, stats = "", "", None
    for attempt in range(attempts):
        attempts_used = attempt + 1
        options = dict(sampling)
        if attempt:
            # Another seed, and some temperature, for another try: greedy decoding or the same seed
            # would write the same rejected text again.
            options.update(seed=sampling["seed"] + attempt, temperature=max(sampling["temperature"], RETRY_TEMPERATURE))
        try:
            pieces = lm.stream(prompt, stop=list(STOP_STRINGS), **avoid, **options)
        except BackendError as exc:
            yield from give_up(f"the language model is not available: {exc}")
            return
        raw, problem, model_failed = yield from _one_attempt(pieces, guard)
        if model_failed:
            # A model that broke off (a worker that stopped answering and was restarted, a llama.cpp
            # error) is not helped by another seed, and a retry would make the reader wait for the
            # restart: the template now, with what happened. The text shown so far was only a preview;
            # ``stats`` would be the previous generation's, so none are given.
            yield from give_up(problem, raw)
            return
        stats = lm.stats
        if not problem:
            text, problem = _finish(raw, stats.finish_reason if stats else "stop")
            problem = problem or guard.check(text)
            if not problem:
                holder.append(ReasonResult(text, True, label, modality, "", raw, stats, attempts_used,
                                           round(time.perf_counter() - started, 4), tuple(rejections)))
                yield text
                return
        rejections.append(problem)
    yield from give_up(problem, raw, stats)


def _one_attempt(pieces: Iterator[str], guard: "_Guard"):
    """Yield the checked text so far; return (raw completion, problem or "", whether the model failed)."""
    raw, shown, problem, model_failed = "", "", "", False
    try:
        for piece in pieces:
            raw += piece
            complete = _whole_words(raw)
            if complete == shown:
                continue
            problem = guard.check(complete)
            if problem:
                break
            if len(_SENTENCE_END.findall(complete)) >= MAX_SENTENCES:
                break  # enough said; the rest would be trimmed anyway
            shown = complete
            yield shown
    except BackendError as exc:  # the model failed half-way (its process stopped answering, a llama.cpp error)
        problem, model_failed = f"the language model failed while writing: {exc}", True
    finally:
        if hasattr(pieces, "close"):
            pieces.close()  # stops the model at once when we break out early
    return raw, problem, model_failed


class _Guard:
    """The checks a reason must pass, prepared once per call from the label, cues and examples."""

    def __init__(self, label: str, cues: Sequence[str], modality: Modality):
        self.modality = modality
        self.allowed_emotions = _allowed_emotion_words(label, cues)
        self.cue_words = frozenset(_stem(w) for w in _WORD.findall(" ".join([label, *cues]).lower()))
        self.example_ngrams = _example_ngrams(modality)
        self.style_words = _example_style_words(modality)
        # "voice:", "objects:": the cue list's notation, which a reason that explains the cues has no use for
        self.cue_keys = tuple(key for key in (c.partition(":")[0].strip().lower() for c in cues if ":" in c)
                              if 0 < len(key.split()) <= 5)
        cue_text = " ".join(cues).lower()
        self.no_face_found = bool(_NO_FACE.search(cue_text))
        self.face_found = not self.no_face_found and bool(re.search(r"\bfaces?\b", cue_text))
        label_groups = _label_groups(label)
        self.label_words = frozenset(word for word in self.allowed_emotions if _emotion_group(word) in label_groups)
        self.label_is_neutral = any("neutral" in group for group in label_groups)
        self.clip = ClipClaims(cues)

    def check(self, text: str) -> str:
        return (_foreign_emotion(text, self.allowed_emotions) or self._label_denied(text) or _repetition(text)
                or self._echoed_cues(text) or self._copied(text) or self._face_contradiction(text)
                or self.clip.contradiction(text))

    def _label_denied(self, text: str) -> str:
        lowered = text.lower()
        if not self.label_is_neutral and _NO_EMOTION.search(lowered):
            return "the language model said the person shows no emotion, which contradicts the label"
        for word in self.label_words:
            # "not read as a fear", "no real anger"; not "with no pauses suggests anger"
            if re.search(rf"\b(?:not|never|isn't|wasn't|aren't|weren't)\s+(?:\w+\s+){{0,3}}{re.escape(word)}\b"
                         rf"|\bno\s+(?:\w+\s+)?{re.escape(word)}\b", lowered):
                return f"the language model denied the label ({word!r})"
        return ""

    def avoid_phrases(self) -> list[str]:
        """What the decoder may not write (``SmallLM.stream``'s ``avoid``): the claims ``check`` rejects
        that are a few fixed words, so the model writes something else the first time instead of a text
        that is thrown away: another emotion's words, the label denied, "no emotion" for an emotion, a
        cue said the other way round, and runs of an example's words that bring in what no cue has."""
        phrases = [word for word in _EMOTION_WORDS
                   if word not in self.allowed_emotions and word not in _AMBIGUOUS_WORDS]
        phrases += [f"{negation} {word}" for word in sorted(self.label_words) for negation in _NEGATIONS]
        if not self.label_is_neutral:
            phrases += _NO_EMOTION_PHRASES
        if self.face_found:
            phrases += _NO_FACE_PHRASES
        if self.no_face_found:
            phrases += _A_FACE_PHRASES
        phrases += self.clip.avoid_phrases()
        phrases += _copy_runs(self.modality, self._unsupported)
        spelled = []
        for phrase in phrases:  # as the model spells them after a space, in the middle or at the start of a sentence
            spelled += [f" {phrase}", f" {phrase[0].upper()}{phrase[1:]}"]
        return list(dict.fromkeys(spelled))

    def _unsupported(self, word: str) -> bool:
        """A content word of an example that nothing in these cues mentions."""
        return word not in _FUNCTION_WORDS and word not in self.style_words and _stem(word) not in self.cue_words

    def _echoed_cues(self, text: str) -> str:
        lowered = text.lower()
        if _SCORE.search(text) or any(f"{key}:" in lowered for key in self.cue_keys):
            return "the language model repeated the cue list instead of explaining it"
        return ""

    def _face_contradiction(self, text: str) -> str:
        # The cheapest cue to get wrong and the most visible one: a face where none was found, or
        # "no face" where the detector found one.
        lowered = text.lower()
        says_no_face = bool(_NO_FACE.search(lowered))
        mentions_face = bool(_FACE_WORDS.search(_NO_FACE.sub("", lowered)))
        if self.no_face_found and mentions_face:
            return "the language model described a face, but no face was found"
        if self.face_found and says_no_face:
            return "the language model said there is no face, but a face was found"
        return ""

    def _copied(self, text: str) -> str:
        # The base model likes to lift a whole phrase from the closest example ("the voice announcing a
        # new job"), which then describes something that was never measured.
        words = _WORD.findall(text.lower())
        lifted: dict[str, None] = {}  # content words in copied runs that no cue mentions, in order
        for start in range(len(words) - COPY_NGRAM + 1):
            gram = tuple(words[start : start + COPY_NGRAM])
            if gram in self.example_ngrams:
                lifted.update((w, None) for w in gram if self._unsupported(w))
        if len(lifted) >= COPY_UNSUPPORTED_WORDS:
            return f"the language model copied an example's wording ({', '.join(lifted)}) instead of the cues"
        return ""


def _example_reasons(modality: str) -> list[list[str]]:
    return [_WORD.findall(line[len("Reason:"):].lower())
            for line in _fewshot_template(modality).splitlines() if line.startswith("Reason:")]


def _copy_runs(modality: str, unsupported) -> list[str]:
    """Every ``COPY_BAN_WORDS``-word run of the examples' reasons, as written there, that holds a word
    ``unsupported`` says no cue backs ("remark about a", "a meeting time")."""
    runs = []
    for line in _fewshot_template(modality).splitlines():
        if not line.startswith("Reason:"):
            continue
        reason = line[len("Reason:"):]
        words = list(re.finditer(r"[A-Za-z]+(?:['-][A-Za-z]+)*", reason))
        for start in range(len(words) - COPY_BAN_WORDS + 1):
            run = words[start : start + COPY_BAN_WORDS]
            if any(unsupported(w) for match in run for w in _WORD.findall(match.group().lower())):
                runs.append(reason[run[0].start() : run[-1].end()])
    return runs


def _label_groups(label: str) -> list[frozenset[str]]:
    return [group for group in (_emotion_group(word) for word in _WORD.findall(label.lower())) if group is not None]


@lru_cache(maxsize=None)
def _example_ngrams(modality: str) -> frozenset[tuple[str, ...]]:
    grams = set()
    for words in _example_reasons(modality):
        grams.update(tuple(words[i : i + COPY_NGRAM]) for i in range(len(words) - COPY_NGRAM + 1))
    return frozenset(grams)


@lru_cache(maxsize=None)
def _example_style_words(modality: str) -> frozenset[str]:
    """Words of the examples' way of explaining ("shows", "makes", "speaker"): found in the reasons of
    several examples and in none of their cues. Using them is not copying; a measured word ("cheeks",
    "loud", "quiet") is never style, however many examples use it."""
    counts: dict[str, int] = {}
    for words in _example_reasons(modality):
        for word in set(words):
            counts[word] = counts.get(word, 0) + 1
    measured = {_stem(word) for line in _fewshot_template(modality).splitlines() if line.startswith("Cues:")
                for word in _WORD.findall(line.lower())}
    return frozenset(word for word, count in counts.items() if count >= STYLE_WORD_EXAMPLES and _stem(word) not in measured)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word  # "balloons" matches the cue "balloon"


def _finish(raw: str, finish_reason: str) -> tuple[str, str]:
    """Trim to whole sentences; return (text, problem). A line the model ended itself ("stop") counts
    as a finished sentence even without a full stop; one cut off by the token limit does not."""
    text = _one_line(raw)
    if finish_reason == "stop" and text and not _SENTENCE_END.search(text[-2:]):
        text += "."
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if ends:
        text = text[: ends[min(len(ends), MAX_SENTENCES) - 1]]
    elif text:
        return text, "the language model ran out of tokens before finishing a sentence"
    if len(_WORD.findall(text.lower())) < MIN_WORDS:
        return text, "the language model wrote too little" if text else "the language model wrote nothing"
    return text[0].upper() + text[1:], ""


def _emotion_group(word: str) -> frozenset[str] | None:
    return synonym_group(_EXTRA_EMOTION_FORMS.get(word, word))


def _allowed_emotion_words(label: str, cues: Sequence[str]) -> frozenset[str]:
    """The label's words and synonyms, plus every emotion the cues report (they may be quoted)."""
    allowed: set[str] = set(_WORD.findall(label.lower()))
    for word in _WORD.findall(" ".join([label, *cues]).lower()):
        group = _emotion_group(word)
        if group is not None:
            allowed |= group
    allowed |= {form for form, base in _EXTRA_EMOTION_FORMS.items() if base in allowed}
    return frozenset(allowed)


def _foreign_emotion(text: str, allowed: frozenset[str]) -> str:
    for word in _WORD.findall(text.lower()):
        if word not in allowed and word not in _AMBIGUOUS_WORDS and _emotion_group(word) is not None:
            return f"the language model named another emotion ({word!r}) than the predicted one"
    return ""
