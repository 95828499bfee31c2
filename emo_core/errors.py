"""Typed exceptions of emo_core. The UI turns ``EmoError`` subclasses into messages for the user."""

from __future__ import annotations

import re


class EmoError(Exception):
    """Base of every error emo_core raises on purpose; the message is meant for a person."""


class InvalidInputError(EmoError, ValueError):
    """The input cannot be analysed (not an image, corrupt, empty, ...)."""


class InputTooLargeError(InvalidInputError):
    """The input is over a configured limit (pixels, bytes, duration)."""


class UnknownClassSetError(EmoError, KeyError):
    """A class-set key that is not in ``emo_core.labels.CLASS_SETS``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BackendError(EmoError):
    """A model backend failed to load or to answer."""


class CapabilityError(BackendError):
    """The backend cannot do what was asked (e.g. ``score`` on a generate-only backend)."""


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>)\]]+")
_POSIX_PATH = re.compile(r"(?<![\w:/.~<-])(?:~|\.{1,2})?/(?:[^\s/'\"`<>()\[\],;]+/)*([^\s/'\"`<>()\[\],;]*)")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\(?:[^\s\\'\"<>]+\\)*([^\s\\'\"<>]*)")


def redact_paths(text: str) -> str:
    """``text`` with every absolute file path cut to its last part and every URL replaced by
    ``<server>``, for messages shown to visitors (who must not learn where the server keeps things)."""
    text = _URL.sub("<server>", text)
    text = _WINDOWS_PATH.sub(lambda match: match.group(1) or "<folder>", text)
    return _POSIX_PATH.sub(lambda match: match.group(1) or "<folder>", text)
