"""Backend registry: a backend is chosen by name from ``BACKENDS`` (never by sniffing a model id).

Backend modules are imported only when their backend is asked for, so ``import emo_core`` stays light
and a missing heavy dependency only matters to the backend that needs it.
"""

from __future__ import annotations

import importlib
import threading

from ..errors import BackendError
from ..settings import Settings
from .base import Backend, TokenChoices, media_paths, text_of, user_message

# name -> (module, class); the class takes the Settings.
BACKENDS: dict[str, tuple[str, str]] = {
    "offline": ("emo_core.backends.offline", "OfflineBackend"),
    "hf": ("emo_core.backends.hf", "HFBackend"),
    "openai": ("emo_core.backends.openai_compat", "OpenAIBackend"),
}

_INSTANCES: dict[tuple, Backend] = {}
_LOCK = threading.Lock()


def get_backend(name: str | None = None, settings: Settings | None = None) -> Backend:
    """The process-wide backend for these settings (constructed once, loaded lazily).

    Asking for the same backend with other settings (say another model id) unloads the previous
    instance first, so switching models does not grow memory.
    """
    settings = settings or Settings.from_env()
    name = name or settings.backend
    if name not in BACKENDS:
        available = ", ".join(sorted(BACKENDS))
        raise BackendError(f"unknown backend {name!r}; available here: {available}")
    key = (name, tuple(sorted(settings.to_dict().items())))
    with _LOCK:
        if key not in _INSTANCES:
            for old_key in [k for k in _INSTANCES if k[0] == name]:
                _INSTANCES.pop(old_key).unload()
            module_name, class_name = BACKENDS[name]
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise BackendError(f"the {name} backend cannot be imported here ({exc})") from None
            _INSTANCES[key] = getattr(module, class_name)(settings)
        return _INSTANCES[key]


__all__ = ["BACKENDS", "Backend", "TokenChoices", "get_backend", "media_paths", "text_of", "user_message"]
