"""Loading models ahead of the first request (the app calls this in a background thread)."""

from __future__ import annotations

import logging
import time

from .backends import get_backend
from .cues.perception import get_perceiver
from .settings import Settings

log = logging.getLogger(__name__)


def warm_up(settings: Settings | None = None) -> float:
    """Load the perception, OCR, audio and reason models and the configured backend, run each once;
    returns seconds."""
    settings = settings or Settings.from_env()
    started = time.perf_counter()
    get_perceiver(settings.min_face_score, settings.max_faces).warm_up()
    from .audio import warm_up as warm_up_audio
    from .llm.reason_writer import warm_up as warm_up_reasons

    warm_up_audio()
    from .humour.ocr import warm_up as warm_up_ocr

    warm_up_ocr()
    from .llm.small_lm import get_small_lm

    warm_up_reasons("video", lm=get_small_lm(settings))
    get_backend(settings.backend, settings).load()
    elapsed = time.perf_counter() - started
    log.info("models ready in %.1f s", elapsed)
    return elapsed
