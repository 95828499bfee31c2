"""Reading a video's frames with the ffmpeg binary moviepy uses (imageio-ffmpeg's), one frame at a time.

``probe`` reads the header (``ffmpeg -i``, parsed by moviepy's parser); ``read_frames`` streams frames
out of one ffmpeg process, at most ``max_side`` large (ffmpeg scales them while decoding), so a caller
holds only the frames it keeps: ``analyze_visual`` keeps none of the sampled frames, only what it
measured on them. ``frames_between`` decodes a short window at the full rate, for refining the peak
frame; ``sample_evenly`` a few frames spread over the clip, for the models that are shown a video as
images (``backends.hf_media``). Every ffmpeg run opens the upload through ``ffmpeg_input`` (local file
only, no playlists). This is the project's one frame reader.

ffmpeg applies rotation metadata itself, so portrait phone clips come out upright; the rotation is read
here from the stream's display matrix, because moviepy's parser misses the "Display Matrix:" lines of
newer ffmpeg (such as the bundled 9.0). ffmpeg hands a variable-frame-rate file over as a constant-rate
stream at its "tbr" rate (repeating or dropping frames by their timestamps), so frames are counted at
that rate, not at the average "fps", and a note says so; ``peak_time`` is then right to within one of
the file's own frame gaps. The frame command is the one moviepy 2.2's reader runs (bicubic scaling to
the probed size, the same seeking), so frames are those earlier versions read through moviepy.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputTooLargeError, InvalidInputError
from ..ffmpeg_input import ffmpeg_binary, ffmpeg_reason, input_args, parse_header, read_header

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
WHAT = "a video we can read"  # ends the messages refusing a file
# A file whose frames end this much before its declared duration gets a note (a few frames less are
# normal: the container's duration covers the longer audio track, codec delays).
TRUNCATION_TOLERANCE_S = 0.5
# moviepy's reader decodes up to this many frames to move forward and seeks beyond; kept, so a window
# decoded here holds the frames it held through moviepy.
_SEEK_AFTER_FRAMES = 100
# The average fps differs from ffmpeg's tbr beyond this (relative) margin: the file is variable-rate.
_RATE_TOLERANCE = 0.002


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
    """A few decoded frames (a window around the peak), with where they are in the video."""

    indices: list[int]  # positions in the original frame sequence (0-based)
    times: list[float]  # seconds
    frames: list[np.ndarray]  # HxWx3 uint8 RGB


@contextmanager
def with_declared_duration(path: str | Path) -> Iterator[Path]:
    """``path`` itself, or, for a streamed recording that declares no duration (a browser's
    MediaRecorder webm, such as the app's webcam recordings: "Duration: N/A"), a stream copy of it
    remuxed into a temporary Matroska file that does declare it, removed on exit. The frame count
    comes from the declared duration; the copy takes a fraction of a second (no re-encoding)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0 or "Duration: N/A" not in read_header(path, WHAT):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="emolens-remux-") as folder:
        copy = Path(folder) / f"{path.stem}.mkv"
        done = subprocess.run([ffmpeg_binary(), "-nostdin", "-v", "error", "-y", *input_args(path, WHAT),
                               "-map", "0", "-c", "copy", str(copy)], capture_output=True, text=True,
                              errors="replace", timeout=300)
        if done.returncode != 0 or not copy.is_file():
            reason = ffmpeg_reason(done.stderr, path)
            raise InvalidInputError(f"{path.name} is a streamed recording that could not be read ({reason})")
        yield copy


def probe(path: str | Path, *, max_seconds: float, max_side: int = 960) -> VideoInfo:
    """Read ``path``'s header; refuse non-videos with ``InvalidInputError``."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"no such file: {path.name}")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{path.name} is empty (0 bytes)")
    header = read_header(path, WHAT)
    try:
        infos = parse_header(header, path)
        tbr = float(parse_header(header, path, fps_source="tbr").get("video_fps") or 0.0)
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise InvalidInputError(f"{path.name} is not a video we can read ({ffmpeg_reason(str(exc), path)})") from None
    if not infos.get("video_found"):
        raise InvalidInputError(f"{path.name} holds no video stream")
    average = float(infos.get("video_fps") or 0.0)
    duration = float(infos.get("video_duration") or 0.0)
    # ffmpeg outputs at the stream's guessed rate: tbr, unless tbr is implausibly high (libavformat's
    # av_guess_frame_rate then takes the average)
    variable = tbr > 0 and abs(tbr - average) > _RATE_TOLERANCE * tbr and not (tbr > 210 and average < 70)
    fps = tbr if variable else average
    if fps <= 0 or duration <= 0 or not math.isfinite(duration):
        raise InvalidInputError(f"{path.name} has no readable video frames (duration {duration}, fps {fps})")
    rotation = _rotation(infos)
    size = _decoded_size(path, infos.get("video_size") or (1, 1), rotation, max_side)
    notes = []
    analysed = duration
    if duration > max_seconds:
        analysed = max_seconds
        notes.append(f"the video is {duration:.0f} s long: only the first {max_seconds:g} s were analysed")
    if rotation:
        notes.append(f"rotated upright from its {rotation:.0f} degree rotation metadata")
    if variable:
        notes.append(f"variable frame rate ({average:g} fps on average): frames were read at a constant "
                     f"{fps:g} fps by their timestamps, so frame indices count at {fps:g} fps")
    return VideoInfo(path, fps, duration, analysed, size, int(round(analysed * fps)),
                     bool(infos.get("audio_found")), notes)


def read_frames(info: VideoInfo, first: int = 0, last: int | None = None,
                step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) for the frames ``first``, ``first + step``, ... up to ``last`` (default: the last
    analysed frame), decoded in one pass; each frame is a new HxWx3 uint8 RGB array. ``index`` counts
    frames at ``info.fps`` from the start of the file. When the file ends more than
    ``TRUNCATION_TOLERANCE_S`` early, a note in ``info.notes`` says so; when no frame decodes at all,
    ``InvalidInputError``."""
    last = info.frame_count - 1 if last is None else min(last, info.frame_count - 1)
    first = max(first, 0)
    if last < first:
        return
    width, height = info.size
    frame_bytes = width * height * 3
    start = first if first > _SEEK_AFTER_FRAMES else 0
    seek_in, seek_out = _seek(start, info.fps)
    command = [ffmpeg_binary(), "-nostdin", *seek_in, *input_args(info.path, WHAT), *seek_out, "-loglevel", "error",
               "-an", "-sn", "-dn", "-f", "image2pipe", "-vf", f"scale={width}:{height}", "-sws_flags", "bicubic",
               "-pix_fmt", "rgb24", "-vcodec", "rawvideo", "-"]
    decoded = 0
    with tempfile.TemporaryFile() as errors:  # not a pipe: a chatty ffmpeg must not block on a full one
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors,
                                   bufsize=frame_bytes + 100)
        try:
            skipped = bytearray(frame_bytes)
            for index in range(start, last + 1):
                keep = index >= first and (index - first) % step == 0
                frame = np.empty((height, width, 3), dtype=np.uint8) if keep else skipped
                if process.stdout.readinto(memoryview(frame).cast("B")) != frame_bytes:
                    break
                decoded += 1
                if keep:
                    yield index, frame
            else:
                return
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.wait()
        errors.seek(0)
        reason = ffmpeg_reason(errors.read().decode("utf-8", errors="replace"), info.path)
    if decoded == 0:
        raise InvalidInputError(f"{info.path.name} has no decodable frames ({reason})")
    ended = (start + decoded) / info.fps
    if first == 0 and (last + 1) / info.fps - ended > TRUNCATION_TOLERANCE_S:
        info.notes.append(f"decoding stopped early at {ended:.1f} s (the file may be truncated)")


def frames_between(info: VideoInfo, first: int, last: int) -> SampledFrames:
    """All frames with original indices in [first, last] at the full rate."""
    window = SampledFrames([], [], [])
    with closing(read_frames(info, first, last)) as frames:
        for index, frame in frames:
            window.indices.append(index)
            window.times.append(index / info.fps)
            window.frames.append(frame)
    return window


def sample_evenly(info: VideoInfo, count: int) -> SampledFrames:
    """``count`` frames spread over the analysed part: the frame shown at the middle of each of ``count``
    equal slices of it (fewer frames when it holds fewer). Each is decoded on its own, seeking to it as
    ``frames_between`` does, so a long clip is not decoded whole for a few frames. A frame past the end
    of a truncated file is left out; ``InvalidInputError`` when none decodes."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    indices = sorted({int((slot + 0.5) * info.frame_count / count) for slot in range(count)})
    sampled, failure = SampledFrames([], [], []), None
    for index in indices:
        try:
            window = frames_between(info, index, index)
        except InvalidInputError as exc:  # nothing decodes from here on (a truncated file)
            failure = exc
            break
        sampled.indices += window.indices
        sampled.times += window.times
        sampled.frames += window.frames
    if not sampled.frames:
        raise failure or InvalidInputError(f"{info.path.name} has no decodable frames")
    return sampled


def _seek(start: int, fps: float) -> tuple[list[str], list[str]]:
    """ffmpeg's options (before and after the input) to start at frame ``start``, as moviepy's reader
    seeks: fast to a second before the frame, then decoding up to it (less a hair, so the time does not
    round past it)."""
    if start == 0:
        return [], []
    time = start * (1 / fps) - 0.00001
    offset = min(1.0, time)
    return ["-ss", f"{time - offset:.06f}"], ["-ss", f"{offset:.06f}"]


def _decoded_size(path: Path, stored: tuple[int, int], rotation: int, max_side: int) -> tuple[int, int]:
    """(width, height) of the upright frames, at most ``max_side`` large (even sides when scaled)."""
    width, height = (int(v) for v in stored)
    if rotation in (90, 270):
        width, height = height, width
    if width * height > 8192 * 8192:
        raise InputTooLargeError(f"{path.name} has {width}x{height} frames, too large to decode")
    if max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return int(round(width * scale / 2) * 2), int(round(height * scale / 2) * 2)


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
