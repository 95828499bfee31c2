"""Turning emo_core's typed errors into messages the user sees (and the server keeps serving).

Messages never show server paths or hosts (``redact_paths``); anything that is not an ``EmoError`` is a
bug, logged with its traceback and shown only by its type."""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from emo_core import EmoError, redact_paths

from .markdown_text import escape_html

log = logging.getLogger(__name__)


def toast_text(text: str) -> str:
    """Untrusted text for a toast (``gr.Error``, ``gr.Info``): no server paths, and shown as text
    (gradio renders toasts as sanitised HTML)."""
    return escape_html(redact_paths(text))


def _as_user_error(handler_name: str, exc: Exception) -> gr.Error:
    if isinstance(exc, EmoError):  # meant for a person, but may name server paths or quote ffmpeg or Pillow
        return gr.Error(f"Cannot analyse this input: {toast_text(str(exc))}")
    log.error("handler %s failed", handler_name, exc_info=exc)  # a bug, not the user's fault
    return gr.Error(f"Internal error ({type(exc).__name__}); the details are in the server log.")


def user_errors(handler):
    """Re-raise ``EmoError`` as ``gr.Error`` with its message; log anything else and say so plainly.
    Works for plain and generator (streaming) handlers alike."""
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def streaming(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:
                raise _as_user_error(handler.__name__, exc) from None

        return streaming

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise _as_user_error(handler.__name__, exc) from None

    return wrapped
