"""An LLM's answer as question-answer turns, checked before it may become a sample.

The format asked for is ``Question:`` / ``Answer:`` blocks, optionally separated by ``===`` lines.
Unambiguous slips are repaired and each repair is named (it goes into the sample's provenance): a code
fence around the whole answer, numbered or emphasised labels ("**Question 2:**", "1. Question:",
"Complex question:"). Everything else is rejected with a reason: text before the first question,
labels out of turn, empty turns, the wrong number of turns for the type, an answer cut off at the token
limit, an answer that speaks of the caption or attribute list (or repeats one of its numbers) instead of
the image, a reasoning answer that never names the image's emotion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..labels import synonym_group

TURN_LIMITS = {"conversation": (2, 6), "reasoning": (1, 1)}  # question-answer pairs
MIN_ANSWER_CHARS = 8

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n(?P<body>.*)\n```[ \t]*$", re.DOTALL)
_SEPARATOR = re.compile(r"^\s*(?:={3,}|-{3,}|\*{3,}|_{3,})\s*$")
_LABEL = re.compile(
    r"^\s*(?P<lead>(?:#+\s*|>\s*|[*_]{1,2})*(?:\d+\s*[.)]\s*)?)"
    r"(?P<variant>(?:basic|advanced|complex|follow-up|reasoning)\s+)?"
    r"(?P<kind>question|answer)(?P<num>\s*\d+)?\s*(?P<tail>[*_]{0,2})\s*:\s*(?P<after>[*_]{0,2})\s*(?P<rest>.*)$",
    re.IGNORECASE)
_SPEAKS_OF_INPUT = re.compile(
    r"\b(captions?|captioned|attributes?|attribute list|annotations?|annotated|metadata|"
    r"(?:given|provided) (?:description|information|details|list|text|data)|"
    r"(?:the|this) description)\b", re.IGNORECASE)


class AnswerRejected(Exception):
    """The answer cannot become a sample; ``str(exc)`` says why."""


@dataclass
class ParsedAnswer:
    turns: list[tuple[str, str]]  # (question, answer)
    repairs: list[str] = field(default_factory=list)

    @property
    def questions(self) -> list[str]:
        return [question for question, _ in self.turns]


def parse_answer(text: str, sample_type: str, label: str, quoted: list[str] = (),
                 finish_reason: str | None = None, max_tokens: int | None = None) -> ParsedAnswer:
    """The turns of ``text`` for a sample of ``sample_type`` about an image of emotion ``label``;
    raises ``AnswerRejected``. ``quoted`` are numbers of the context an answer must not repeat."""
    if finish_reason == "length":
        raise AnswerRejected(f"the answer was cut off at the token limit ({max_tokens} tokens)")
    repairs: list[str] = []
    text = (text or "").strip()
    if not text:
        raise AnswerRejected("empty answer")
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group("body").strip()
        repairs.append("removed the code fence around the answer")
    if "```" in text:
        raise AnswerRejected("a code block inside the answer")
    turns = _turns(text, repairs)
    low, high = TURN_LIMITS[sample_type]
    if not low <= len(turns) <= high:
        wanted = f"{low}" if low == high else f"{low} to {high}"
        raise AnswerRejected(f"a {sample_type} sample needs {wanted} question-answer pair{'s' if high > 1 else ''}; "
                             f"found {len(turns)}")
    for question, answer in turns:
        if len(answer) < MIN_ANSWER_CHARS:
            raise AnswerRejected(f"an answer is too short to be one ({answer!r})")
        for part in (question, answer):
            mention = _SPEAKS_OF_INPUT.search(part)
            if mention:
                raise AnswerRejected(f"speaks of the {mention.group(0).lower()!r} it was given, not of the image as "
                                     "seen")
            for number in quoted:
                if re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", part):
                    raise AnswerRejected(f"repeats the attribute value {number} instead of describing what is seen")
    if sample_type == "reasoning" and not _names_emotion(turns[0][1], label):
        raise AnswerRejected(f"the answer never names the image's emotion ({label})")
    return ParsedAnswer(turns, repairs)


def _turns(text: str, repairs: list[str]) -> list[tuple[str, str]]:
    blocks: list[tuple[str, list[str]]] = []
    preamble: list[str] = []
    slips: set[str] = set()
    for line in text.splitlines():
        if _SEPARATOR.match(line):
            continue
        match = _LABEL.match(line)
        if match:
            kind = match.group("kind").lower()
            if match.group("lead").strip() or match.group("tail") or match.group("after"):
                slips.add("Markdown or numbering around the labels")
            if match.group("num"):
                slips.add("numbered labels")
            if match.group("variant"):
                slips.add(f"'{match.group('variant').strip()} {kind}' read as '{kind.capitalize()}'")
            elif match.group("kind") != kind.capitalize():
                slips.add("label capitalisation")
            rest = match.group("rest").rstrip("*_ ").strip()
            blocks.append((kind, [rest] if rest else []))
        elif blocks:
            blocks[-1][1].append(line)
        elif line.strip():
            preamble.append(line)
    if preamble:
        raise AnswerRejected(f"text before the first 'Question:' ({preamble[0].strip()[:60]!r})")
    if not blocks:
        raise AnswerRejected("no 'Question:' / 'Answer:' turns")
    repairs.extend(f"repaired {slip}" for slip in sorted(slips))
    turns = []
    for position, (kind, lines) in enumerate(blocks):
        expected = "question" if position % 2 == 0 else "answer"
        if kind != expected:
            raise AnswerRejected(f"turn {position + 1} is {'a question' if kind == 'question' else 'an answer'} where "
                                 f"{'a question' if expected == 'question' else 'an answer'} belongs")
        body = "\n".join(lines).strip()
        if not body:
            raise AnswerRejected(f"turn {position + 1} ({kind}) is empty")
        if kind == "answer":
            turns.append((_joined(blocks[position - 1][1]), body))
    if len(blocks) % 2:
        raise AnswerRejected("the last question has no answer")
    return turns


def _joined(lines: list[str]) -> str:
    return "\n".join(lines).strip()


def _names_emotion(answer: str, label: str) -> bool:
    words = {label} | (synonym_group(label) or set())
    found = set(re.findall(r"[a-z]+", answer.casefold()))
    return bool(found & words)
