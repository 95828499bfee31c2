"""Words written in an image (meme text, signs, captions), read by an OCR model that ships in a wheel.

The model is RapidOCR's PP-OCRv6 (text detection + recognition, with PP-OCR's text-angle classifier)
on onnxruntime; its ONNX files are inside the ``rapidocr`` wheel, so nothing is downloaded. It loads on
the first call, once per process, behind a lock; calls are serialised (one engine, two cores).
Lines below ``MIN_LINE_SCORE``, or with fewer than ``MIN_LINE_CHARACTERS`` letters and digits, are
dropped: on photos without text the detector's rare false finds are short strings (a "0" at 0.66 in
the fur of scikit-image's cat photo).

    text = read_text(pil_image)
    text.lines, text.scores, text.seconds
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from PIL import Image

from ..errors import BackendError

MIN_LINE_SCORE = 0.6  # recognition confidence (0-1) a line must reach to be used
MIN_LINE_CHARACTERS = 2
MAX_LINES = 8  # meme text is a line or two; a page of text would swamp a one-line prompt
OCR_MODEL_NAME = "PP-OCRv6 small (RapidOCR, onnxruntime)"

_engine = None
_engine_lock = threading.Lock()


@dataclass(frozen=True)
class ImageText:
    lines: list[str] = field(default_factory=list)  # top to bottom, as the detector ordered them
    scores: list[float] = field(default_factory=list)  # recognition confidence of each line
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return " / ".join(self.lines)


def _get_engine():
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:
                raise BackendError(f"reading text in images needs rapidocr (pip install rapidocr==3.10.0): "
                                   f"{exc}") from None
            # rapidocr logs every model it opens at INFO on its own handler; errors are still shown.
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
            _engine = RapidOCR(params={"Global.log_level": "error"})
        return _engine


def warm_up() -> None:
    """Load the OCR models and run them once (the app's background preload)."""
    read_text(Image.new("RGB", (64, 32), "white"))


def read_text(image: Image.Image) -> ImageText:
    """The lines of text in ``image`` (an RGB PIL image) that the OCR model reads with confidence."""
    started = time.perf_counter()
    engine = _get_engine()
    with _engine_lock:  # one onnxruntime pipeline, not shared between threads mid-call
        output = engine(image.convert("RGB"))
    lines, scores = [], []
    for text, score in zip(output.txts or (), output.scores or ()):
        text = " ".join(str(text).split())
        readable = sum(character.isalnum() for character in text) >= MIN_LINE_CHARACTERS
        if readable and float(score) >= MIN_LINE_SCORE and len(lines) < MAX_LINES:
            lines.append(text)
            scores.append(round(float(score), 3))
    return ImageText(lines, scores, round(time.perf_counter() - started, 4))
