"""Reading frames from a video file with moviepy (the ffmpeg binary of imageio-ffmpeg).

ffmpeg applies rotation metadata itself, so portrait phone clips come out upright. Frames larger than
``max_side`` are scaled down by ffmpeg while decoding. ``sample_frames`` walks the whole clip once
at its native rate and keeps every k-th frame (with its index in the original frame sequence);
``frames_between`` decodes a short window at the full rate, for refining the peak frame. moviepy
reads a variable-frame-rate file as constant-rate at the rate ffmpeg reports, so its frame indices
are counted at that rate (``peak_time`` is exact either way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputTooLargeError, InvalidInputError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")


@dataclass
class VideoInfo:
    path: Path
    fps: float
    duration: float  # seconds of the file
    analysed_duration: float  # seconds analysed (may be cut by the duration limit)
    size: tuple[int, int]  # (width, height) of the decoded (upright, maybe downscaled) frames
    frame_count: int  # frames in the analysed part, at ``fps``
    has_audio: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class SampledFrames:
    indices: list[int]  # positions in the original frame sequence (0-based)
    times: list[float]  # seconds
    frames: list[np.ndarray]  # HxWx3 uint8 RGB


def probe(path: str | Path, *, max_seconds: float, max_side: int = 960) -> VideoInfo:
    """Open ``path`` and read its metadata; refuse non-videos with ``InvalidInputError``."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"no such file: {path.name}")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{path.name} is empty (0 bytes)")
    clip = _open(path, max_side)
    try:
        fps = float(clip.fps or 0.0)
        duration = float(clip.duration or 0.0)
        if fps <= 0 or duration <= 0 or not math.isfinite(duration):
            raise InvalidInputError(f"{path.name} has no readable video frames (duration {duration}, fps {fps})")
        notes = []
        analysed = duration
        if duration > max_seconds:
            analysed = max_seconds
            notes.append(f"the video is {duration:.0f} s long: only the first {max_seconds:g} s were analysed")
        if clip.rotation:
            notes.append(f"rotated upright from its {clip.rotation:.0f} degree rotation metadata")
        if getattr(clip.reader, "infos", {}).get("video_found") is False:
            raise InvalidInputError(f"{path.name} holds no video stream")
        size = tuple(int(v) for v in clip.size)
        info = VideoInfo(path, fps, duration, analysed, size, int(round(analysed * fps)), clip.audio is not None,
                         notes)
        return info
    finally:
        clip.close()


def sample_frames(info: VideoInfo, sample_fps: float, max_side: int = 960) -> SampledFrames:
    """Frames every ``k = round(fps / sample_fps)`` original frames over the analysed part, with their
    original indices. ffmpeg decodes every frame; only the kept ones are converted to arrays."""
    step = max(1, int(round(info.fps / sample_fps)))
    indices, times, frames = [], [], []
    clip = _open(info.path, max_side)
    try:
        for index in range(0, info.frame_count, step):
            time = index / info.fps
            indices.append(index)
            times.append(time)
            frames.append(np.ascontiguousarray(clip.get_frame(time)[..., :3]).astype(np.uint8, copy=False))
    except (OSError, IOError) as exc:
        if not frames:
            raise InvalidInputError(f"the video could not be decoded ({exc})") from None
        info.notes.append(f"decoding stopped early at {times[-1]:.1f} s (the file may be truncated)")
    finally:
        clip.close()
    if not frames:
        raise InvalidInputError(f"{info.path.name} has no decodable frames")
    return SampledFrames(indices, times, frames)


def frames_between(info: VideoInfo, first: int, last: int, max_side: int = 960) -> SampledFrames:
    """All frames with original indices in [first, last] at the full rate."""
    first, last = max(first, 0), min(last, info.frame_count - 1)
    clip = _open(info.path, max_side)
    indices, times, frames = [], [], []
    try:
        for index in range(first, last + 1):
            time = index / info.fps
            indices.append(index)
            times.append(time)
            frames.append(np.ascontiguousarray(clip.get_frame(time)[..., :3]).astype(np.uint8))
    finally:
        clip.close()
    return SampledFrames(indices, times, frames)


def _open(path: Path, max_side: int):
    from moviepy import VideoFileClip

    try:
        clip = VideoFileClip(str(path), audio=True)
    except (OSError, KeyError, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path.name} is not a video we can read ({_first_line(exc)})") from None
    width, height = clip.size
    if max(width, height) > max_side:
        clip.close()
        scale = max_side / max(width, height)
        target = (int(round(height * scale / 2) * 2), int(round(width * scale / 2) * 2))
        clip = VideoFileClip(str(path), audio=True, target_resolution=target)
    if width * height > 8192 * 8192:
        clip.close()
        raise InputTooLargeError(f"{path.name} has {width}x{height} frames, too large to decode")
    return clip


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
