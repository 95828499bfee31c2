"""Turning emo_core's typed errors into messages the user sees (and the server keeps serving)."""

from __future__ import annotations

import functools
import logging

import gradio as gr

from emo_core import EmoError

log = logging.getLogger(__name__)


def user_errors(handler):
    """Re-raise ``EmoError`` as ``gr.Error`` with its message; log anything else and say so plainly."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except EmoError as exc:
            raise gr.Error(f"Cannot analyse this input: {exc}") from None
        except Exception as exc:  # a bug, not the user's fault: keep serving, tell them
            log.exception("handler %s failed", handler.__name__)
            raise gr.Error(f"Internal error ({type(exc).__name__}); the details are in the server log.") from None

    return wrapped
