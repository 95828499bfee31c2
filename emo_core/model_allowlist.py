"""Model allow-list entries: ``name=backend:model``, parsed and named for visitors.

Comma-separated entries, each optionally named (``name=backend:model``); ``offline`` alone is the
embedded default. Visitors see and send the name; without one, a hub id or API model name is its own
name and a local folder shows its last part only. Kept apart from ``model_choice`` so that the
settings can validate an allow-list at start without importing the backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

BACKEND_NAMES = ("offline", "hf", "openai")  # the keys of ``emo_core.backends.BACKENDS``
OFFLINE_NAME = "offline (CPU, bundled models)"


@dataclass(frozen=True)
class ModelOption:
    name: str  # what visitors see and send
    backend: str
    model: str  # hub id, local folder or API model name ("" for offline)


def display_name(backend: str, model: str) -> str:
    """How visitors see a model: a hub id or API name as it is, a local folder by its last part."""
    if backend == "offline":
        return OFFLINE_NAME
    path = PurePath(model)
    if path.is_absolute() or model.startswith((".", "~")):
        return path.name or model  # a local folder: its name, never where it is
    return model


def parse_allowlist(text: str) -> list[ModelOption]:
    """The entries of an allow-list string; raises ``ValueError`` naming a malformed entry."""
    options = []
    for entry in (piece.strip() for piece in text.split(",")):
        if not entry:
            continue
        name, _, target = entry.rpartition("=") if "=" in entry else ("", "", entry)
        backend, _, model = target.strip().partition(":")
        backend, model, name = backend.strip(), model.strip(), name.strip()
        if backend not in BACKEND_NAMES:
            raise ValueError(f"model allow-list entry {entry!r}: unknown backend {backend!r} "
                             f"(choose {', '.join(BACKEND_NAMES)})")
        if backend != "offline" and not model:
            raise ValueError(f"model allow-list entry {entry!r} names no model (write backend:model)")
        options.append(ModelOption(name or display_name(backend, model), backend, "" if backend == "offline" else model))
    return options
