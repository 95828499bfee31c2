"""The caption of an image for the generator: the input's own, one written by a captioning backend
through the backend seam, or none (the offline default has no captioner; the attributes alone then
describe the image, and the sample says so).
"""

from __future__ import annotations

from pathlib import Path

from .. import prompts
from ..backends import Backend, get_backend, user_message
from ..errors import BackendError, EmoError, redact_paths
from ..settings import Settings

CAPTION_TOKENS = 60
NO_CAPTIONER = "no captioner: the offline default has none, so the measured and given attributes alone describe the image"


def get_captioner(settings: Settings) -> Backend | None:
    """The captioning backend ``datagen_captioner`` asks for, or None; refuses one that cannot caption."""
    if settings.datagen_captioner == "none":
        return None
    if settings.backend == "offline":
        raise EmoError("--captioner backend needs a backend that writes text about an image (hf or openai, with "
                       "--backend and --model); the offline backend has no captioner")
    backend = get_backend(settings.backend, settings)
    if not (backend.supports("generate") and backend.supports("image")):
        raise EmoError(f"the {backend.name} backend cannot caption images")
    return backend


def caption_for(given: str, image_path: Path, captioner: Backend | None) -> dict:
    """``{"text", "source", "note"}``: source is ``given``, ``captioner`` or ``none``."""
    if given:
        return {"text": given, "source": "given", "note": ""}
    if captioner is None:
        return {"text": "", "source": "none", "note": NO_CAPTIONER}
    try:
        text = captioner.generate(user_message(prompts.template("datagen_caption"), image=str(image_path)),
                                  max_new_tokens=CAPTION_TOKENS, temperature=0.0)
    except BackendError as exc:
        return {"text": "", "source": "none", "note": f"the captioner failed ({redact_paths(str(exc))}); attributes only"}
    text = " ".join(text.split())
    if not text:
        return {"text": "", "source": "none", "note": f"{captioner.model_label} wrote an empty caption; attributes only"}
    return {"text": text, "source": "captioner", "note": f"written by {captioner.model_label}"}
