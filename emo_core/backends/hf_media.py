"""Media for the transformers backend: images, frames sampled from a video, audio as 16 kHz mono.

transformers' video processors need torchvision, which does not load beside our torch build, so a
video reaches a model as a few frames (PIL images) sampled here with moviepy, plus its audio track
for models that hear. moviepy decodes with the ffmpeg binary of imageio-ffmpeg (no system ffmpeg).

Audio is decoded, down-mixed and resampled to 16 kHz by ffmpeg's own resampler in one pipe (moviepy's
``to_soundarray(fps=16000)`` returns near-silence on a 44.1 kHz track, as ``emo_core/audio/decode.py`` notes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

AUDIO_RATE = 16000  # what Whisper-style audio encoders (Qwen2.5-Omni's included) expect
# Whisper-style feature extractors see at most 30 s; decoding more would only be thrown away.
MAX_AUDIO_SECONDS = 30.0
DECODE_TIMEOUT_S = 120  # a damaged file must not hang a request forever


def load_image(path: str | Path):
    """An RGB PIL image (tasks hand backends already validated, downscaled files)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read the image {Path(path).name}: {exc}") from None


def video_frames(path: str | Path, count: int) -> list:
    """``count`` RGB frames taken at the centres of equal slices of the video."""
    from moviepy import VideoFileClip
    from PIL import Image

    try:
        clip = VideoFileClip(str(path), audio=False)
    except (OSError, KeyError, IndexError) as exc:
        raise InvalidInputError(f"cannot read the video {Path(path).name}: {exc}") from None
    try:
        duration = float(clip.duration or 0.0)
        if duration <= 0:
            raise InvalidInputError(f"the video {Path(path).name} has no frames")
        # Stay a little before the end: moviepy's last timestamp may lie past the last decodable frame.
        last = max(0.0, duration - 1.0 / max(clip.fps or 25.0, 1.0))
        times = [min(last, duration * (index + 0.5) / count) for index in range(count)]
        return [Image.fromarray(np.asarray(clip.get_frame(t), dtype=np.uint8)).convert("RGB") for t in times]
    finally:
        clip.close()


def has_audio_track(path: str | Path) -> bool:
    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    try:
        return bool(ffmpeg_parse_infos(str(path)).get("audio_found"))
    except (OSError, KeyError, IndexError):
        return False


def load_audio(path: str | Path, max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
    """Mono float32 samples at 16 kHz from an audio file or from a video's audio track.

    ffmpeg (moviepy's binary) decodes, down-mixes and resamples in one pipe; moviepy's own
    ``AudioFileClip`` fails reading up to the very end of short clips.
    """
    import subprocess

    from imageio_ffmpeg import get_ffmpeg_exe

    command = [get_ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-t", str(max_seconds), "-vn",
               "-ac", "1", "-ar", str(AUDIO_RATE), "-f", "f32le", "-"]
    try:
        decoded = subprocess.run(command, capture_output=True, timeout=DECODE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise InvalidInputError(f"decoding the audio of {Path(path).name} took too long") from None
    samples = np.frombuffer(decoded.stdout, dtype=np.float32)
    if decoded.returncode != 0 or samples.size == 0:
        reason = decoded.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio samples"]
        raise InvalidInputError(f"cannot read audio from {Path(path).name}: {reason[0]}")
    return samples.copy()
