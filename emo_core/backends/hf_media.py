"""Media for the model backends (hf, openai): images, frames sampled from a video, audio as 16 kHz mono.

transformers' video processors need torchvision, which does not load beside our torch build, so a
video reaches a model as a few frames (PIL images) spread over it, plus its audio track for models
that hear. Frames and audio come from the same readers as the offline analysis: ``video.decode``
(upright frames of rotated phone clips, variable-rate clips timed by their timestamps, at most
``video_max_side`` large, within ``max_video_seconds``) and ``audio.decode`` (mono 16 kHz, the same
duration limit); both open uploads through ``ffmpeg_input`` (a local file only, never a playlist).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..settings import Settings

# Whisper-style feature extractors (Qwen2.5-Omni's included) see at most 30 s; decoding more would
# only be thrown away.
MAX_AUDIO_SECONDS = 30.0


def load_image(path: str | Path):
    """An RGB PIL image (tasks hand backends already validated, downscaled files)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read the image {Path(path).name}: {exc}") from None


def video_frames(path: str | Path, count: int, settings: Settings) -> list:
    """RGB PIL frames shown at the middle of ``count`` equal slices of the video's first
    ``settings.max_video_seconds`` (``video.decode.sample_evenly``), upright, at most
    ``settings.video_max_side`` large."""
    from PIL import Image

    from ..video.decode import probe, sample_evenly

    info = probe(path, max_seconds=settings.max_video_seconds, max_side=settings.video_max_side)
    return [Image.fromarray(frame) for frame in sample_evenly(info, count).frames]


def load_audio(path: str | Path, settings: Settings) -> np.ndarray | None:
    """Mono float32 samples at 16 kHz of an audio file or a video's audio track (``audio.decode``),
    at most ``settings.max_video_seconds`` and ``MAX_AUDIO_SECONDS`` long; None when it has no audio."""
    from ..audio.decode import load_audio as decode_audio

    track = decode_audio(path, max_seconds=min(settings.max_video_seconds, MAX_AUDIO_SECONDS))
    return None if track is None else track.samples
