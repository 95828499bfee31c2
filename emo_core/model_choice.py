"""Which models a request may use: the operator's configured model, plus an allow-list visitors may pick from.

A public demo must not let a stranger point the server at any hub id, local folder or paid API model.
So a request names a model only by (backend, name), and ``choose_model`` accepts it only when it is the
configured model, or when switching is on (``allow_model_switch``) and the pair is on the operator's
``model_allowlist``. Anything else raises ``ModelChoiceError`` with a message that names the offered
models and never the server's paths.

Allow-list entries (``name=backend:model``) are parsed and named in ``model_allowlist``.

    options = model_options(settings)          # the configured model first
    chosen = choose_model(settings, "hf", "InstructBLIP 7B")   # Settings with backend/model set
"""

from __future__ import annotations

from dataclasses import replace

from .errors import EmoError
from .model_allowlist import ModelOption, display_name, parse_allowlist
from .settings import Settings


class ModelChoiceError(EmoError):
    """A request asked for a model this server does not offer."""


def configured_option(settings: Settings) -> ModelOption:
    model = "" if settings.backend == "offline" else settings.model
    return ModelOption(display_name(settings.backend, model), settings.backend, model)


def model_options(settings: Settings) -> list[ModelOption]:
    """What a visitor may choose: the configured model, then (when switching is on) the allow-list."""
    options = [configured_option(settings)]
    if settings.allow_model_switch:
        for option in parse_allowlist(settings.model_allowlist):
            if (option.backend, option.model) not in {(o.backend, o.model) for o in options}:
                options.append(option)
    return options


def choose_model(settings: Settings, backend: str | None = None, name: str | None = None) -> Settings:
    """The settings for a request that asked for (backend, name); empty values mean the configured model."""
    configured = configured_option(settings)
    backend = (backend or "").strip() or configured.backend
    name = (name or "").strip()
    if backend == configured.backend and name in ("", configured.name, configured.model):
        return settings
    if not settings.allow_model_switch:
        raise ModelChoiceError(f"this server answers with its configured model only ({configured.name} on "
                               f"{configured.backend}); choosing another model is turned off")
    offered = model_options(settings)
    for option in offered:
        if option.backend == backend and (name in (option.name, option.model) or (backend == "offline" and not name)):
            return replace(settings, backend=option.backend, model=option.model)
    listed = "; ".join(f"{option.name} ({option.backend})" for option in offered)
    raise ModelChoiceError(f"that model is not offered here; choose one of: {listed}")


def hub_offline(settings: Settings) -> bool:
    """Whether the hf backend loads from local folders and the local hub cache only (``hub_access``)."""
    if settings.hub_access != "auto":
        return settings.hub_access == "offline"
    return not any(option.backend == "hf" for option in model_options(settings))
