"""Reading frames from a video file with moviepy (the ffmpeg binary of imageio-ffmpeg).

ffmpeg applies rotation metadata itself, so portrait phone clips come out upright; the rotation is read
here from the stream's display matrix, because moviepy 2.1 misses the "Display Matrix:" lines of newer
ffmpeg (such as the bundled 9.0) and would read the upright frames with the stored, sideways size.
Frames larger than ``max_side`` are scaled down by ffmpeg while decoding. ``sample_frames`` walks the
whole clip once at its native rate and keeps every k-th frame (with its index in the original frame
sequence); ``frames_between`` decodes a short window at the full rate, for refining the peak frame; both read
the file the way ``probe`` found (size, frame rate), without its audio.
ffmpeg hands a variable-frame-rate file to moviepy as a constant-rate stream at its "tbr" rate
(repeating or dropping frames by their timestamps), so frames are counted at that rate, not at the
average "fps", and a note says so; ``peak_time`` is then right to within one of the file's own frame
gaps.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

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
    fps_source: str = "fps"  # how moviepy must count frames ("tbr" for variable-rate files), found by probe


@dataclass
class SampledFrames:
    indices: list[int]  # positions in the original frame sequence (0-based)
    times: list[float]  # seconds
    frames: list[np.ndarray]  # HxWx3 uint8 RGB


@contextmanager
def with_declared_duration(path: str | Path) -> Iterator[Path]:
    """``path`` itself, or, for a streamed recording that declares no duration (a browser's
    MediaRecorder webm, such as the app's webcam recordings: "Duration: N/A"), a stream copy of it
    remuxed into a temporary Matroska file that does declare it, removed on exit. moviepy cannot open
    a video without a duration; the copy takes a fraction of a second (no re-encoding)."""
    from moviepy.config import FFMPEG_BINARY

    path = Path(path)
    if not path.is_file() or "Duration: N/A" not in _ffmpeg_header(FFMPEG_BINARY, path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="emolens-remux-") as folder:
        copy = Path(folder) / f"{path.stem}.mkv"
        done = subprocess.run([FFMPEG_BINARY, "-nostdin", "-v", "error", "-y", "-i", str(path), "-map", "0",
                               "-c", "copy", str(copy)], capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not copy.is_file():
            reason = (done.stderr.strip().splitlines() or ["ffmpeg failed"])[-1][:200]
            raise InvalidInputError(f"{path.name} is a streamed recording that could not be read ({reason})")
        yield copy


def _ffmpeg_header(ffmpeg: str, path: Path) -> str:
    """What ``ffmpeg -i`` says about the file (it exits with an error: no output file is given)."""
    try:
        return subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                              text=True, errors="replace", timeout=60).stderr
    except subprocess.TimeoutExpired:
        return ""


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
        if abs(clip.average_fps - fps) > _RATE_TOLERANCE * fps:
            notes.append(f"variable frame rate ({clip.average_fps:g} fps on average): frames were read at a constant "
                         f"{fps:g} fps by their timestamps, so frame indices count at {fps:g} fps")
        if getattr(clip.reader, "infos", {}).get("video_found") is False:
            raise InvalidInputError(f"{path.name} holds no video stream")
        size = tuple(int(v) for v in clip.size)
        info = VideoInfo(path, fps, duration, analysed, size, int(round(analysed * fps)), clip.audio is not None,
                         notes, clip.fps_source)
        return info
    finally:
        clip.close()


def sample_frames(info: VideoInfo, sample_fps: float) -> SampledFrames:
    """Frames every ``k = round(fps / sample_fps)`` original frames over the analysed part, with their
    original indices. ffmpeg decodes every frame; only the kept ones are converted to arrays."""
    step = max(1, int(round(info.fps / sample_fps)))
    indices, times, frames = [], [], []
    clip = _reopen(info)
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


def frames_between(info: VideoInfo, first: int, last: int) -> SampledFrames:
    """All frames with original indices in [first, last] at the full rate."""
    first, last = max(first, 0), min(last, info.frame_count - 1)
    clip = _reopen(info)
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


# moviepy's fps differs from ffmpeg's tbr beyond this (relative) margin: the file is variable-rate.
_RATE_TOLERANCE = 0.002


def _open(path: Path, max_side: int):
    """The clip with upright frames at most ``max_side`` large, counted at the rate ffmpeg delivers them.
    Sets ``clip.rotation`` (degrees, from the display matrix) and ``clip.average_fps``."""
    from moviepy import VideoFileClip
    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    try:
        clip = VideoFileClip(str(path), audio=True)
        tbr = float(ffmpeg_parse_infos(str(path), fps_source="tbr").get("video_fps") or 0.0)
    # TypeError: moviepy unpacks a size it never found (a file with no decodable video stream)
    except (OSError, KeyError, IndexError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path.name} is not a video we can read ({_first_line(exc)})") from None
    average = float(clip.fps or 0.0)
    rotation = _rotation(clip.reader.infos)
    width, height = clip.reader.infos.get("video_size") or clip.size  # as stored
    if rotation in (90, 270):
        width, height = height, width
    if width * height > 8192 * 8192:
        clip.close()
        raise InputTooLargeError(f"{path.name} has {width}x{height} frames, too large to decode")
    size = (width, height)
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
        size = (int(round(width * scale / 2) * 2), int(round(height * scale / 2) * 2))
    # ffmpeg outputs at the stream's guessed rate: tbr, unless tbr is implausibly high (libavformat's
    # av_guess_frame_rate then takes the average)
    variable = tbr > 0 and abs(tbr - average) > _RATE_TOLERANCE * tbr and not (tbr > 210 and average < 70)
    if tuple(clip.size) != size or variable:
        clip.close()
        clip = VideoFileClip(str(path), audio=True, target_resolution=size, fps_source="tbr" if variable else "fps")
    clip.rotation, clip.average_fps = rotation, average
    clip.fps_source = "tbr" if variable else "fps"
    return clip


def _reopen(info: VideoInfo):
    """The clip again, for its frames only, read the way ``probe`` found (upright size, frame rate):
    no second look at the metadata, no audio reader."""
    from moviepy import VideoFileClip

    try:
        return VideoFileClip(str(info.path), audio=False, target_resolution=info.size, fps_source=info.fps_source)
    except (OSError, KeyError, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{info.path.name} is not a video we can read ({_first_line(exc)})") from None


def _rotation(infos: dict) -> int:
    """Clockwise degrees ffmpeg turns the default video stream's frames to show them (0, 90, 180, 270),
    from its "Display Matrix" / "displaymatrix" side data or an old ``rotate`` tag."""
    streams = [stream for source in infos.get("inputs", []) for stream in source.get("streams", [])
               if stream.get("stream_type") == "video"]
    wanted = (infos.get("default_video_input_number"), infos.get("default_video_stream_number"))
    streams = [s for s in streams if (s.get("input_number"), s.get("stream_number")) == wanted] or streams
    for key, value in (streams[0].get("metadata", {}) if streams else {}).items():
        key = key.replace(" ", "").lower()
        if key not in ("displaymatrix", "rotate"):
            continue
        if isinstance(value, (int, float)):  # moviepy's own reading, already clockwise
            return int(round(value)) % 360
        try:
            degrees = float(value.split("rotation of")[-1].split()[0])
        except (ValueError, IndexError):
            continue
        # the display matrix gives the counter-clockwise turn, the rotate tag the clockwise one
        return int(round(-degrees if key == "displaymatrix" else degrees)) % 360
    return 0


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
