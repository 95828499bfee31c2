"""Keeps gradio's file cache from growing: what gradio's own ``delete_cache`` leaves behind.

gradio deletes the uploads and result files it tracks once they are older than the app's
``cache_max_age`` (``Blocks(delete_cache=...)``), but it leaves their content-hash folders behind,
empty, and each upload through the HTTP API leaves an empty ``tmp*`` file at the top of the cache
(measured with gradio 6.31: one per uploaded file). This sweeps both, on the same schedule, as a
lifespan task of the app's server; it removes nothing that holds data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path


def sweep(folder: Path, max_age: float, now: float | None = None) -> int:
    """Remove empty files and empty folders directly under ``folder`` older than ``max_age`` seconds;
    returns how many it removed."""
    now = time.time() if now is None else now
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        with contextlib.suppress(OSError):  # another request may be using or removing it right now
            stat = entry.lstat()
            if now - stat.st_mtime <= max_age:
                continue
            if entry.is_file() and not entry.is_symlink() and stat.st_size == 0:
                entry.unlink()
                removed += 1
            elif entry.is_dir() and not entry.is_symlink() and not any(entry.iterdir()):
                entry.rmdir()
                removed += 1
    return removed


def lifespan(max_age: float):
    """A FastAPI lifespan that sweeps gradio's cache folder every ``min(max_age, 600)`` seconds."""
    from gradio.utils import get_upload_folder

    @contextlib.asynccontextmanager
    async def run(app):
        async def loop():
            while True:
                await asyncio.sleep(min(max_age, 600))
                await asyncio.to_thread(sweep, Path(get_upload_folder()), max_age)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run
