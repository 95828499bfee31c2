"""Audio track of a video or audio file as mono float32 samples at 16 kHz, with typed errors.

    track = load_audio("clip.mp4", max_seconds=30)   # None when the file has no audio track
    track.samples, track.rate, track.native_rate, track.notes

Probing parses ``ffmpeg -i`` with moviepy's parser and decoding runs the ffmpeg binary moviepy uses (the
one shipped by imageio-ffmpeg), so no system ffmpeg is needed; both open the upload through
``ffmpeg_input`` (a local file only, never a playlist). The track is decoded at its *native* rate
and resampled to 16 kHz with soxr: moviepy's ``to_soundarray(fps=16000)`` on a 44.1 kHz track returns
near-silence (moviepy 2.2.1). soxr is the resampler ``librosa.resample`` calls by default (same
samples, checked); it is called directly because importing librosa costs 4-7 s on a cold 2-core machine.

ffmpeg is piped to float32 mono directly rather than through moviepy's ``AudioFileClip``, which reads
int16 stereo (a mono source comes back 3 dB quieter, which would bias the loudness cue) and pads or
cuts the samples to the duration the container declares. Nothing is written to disk. This is the
project's one audio decoder: the offline analysis and the model backends (``backends.hf_media``) use it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputTooLargeError, InvalidInputError
from ..ffmpeg_input import ffmpeg_binary, ffmpeg_reason, input_args, parse_header, read_header

TARGET_RATE = 16000  # what silero-vad and Whisper expect
DECODE_TIMEOUT_S = 300  # a damaged file must not hang a worker forever
# A decoded track this much shorter than the container declares is reported as truncated
# (small differences are normal: codec priming, rounding of the declared duration).
TRUNCATION_TOLERANCE_S = 0.5
WHAT = "a readable video or audio file"  # ends the messages refusing a file
# ffmpeg reads still images as one-frame "videos"; these demuxers mean "an image, not a clip".
_IMAGE_DEMUXERS = ("_pipe", "image2")


@dataclass(frozen=True)
class MediaInfo:
    """What the container declares (from one ``ffmpeg -i`` probe)."""

    duration: float  # seconds, whole file
    has_audio: bool
    has_video: bool
    audio_rate: int | None  # native audio sample rate, Hz
    video_fps: float | None
    video_size: tuple[int, int] | None  # (width, height), pixels


@dataclass
class AudioTrack:
    """Mono audio ready for analysis."""

    samples: np.ndarray  # float32, mono, nominally in [-1, 1], at ``rate`` Hz
    rate: int  # always TARGET_RATE (16 kHz)
    native_rate: int  # the file's own sample rate, Hz
    source_duration: float  # seconds in the file (as declared, or as decoded if shorter)
    truncated_to: float | None = None  # max_seconds when it cut the track short, else None
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Seconds of audio in ``samples`` (what is analysed)."""
        return self.samples.size / self.rate


def probe_media(path: str | Path, *, max_bytes: int | None = None) -> MediaInfo:
    """Streams and duration of a media file; raises ``InvalidInputError`` for anything unreadable."""
    path = _checked_file(path, max_bytes)
    header = read_header(path, WHAT)
    try:
        infos = parse_header(header, path)
    except OSError:
        reason = ffmpeg_reason(header, path)
        if _is_still_image(header):
            raise InvalidInputError(f"{path.name} is a still image, not a video or audio file") from None
        if "Duration: N/A" not in header:
            raise InvalidInputError(f"{path.name} is not {WHAT} ({reason})") from None
        # Streamed recordings (browser MediaRecorder webm, piped mkv) declare no duration: ffmpeg then
        # has to decode the whole file once to measure it.
        header = read_header(path, WHAT, decode_file=True)
        try:
            infos = parse_header(header, path, decode_file=True)
        except OSError:
            raise InvalidInputError(f"{path.name} is not {WHAT} ({ffmpeg_reason(header, path)})") from None
    duration = infos.get("duration")
    if not duration or duration <= 0:
        raise InvalidInputError(f"{path.name} has no playable duration")
    size = infos.get("video_size")
    return MediaInfo(
        duration=float(duration),
        has_audio=bool(infos.get("audio_found")),
        has_video=bool(infos.get("video_found")),
        audio_rate=int(infos["audio_fps"]) if infos.get("audio_fps") else None,
        video_fps=float(infos["video_fps"]) if infos.get("video_fps") else None,
        video_size=(int(size[0]), int(size[1])) if size else None,
    )


def load_audio(
    path: str | Path,
    *,
    max_seconds: float | None = None,
    max_bytes: int | None = None,
    info: MediaInfo | None = None,
) -> AudioTrack | None:
    """The first audio track of ``path`` as mono 16 kHz float32, or None if the file has none.

    ``max_seconds`` keeps only the beginning of long files (and says so in ``notes``); ``max_bytes``
    refuses larger files with ``InputTooLargeError``; ``info`` skips the probe when the caller has one.
    Raises ``InvalidInputError`` for a missing, empty, non-media or undecodable file.
    """
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    path = _checked_file(path, max_bytes)
    info = info or probe_media(path)
    if not info.has_audio:
        return None
    native_rate = info.audio_rate or TARGET_RATE
    cut = max_seconds is not None and info.duration > max_seconds
    command = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", *input_args(path, WHAT),
               "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if cut:
        command += ["-t", f"{max_seconds:.3f}"]
    # -ac 1 averages the channels; -ar keeps the native rate (resampling happens below, with soxr).
    command += ["-ac", "1", "-ar", str(native_rate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=DECODE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InvalidInputError(f"decoding the audio of {path.name} took over {DECODE_TIMEOUT_S} s") from None
    native = np.frombuffer(done.stdout, dtype=np.float32)
    errors = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0 and native.size == 0:
        raise InvalidInputError(f"the audio of {path.name} cannot be decoded ({ffmpeg_reason(errors, path)})")

    notes: list[str] = []
    decoded_seconds = native.size / native_rate
    expected_seconds = min(info.duration, max_seconds) if cut else info.duration
    if native.size == 0:
        notes.append("the audio track holds no samples")
    elif decoded_seconds < expected_seconds - TRUNCATION_TOLERANCE_S:
        notes.append(
            f"the audio ends after {decoded_seconds:.1f} s although the file declares {expected_seconds:.1f} s "
            "(truncated or damaged file)"
        )
    elif errors:
        notes.append(f"ffmpeg reported decoding errors ({ffmpeg_reason(errors, path)})")
    if cut:
        notes.append(f"only the first {max_seconds:g} s of {info.duration:.1f} s analysed")
    samples = _resample(native, native_rate, TARGET_RATE)
    # Decoders can overshoot slightly (inter-sample peaks of lossy codecs); keep samples in range.
    np.clip(samples, -1.0, 1.0, out=samples)
    return AudioTrack(
        samples=samples,
        rate=TARGET_RATE,
        native_rate=native_rate,
        source_duration=min(info.duration, decoded_seconds) if not cut else info.duration,
        truncated_to=float(max_seconds) if cut else None,
        notes=notes,
    )


def _resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate or samples.size == 0:
        return np.array(samples, dtype=np.float32)  # a writable copy (frombuffer's array is read-only)
    import soxr

    return np.asarray(soxr.resample(samples, from_rate, to_rate, quality="HQ"), dtype=np.float32)


def _checked_file(path: str | Path, max_bytes: int | None) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path.name or path} does not exist or is not a file")
    size = path.stat().st_size
    if size == 0:
        raise InvalidInputError(f"{path.name} is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise InputTooLargeError(f"{path.name} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit")
    return path


def _is_still_image(ffmpeg_output: str) -> bool:
    match = re.search(r"Input #0, ([\w,]+), from", ffmpeg_output)
    return bool(match) and any(marker in match.group(1) for marker in _IMAGE_DEMUXERS)
