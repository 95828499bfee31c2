"""The prompt of each sample type, read from ``emo_core/prompts/``, and its version (a content hash).

- ``categorical``: EmoVIT's categorical instruction over the class set's labels; the answer is
  ``Predict emotion: <label>`` and no LLM is asked.
- ``conversation`` / ``reasoning``: a system prompt and hand-written seed examples
  (``datagen_<type>_system.txt``, ``datagen_<type>_fewshot.txt``); the examples become user/assistant
  turns before the image's own context.

A sample's id includes its prompt version, so editing a prompt file makes new samples beside the old.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from .. import prompts

LLM_TYPES = ("conversation", "reasoning")
TYPES = ("categorical",) + LLM_TYPES
CATEGORICAL_ANSWER = "Predict emotion: {label}"
_BLOCK = re.compile(r"^### (context|answer)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptSet:
    type: str
    system: str
    examples: tuple[tuple[str, str], ...]  # (context, answer)
    files: tuple[str, ...]
    sha256: str

    @property
    def version(self) -> str:
        return self.sha256[:12]

    def messages(self, context: str) -> list[dict]:
        """Chat messages: the system prompt, the seed examples as turns, then this image's context."""
        messages = [{"role": "system", "content": self.system}]
        for example_context, example_answer in self.examples:
            messages += [{"role": "user", "content": example_context},
                         {"role": "assistant", "content": example_answer}]
        messages.append({"role": "user", "content": context})
        return messages

    def provenance(self) -> dict:
        return {"files": list(self.files), "sha256": self.sha256, "version": self.version}


@lru_cache(maxsize=None)
def llm_prompt(sample_type: str) -> PromptSet:
    if sample_type not in LLM_TYPES:
        raise ValueError(f"{sample_type!r} is not written by an LLM; LLM types: {', '.join(LLM_TYPES)}")
    system_name, fewshot_name = f"datagen_{sample_type}_system", f"datagen_{sample_type}_fewshot"
    system, fewshot = prompts.template(system_name), prompts.template(fewshot_name)
    return PromptSet(sample_type, system, parse_examples(fewshot),
                     (prompts.PROMPTS[system_name], prompts.PROMPTS[fewshot_name]), _sha256(system, fewshot))


@lru_cache(maxsize=None)
def categorical_prompt(labels: tuple[str, ...]) -> PromptSet:
    """The categorical instruction over ``labels`` (no system prompt, no examples: no LLM is asked)."""
    instruction = prompts.render("categorical", options=labels)
    return PromptSet("categorical", instruction, (), (prompts.PROMPTS["categorical"],),
                     _sha256(instruction, CATEGORICAL_ANSWER))


def parse_examples(text: str) -> tuple[tuple[str, str], ...]:
    """``### context`` / ``### answer`` blocks (lines before the first block are comments)."""
    parts = _BLOCK.split(text)[1:]
    kinds, bodies = parts[0::2], [body.strip() for body in parts[1::2]]
    if not kinds or kinds != ["context", "answer"] * (len(kinds) // 2) or not all(bodies):
        raise ValueError("a few-shot file needs '### context' / '### answer' blocks in pairs, none empty")
    return tuple(zip(bodies[0::2], bodies[1::2]))


def _sha256(*texts: str) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()
