"""Prompt templates: text files in this folder, looked up by name in ``PROMPTS``.

``render(name, options=[...])`` fills ``{options}`` the way EmoVIT's public code writes the candidate
list ("a, b, c and d"); other fields are passed by keyword.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

PROMPTS: dict[str, str] = {
    "categorical": "categorical.txt",  # EmoVIT public code's Categorical instruction
    "sensitivity_1": "sensitivity_1.txt",  # EmoVIT Sec. 4.3.2, instruction 1
    "sensitivity_2": "sensitivity_2.txt",  # EmoVIT Sec. 4.3.2, instruction 2
    "reasoning": "reasoning.txt",  # affective reasoning, answer "Predicted emotion: X. Reason: ..."
    "emotion_llama": "emotion_llama.txt",  # Emotion-LLaMA's user turn; tasks in emotion_llama_tasks.txt
    # the Emotion-LLaMA model's own wrapping of that turn: one audio and the visual placeholder tokens
    "emotion_llama_model": "emotion_llama_model.txt",
    # instruction-data generator (emo_core/datagen): a system prompt and seed examples per LLM-written type
    "datagen_conversation_system": "datagen_conversation_system.txt",
    "datagen_conversation_fewshot": "datagen_conversation_fewshot.txt",
    "datagen_reasoning_system": "datagen_reasoning_system.txt",
    "datagen_reasoning_fewshot": "datagen_reasoning_fewshot.txt",
    "datagen_caption": "datagen_caption.txt",  # asked of a captioning backend for images without a caption
    "humour": "humour.txt",  # a humorous caption (EmoVIT Sec. 4.6) from the image and its measured cues
    "humour_fewshot": "humour_fewshot.txt",  # the same for the offline base model: examples it continues
}


@lru_cache(maxsize=None)
def template(name: str) -> str:
    try:
        filename = PROMPTS[name]
    except KeyError:
        raise KeyError(f"unknown prompt {name!r}; known: {', '.join(PROMPTS)}") from None
    return resources.files(__name__).joinpath(filename).read_text(encoding="utf-8").strip()


def format_options(labels) -> str:
    labels = list(labels)
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def render(name: str, options=None, **fields) -> str:
    if options is not None:
        fields["options"] = format_options(options)
    return template(name).format(**fields)


@lru_cache(maxsize=None)
def sentence_table(filename: str) -> dict[str, str]:
    """A ``key: text`` file (such as ``offline_reason.txt``) as a dict."""
    table = {}
    for line in resources.files(__name__).joinpath(filename).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, text = line.partition(":")
            table[key.strip()] = text.strip()
    return table
