"""Turning emo_core's typed errors into messages the user sees (and the server keeps serving)."""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from emo_core import EmoError

from .markdown_text import escape_html

log = logging.getLogger(__name__)


def _as_user_error(handler_name: str, exc: Exception) -> gr.Error:
    if isinstance(exc, EmoError):
        # the message may quote ffmpeg, Pillow or a file name; toasts render HTML
        return gr.Error(f"Cannot analyse this input: {escape_html(exc)}")
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
