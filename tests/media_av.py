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


def streamed_recording(video_path: str | Path, out_path: str | Path) -> Path:
    """A video + audio webm (VP8, Opus) written to a pipe: like a browser's MediaRecorder recording, it
    declares no duration ("Duration: N/A")."""
    from moviepy.config import FFMPEG_BINARY

    with open(out_path, "wb") as sink:
        subprocess.run(
            [FFMPEG_BINARY, "-nostdin", "-v", "error", "-y", "-i", str(video_path), "-c:v", "libvpx",
             "-deadline", "realtime", "-b:v", "1M", "-c:a", "libopus", "-f", "webm", "-"],
            stdout=sink, check=True, timeout=120,
        )
    return Path(out_path)


def y4m_video(frames: list[np.ndarray], out_path: str | Path, fps: int = 30) -> Path:
    """Write RGB ``frames`` (all the same size, even width and height) as an uncompressed 4:2:0 .y4m file,
    the format Chromium's ``--use-file-for-fake-video-capture`` plays (looping) as a fake webcam."""
    from moviepy.config import FFMPEG_BINARY

    height, width = frames[0].shape[:2]
    raw = b"".join(np.ascontiguousarray(frame[..., :3], dtype=np.uint8).tobytes() for frame in frames)
    subprocess.run(
        [FFMPEG_BINARY, "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe",
         str(out_path)],
        input=raw, check=True, capture_output=True, timeout=120,
    )
    return Path(out_path)


def _ffmpeg(*args: str) -> None:
    from moviepy.config import FFMPEG_BINARY

    run = subprocess.run([FFMPEG_BINARY, "-nostdin", "-v", "error", "-y", *args], capture_output=True, text=True,
                         timeout=60)
    if run.returncode:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {run.stderr.strip()}")


def portrait_phone_clip(source: str | Path, out_path: str | Path,
                        crop: tuple[int, int, int, int] = (288, 360, 144, 0)) -> Path:
    """``source`` as a portrait phone clip: the upright picture is the ``crop`` (width, height, x, y) of
    ``source``'s frames, stored turned 90 degrees counter-clockwise (landscape, as a phone's sensor
    writes it) with display-matrix metadata telling players to turn it 90 degrees clockwise (ffmpeg
    lists it as "Display Matrix: rotation of -90.00 degrees"; older files used the tag ``rotate=90``).
    The audio is copied."""
    out_path = Path(out_path)
    sideways = out_path.with_name(out_path.stem + "_sideways.mp4")
    width, height, x, y = crop
    _ffmpeg("-i", str(source), "-vf", f"crop={width}:{height}:{x}:{y},transpose=cclock", "-c:v", "libx264",
            "-preset", "ultrafast", "-c:a", "copy", str(sideways))
    # -display_rotation (counter-clockwise degrees) is an input option; -c copy keeps the stored pixels.
    _ffmpeg("-display_rotation:v:0", "-90", "-i", str(sideways), "-c", "copy", str(out_path))
    sideways.unlink()
    return out_path


# The variable-frame-rate clip: frames [SLOW_FRAMES) are 1/SLOW_FPS s apart (a phone lowering its frame
# rate in dim light), the others 1/fps s apart.
SLOW_FRAMES, SLOW_FPS = (40, 80), 15


def vfr_frame_time(index: int, fps: float = 30, slow: tuple[int, int] = SLOW_FRAMES,
                   slow_fps: float = SLOW_FPS) -> float:
    """The presentation time (seconds) of frame ``index`` in ``variable_rate_clip``'s output."""
    first, last = slow
    return (min(index, first) / fps + (min(max(index, first), last) - first) / slow_fps
            + max(index - last, 0) / fps)


def variable_rate_clip(source: str | Path, out_path: str | Path, fps: float = 30, slow: tuple[int, int] = SLOW_FRAMES,
                       slow_fps: float = SLOW_FPS) -> Path:
    """Every frame of the constant-``fps`` video ``source``, re-timed by ``vfr_frame_time`` (frame n
    of the source is frame n of the output, shown at ``vfr_frame_time(n)``), without audio."""
    first, last = slow
    time = f"min(N,{first})/{fps}+(min(max(N,{first}),{last})-{first})/{slow_fps}+max(N-{last},0)/{fps}"
    _ffmpeg("-i", str(source), "-vf", f"setpts='({time})/TB'", "-fps_mode", "vfr", "-c:v", "libx264",
            "-preset", "ultrafast", "-an", str(out_path))
    return Path(out_path)
