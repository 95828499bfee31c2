"""The backend protocol: the one seam between tasks and models.

Messages are OpenAI-chat shaped; their media parts are local paths:

    [{"role": "user", "content": [{"type": "image", "path": "frames/photo.jpg"},
                                  {"type": "text", "text": "Please select the emotion ..."}]}]

- ``generate`` returns the model's text answer (``generate_stream`` yields it in pieces). With
  ``answer_prefix`` the answer starts with that text and the model continues it (the returned text is
  the continuation only); backends that can do this have the "continue" capability (a chat API cannot
  make the model continue an assistant turn, so the openai backend has not). With ``token_choices`` (a
  list) backends that report token log-probabilities append one ``TokenChoices`` per written token;
- ``score`` returns the log-likelihood of each candidate answer, for a full, deterministic
  distribution without free-text parsing. Backends that cannot score leave "score" out of
  ``capabilities`` and raise ``CapabilityError``; callers then fall back to generate + parse.
- ``load`` is idempotent; constructing a backend loads nothing; ``unload`` frees the model.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import Iterator

from ..errors import CapabilityError

Message = dict
CAPABILITIES = frozenset({"image", "video", "audio", "generate", "continue", "score"})


@dataclass(frozen=True)
class TokenChoices:
    """One written token and the likeliest tokens the model could have written in its place."""

    text: str
    logprob: float
    alternatives: dict[str, float]  # token text -> log-probability (the endpoint's top-k)


class Backend(ABC):
    name: str = ""
    capabilities: frozenset[str] = frozenset()
    # True when scores come from measured cues (face expressions, brightness) rather than from a
    # model that reads the instruction; results then say which cues they rest on.
    judges_from_cues: bool = False

    def load(self) -> "Backend":
        return self

    def unload(self) -> None:
        """Free the model's memory (called when the user switches to another model)."""

    @property
    def model_label(self) -> str:
        """What to show users as the model behind the answers."""
        return self.name

    def generate(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0, seed: int = 0,
                 answer_prefix: str = "", token_choices: list[TokenChoices] | None = None) -> str:
        raise CapabilityError(f"the {self.name} backend cannot generate text")

    def generate_stream(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                        seed: int = 0, answer_prefix: str = "",
                        token_choices: list[TokenChoices] | None = None) -> Iterator[str]:
        yield self.generate(messages, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                            answer_prefix=answer_prefix, token_choices=token_choices)

    def check_prefix(self, answer_prefix: str) -> None:
        """Refuse an answer prefix this backend cannot continue (rather than silently ignoring it)."""
        if answer_prefix and not self.supports("continue"):
            raise CapabilityError(f"the {self.name} backend cannot continue an answer prefix")

    def score(self, messages: list[Message], candidates: list[str]) -> dict[str, float]:
        raise CapabilityError(f"the {self.name} backend cannot score candidate answers")

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities


def media_paths(messages: list[Message], kind: str) -> list[str]:
    """Paths of every ``kind`` ("image", "video", "audio") part, in message order."""
    paths = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            paths += [part["path"] for part in content if part.get("type") == kind]
    return paths


def text_of(messages: list[Message]) -> str:
    """All text parts joined, for backends that only read text."""
    pieces = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            pieces.append(content)
        elif isinstance(content, list):
            pieces += [part["text"] for part in content if part.get("type") == "text"]
    return "\n".join(pieces)


def user_message(text: str, **media: str) -> list[Message]:
    """A one-turn conversation: media parts (image=..., video=..., audio=...) then the text."""
    parts = [{"type": kind, "path": str(path)} for kind, path in media.items() if path]
    return [{"role": "user", "content": parts + [{"type": "text", "text": text}]}]
