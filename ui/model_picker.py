"""The backend and model picker that tabs share: hidden unless the operator turned model switching on.

Without switching the picker is hidden, but it stays in the layout so that the API's parameters are the
same on every server. Custom values pass the dropdowns so that ``choose_model`` refuses them with its
message (``emo_core.model_choice``).
"""

from __future__ import annotations

import gradio as gr

from emo_core import Settings, configured_option, model_options

BACKEND_NAMES = {"offline": "offline (CPU, bundled models)", "hf": "hf (transformers model)",
                 "openai": "openai (OpenAI-compatible endpoint)"}


def build(settings: Settings, id_prefix: str = "") -> tuple[gr.Dropdown, gr.Dropdown]:
    """Lay out the picker in the current column; returns the (backend, model) dropdowns, whose element ids
    are ``{id_prefix}backend`` and ``{id_prefix}model``."""
    options = model_options(settings)
    configured = configured_option(settings)
    with gr.Accordion("Model", open=False, visible=len(options) > 1):
        backend = gr.Dropdown([(BACKEND_NAMES[b], b) for b in dict.fromkeys(o.backend for o in options)],
                              value=configured.backend, label="Backend", elem_id=f"{id_prefix}backend",
                              allow_custom_value=True)
        model = gr.Dropdown([o.name for o in options if o.backend == configured.backend],
                            value=configured.name, label="Model (offered by this server)", elem_id=f"{id_prefix}model",
                            allow_custom_value=True)
        backend.change(lambda chosen: gr.Dropdown(choices=[o.name for o in options if o.backend == chosen],
                                                  value=next(o.name for o in options if o.backend == chosen)),
                       inputs=backend, outputs=model, api_visibility="private")
    return backend, model
