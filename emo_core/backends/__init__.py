"""Backend registry: a backend is chosen by name from ``BACKENDS`` (never by sniffing a model id).

Backend modules are imported only when their backend is asked for, so ``import emo_core`` stays light
and a missing heavy dependency only matters to the backend that needs it.
"""

from __future__ import annotations

import importlib
import threading

from ..errors import BackendError
from ..settings import Settings
from .base import Backend, media_paths, text_of, user_message

# name -> (module, class); the class takes the Settings.
BACKENDS: dict[str, tuple[str, str]] = {
    "offline": ("emo_core.backends.offline", "OfflineBackend"),
}

_INSTANCES: dict[tuple, Backend] = {}
_LOCK = threading.Lock()


def get_backend(name: str | None = None, settings: Settings | None = None) -> Backend:
    """The process-wide backend for these settings (constructed once, loaded lazily)."""
    settings = settings or Settings.from_env()
    name = name or settings.backend
    if name not in BACKENDS:
        available = ", ".join(sorted(BACKENDS))
        raise BackendError(f"unknown backend {name!r}; available here: {available}")
    key = (name, settings.model, settings.device, settings.min_face_score, settings.max_faces)
    with _LOCK:
        if key not in _INSTANCES:
            module_name, class_name = BACKENDS[name]
            backend_class = getattr(importlib.import_module(module_name), class_name)
            _INSTANCES[key] = backend_class(settings)
        return _INSTANCES[key]


__all__ = ["BACKENDS", "Backend", "get_backend", "media_paths", "text_of", "user_message"]
