"""The instructions an evaluation asks with: EmoVIT's built-in phrasings, Emotion-LLaMA's, and the user's.

Built in (the prompt files under ``emo_core/prompts/``, verbatim from the papers, class list filled in):

- ``categorical``: EmoVIT's categorical instruction (its public code's training sample);
- ``sensitivity_1``, ``sensitivity_2``: the two phrasings of EmoVIT Sec. 4.3.2;
- ``emotion_llama``: Emotion-LLaMA's ``[emotion]`` instruction, for the video class sets.

Users add their own phrasings in a text file, one per paragraph (paragraphs are separated by blank
lines), each with a ``{classes}`` slot where the class list goes; they get the ids ``custom_1``,
``custom_2``, ... in file order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import prompts
from ..errors import InvalidInputError

IMAGE_INSTRUCTIONS = ("categorical", "sensitivity_1", "sensitivity_2")
VIDEO_INSTRUCTIONS = ("emotion_llama",)
CLASS_SLOT = "{classes}"
MAX_INSTRUCTION_CHARS = 2000
MAX_INSTRUCTIONS = 20


@dataclass(frozen=True)
class Instruction:
    id: str
    template: str  # with a ``{classes}`` slot
    source: str  # where it comes from, in words

    def render(self, labels) -> str:
        """The instruction as asked: the class list written the way EmoVIT's code writes it ("a, b and c")."""
        return self.template.replace(CLASS_SLOT, prompts.format_options(labels))


def _builtin(instruction_id: str) -> Instruction:
    if instruction_id == "emotion_llama":
        text = prompts.sentence_table("emotion_llama_tasks.txt")["emotion"]
        return Instruction(instruction_id, text.replace("{options}", CLASS_SLOT),
                           "Emotion-LLaMA's [emotion] instruction (demo and public code)")
    sources = {"categorical": "EmoVIT's categorical instruction (public code)",
               "sensitivity_1": "EmoVIT Sec. 4.3.2, instruction 1", "sensitivity_2": "EmoVIT Sec. 4.3.2, instruction 2"}
    return Instruction(instruction_id, prompts.template(instruction_id).replace("{options}", CLASS_SLOT),
                       sources[instruction_id])


BUILTIN: dict[str, Instruction] = {i: _builtin(i) for i in IMAGE_INSTRUCTIONS + VIDEO_INSTRUCTIONS}


def default_ids(video: bool) -> tuple[str, ...]:
    """What runs when no instruction is named: every built-in instruction of the modality."""
    return VIDEO_INSTRUCTIONS if video else IMAGE_INSTRUCTIONS


def by_ids(ids: str | list[str]) -> list[Instruction]:
    """Built-in instructions by id (a comma-separated string or a list)."""
    if isinstance(ids, str):
        ids = [part.strip() for part in ids.split(",")]
    ids = [i for i in ids if i]
    unknown = [i for i in ids if i not in BUILTIN]
    if unknown:
        raise InvalidInputError(f"unknown instruction {unknown[0][:40]!r}; built in: {', '.join(BUILTIN)} "
                                "(add your own with an instructions file)")
    if len(set(ids)) != len(ids):
        raise InvalidInputError("an instruction is named twice")
    return [BUILTIN[i] for i in ids]


def parse_custom(text: str, prefix: str = "custom") -> list[Instruction]:
    """User phrasings, one per paragraph, each with a ``{classes}`` slot."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    if not paragraphs:
        raise InvalidInputError("no instruction found: write one per paragraph, each with a {classes} slot")
    if len(paragraphs) > MAX_INSTRUCTIONS:
        raise InvalidInputError(f"{len(paragraphs)} instructions is over the limit of {MAX_INSTRUCTIONS}")
    found = []
    for number, paragraph in enumerate(paragraphs, start=1):
        if CLASS_SLOT not in paragraph:
            raise InvalidInputError(f"instruction {number} has no {CLASS_SLOT} slot for the class list")
        if len(paragraph) > MAX_INSTRUCTION_CHARS:
            raise InvalidInputError(f"instruction {number} is longer than {MAX_INSTRUCTION_CHARS} characters")
        found.append(Instruction(f"{prefix}_{number}", paragraph, "user phrasing"))
    return found


def read_file(path: Path) -> list[Instruction]:
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"instructions file {path.name} not found")
    return parse_custom(path.read_text(encoding="utf-8"))
