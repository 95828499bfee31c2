"""Backend registry: a backend is chosen by name from ``BACKENDS`` (never by sniffing a model id).

Backend modules are imported only when their backend is asked for, so ``import emo_core`` stays light
and a missing heavy dependency only matters to the backend that needs it.
"""

from __future__ import annotations

import importlib
import threading
from collections import Counter, OrderedDict
from contextlib import contextmanager
from typing import Iterator

from ..errors import BackendError
from ..settings import Settings
from .base import Backend, TokenChoices, media_paths, text_of, user_message

# name -> (module, class); the class takes the Settings.
BACKENDS: dict[str, tuple[str, str]] = {
    "offline": ("emo_core.backends.offline", "OfflineBackend"),
    "hf": ("emo_core.backends.hf", "HFBackend"),
    "openai": ("emo_core.backends.openai_compat", "OpenAIBackend"),
}

_INSTANCES: "OrderedDict[tuple, Backend]" = OrderedDict()  # least recently used first
_USERS: Counter = Counter()  # requests holding each instance (``backend_lease``)
_LOCK = threading.Lock()


def _key(name: str, settings: Settings) -> tuple:
    return name, tuple(sorted(settings.to_dict().items()))


def _take(name: str | None, settings: Settings | None, lease: bool) -> tuple[tuple, Backend]:
    settings = settings or Settings.from_env()
    name = name or settings.backend
    if name not in BACKENDS:
        available = ", ".join(sorted(BACKENDS))
        raise BackendError(f"unknown backend {name!r}; available here: {available}")
    key = _key(name, settings)
    with _LOCK:
        if key not in _INSTANCES:
            module_name, class_name = BACKENDS[name]
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise BackendError(f"the {name} backend cannot be imported here ({exc})") from None
            _INSTANCES[key] = getattr(module, class_name)(settings)
        _INSTANCES.move_to_end(key)
        if lease:
            _USERS[key] += 1
        backend = _INSTANCES[key]
        idle = _evictable(name, settings.max_loaded_models, keep=key)
    _unload(idle)
    return key, backend


def _evictable(name: str, keep_count: int, keep: tuple | None) -> list[Backend]:
    """Pop (under ``_LOCK``) the least recently used idle instances of backend ``name`` beyond ``keep_count``;
    an instance a request holds, and ``keep``, stay."""
    same = [key for key in _INSTANCES if key[0] == name]
    evicted = []
    for key in same:
        if len(same) - len(evicted) <= keep_count:
            break
        if key != keep and _USERS[key] == 0:
            evicted.append(_INSTANCES.pop(key))
    return evicted


def _unload(backends: list[Backend]) -> None:
    for backend in backends:  # outside the lock: unloading waits for the model's running call
        backend.unload()


def get_backend(name: str | None = None, settings: Settings | None = None) -> Backend:
    """The process-wide backend for these settings (constructed once, loaded lazily).

    Asking for another model of the same backend unloads the least recently used idle ones beyond
    ``settings.max_loaded_models``, so switching models does not grow memory; a model that a request
    holds through ``backend_lease`` is never unloaded under it.
    """
    return _take(name, settings, lease=False)[1]


@contextmanager
def backend_lease(name: str | None = None, settings: Settings | None = None) -> Iterator[Backend]:
    """``get_backend`` for the length of one request: the instance stays loaded until the block ends.

    Constructing takes the registry lock only briefly; the model itself loads lazily on first use,
    outside it, so a request that loads a model does not hold up requests that use another one.
    """
    settings = settings or Settings.from_env()
    key, backend = _take(name, settings, lease=True)
    try:
        yield backend
    finally:
        with _LOCK:
            _USERS[key] -= 1
            if _USERS[key] <= 0:
                del _USERS[key]
            same = [k for k in _INSTANCES if k[0] == key[0]]
            idle = _evictable(key[0], settings.max_loaded_models, keep=same[-1] if same else None)
        _unload(idle)


__all__ = ["BACKENDS", "Backend", "TokenChoices", "backend_lease", "get_backend", "media_paths", "text_of", "user_message"]
