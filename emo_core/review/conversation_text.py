"""A sample's conversation as editable plain text, and back.

The desk shows annotators each turn under a ``### human`` or ``### gpt`` line; an edited text is read
back into LLaVA turns. The ``<image>`` token of the first question is not shown and is put back, so an
annotator can neither lose nor duplicate it.

    ### human
    What feeling does this picture give you?
    ### gpt
    A calm one: ...
"""

from __future__ import annotations

import re

IMAGE_TOKEN = "<image>"
ROLES = ("human", "gpt")
_HEADER = re.compile(r"^### (human|gpt)[ \t]*$", re.MULTILINE)


class ConversationFormatError(ValueError):
    """An edited conversation that cannot be read back; the message says what to fix."""


def strip_image_token(text: str) -> str:
    text = text.strip()
    if text.startswith(IMAGE_TOKEN):
        text = text[len(IMAGE_TOKEN):].lstrip("\n ")
    return text.replace(IMAGE_TOKEN, "").strip()


def to_text(conversations: list[dict]) -> str:
    """The turns as ``### human`` / ``### gpt`` blocks, without the ``<image>`` token."""
    return "\n".join(f"### {turn['from']}\n{strip_image_token(str(turn['value']))}" for turn in conversations)


def from_text(text: str) -> list[dict]:
    """LLaVA turns from the edited text: alternating human and gpt, starting with human, none empty;
    ``<image>\\n`` starts the first question."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    headers = list(_HEADER.finditer(text))
    if not headers or text[:headers[0].start()].strip():
        raise ConversationFormatError("start the text with a '### human' line; each turn begins with "
                                      "'### human' or '### gpt' on a line of its own")
    turns = []
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        value = text[header.end():end].strip()
        role = header.group(1)
        expected = ROLES[index % 2]
        if role != expected:
            raise ConversationFormatError(f"turn {index + 1} is '{role}' but should be '{expected}': turns "
                                          "alternate human, gpt, human, ...")
        if not value:
            raise ConversationFormatError(f"turn {index + 1} ({role}) is empty")
        if IMAGE_TOKEN in value:
            raise ConversationFormatError(f"turn {index + 1} contains {IMAGE_TOKEN}; it is added to the first "
                                          "question by itself")
        turns.append({"from": role, "value": value})
    if len(turns) % 2:
        raise ConversationFormatError("the last turn is a question without an answer")
    turns[0]["value"] = f"{IMAGE_TOKEN}\n{turns[0]['value']}"
    return turns
