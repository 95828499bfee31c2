"""Audio and video fixtures for tests and benchmarks, generated on the fly (nothing in git).

Real speech comes from Debian's ``espeak-ng`` (``scripts/setup.sh --test`` installs it); videos are
muxed with moviepy and the ffmpeg binary of imageio-ffmpeg. Used by the audio tests and meant to be
reused by the video tests:

    speech_wav("hello there", tmp / "a.wav", pitch=20, speed=120)
    pad_with_silence(tmp / "a.wav", tmp / "padded.wav", before=1.5, after=1.5)
    mux_video(None, tmp / "padded.wav", tmp / "clip.mp4", fps=30)          # grey frames + speech
    mux_video(lambda t: frame_at(t), None, tmp / "mute.mp4", duration=2.0)  # no audio track
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable, Union

import numpy as np

ESPEAK = "espeak-ng"

# A frame source: a function of time (seconds) returning an HxWx3 uint8 RGB frame, a still RGB image,
# or None for a plain grey picture.
FrameSource = Union[Callable[[float], np.ndarray], np.ndarray, None]


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


def speech_wav(text: str, path: str | Path, pitch: int = 50, speed: int = 150, voice: str = "en-us") -> Path:
    """Synthesise ``text`` with espeak-ng into a 22.05 kHz mono wav at ``path``.

    ``pitch`` is espeak's 0-99 pitch setting (50 is its default voice; 10 is a low voice, 90 a high
    one) and ``speed`` its rate in words per minute (espeak's default is 175).
    """
    path = Path(path)
    if not espeak_available():
        raise RuntimeError(f"{ESPEAK} is missing: install the Debian package espeak-ng (scripts/setup.sh --test)")
    subprocess.run(
        [ESPEAK, "-v", voice, "-w", str(path), "-s", str(int(speed)), "-p", str(int(pitch)), text],
        check=True, capture_output=True, timeout=60,
    )
    return path


def silence_wav(path: str | Path, seconds: float, rate: int = 16000, noise_dbfs: float | None = None) -> Path:
    """A wav of digital silence (or, with ``noise_dbfs``, faint white noise at that RMS level)."""
    import soundfile

    samples = np.zeros(int(round(seconds * rate)), dtype=np.float32)
    if noise_dbfs is not None:
        rng = np.random.default_rng(0)
        samples = (rng.standard_normal(samples.size) * 10 ** (noise_dbfs / 20)).astype(np.float32)
    soundfile.write(str(path), samples, rate)
    return Path(path)


def pad_with_silence(source: str | Path, path: str | Path, before: float = 0.0, after: float = 0.0) -> Path:
    """Copy the wav ``source`` to ``path`` with ``before`` / ``after`` seconds of silence around it."""
    import soundfile

    samples, rate = soundfile.read(str(source), dtype="float32")
    pad = lambda seconds: np.zeros((int(round(seconds * rate)),) + samples.shape[1:], dtype=np.float32)  # noqa: E731
    soundfile.write(str(path), np.concatenate([pad(before), samples, pad(after)]), rate)
    return Path(path)


def concat_wavs(sources: list[str | Path], path: str | Path, gap: float = 0.0) -> Path:
    """Join mono wavs of the same rate end to end, with ``gap`` seconds of silence between them."""
    import soundfile

    parts, rate = [], None
    for source in sources:
        samples, source_rate = soundfile.read(str(source), dtype="float32")
        if rate is not None and source_rate != rate:
            raise ValueError(f"{source} is at {source_rate} Hz, the others at {rate} Hz")
        rate = source_rate
        if parts and gap > 0:
            parts.append(np.zeros(int(round(gap * rate)), dtype=np.float32))
        parts.append(samples)
    soundfile.write(str(path), np.concatenate(parts), rate)
    return Path(path)


def wav_duration(path: str | Path) -> float:
    import soundfile

    return float(soundfile.info(str(path)).duration)


def mux_video(
    frames: FrameSource,
    audio_path: str | Path | None,
    out_path: str | Path,
    fps: int = 30,
    *,
    size: tuple[int, int] = (640, 360),
    duration: float | None = None,
    audio_fps: int = 44100,
    codec: str = "libx264",
    audio_codec: str = "aac",
) -> Path:
    """Write a video of ``frames`` with the audio of ``audio_path`` (None: no audio track at all).

    ``size`` is (width, height); ``duration`` defaults to the audio's length. The audio is resampled
    to ``audio_fps`` (44.1 kHz by default, the rate that triggers moviepy's 16 kHz read-out trap).
    Use ``codec="libvpx", audio_codec="libvorbis"`` for a .webm file.
    """
    from moviepy import AudioFileClip, ColorClip, ImageClip, VideoClip

    audio = AudioFileClip(str(audio_path)) if audio_path is not None else None
    if duration is None:
        if audio is None:
            raise ValueError("a video without audio needs a duration")
        duration = audio.duration
    if callable(frames):
        clip = VideoClip(frame_function=frames, duration=duration)
    elif frames is not None:
        clip = ImageClip(np.asarray(frames, dtype=np.uint8), duration=duration)
    else:
        clip = ColorClip(size=size, color=(90, 90, 90), duration=duration)
    if audio is not None:
        clip = clip.with_audio(audio.with_duration(min(duration, audio.duration)))
    # "ultrafast" keeps fixture encoding short; only x264 understands the preset names.
    speed = {"preset": "ultrafast"} if codec == "libx264" else {}
    try:
        clip.write_videofile(
            str(out_path), fps=fps, codec=codec, audio=audio is not None, audio_codec=audio_codec,
            audio_fps=audio_fps, logger=None, temp_audiofile_path=str(Path(out_path).parent), **speed,
        )
    finally:
        clip.close()
        if audio is not None:
            audio.close()
    return Path(out_path)


def streamed_webm(audio_path: str | Path, out_path: str | Path) -> Path:
    """An audio-only webm written to a pipe, so it declares no duration (like a browser's MediaRecorder)."""
    from moviepy.config import FFMPEG_BINARY

    with open(out_path, "wb") as sink:
        subprocess.run(
            [FFMPEG_BINARY, "-nostdin", "-v", "error", "-y", "-i", str(audio_path),
             "-c:a", "libopus", "-f", "webm", "-"],
            stdout=sink, check=True, timeout=60,
        )
    return Path(out_path)
