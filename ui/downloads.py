"""Files a request offers for download: written in a folder of the request's own, handed to gradio's cache.

gradio serves a returned file from its cache, copying it there after the handler returns, so a folder the
handler made would outlive the request. Instead the handler writes inside ``request_folder()`` (removed
when the request ends, on errors too) and returns ``publish(component, path)``: the file moved into the
cache now, under a content-hash folder, where the app's ``delete_cache`` setting removes it later.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import gradio as gr

PREFIX = "emolens-request-"


@contextmanager
def request_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=PREFIX) as folder:
        yield Path(folder)


def publish(component: gr.components.Component, path: Path) -> str:
    """The cached copy of ``path`` that ``component`` serves (tracked by gradio for ``delete_cache``)."""
    return component.move_resource_to_block_cache(path)
