"""What Emotion-LLaMA sees of a clip: the peak frame, the main face's crops over its track, the audio.

The peak frame and the face track come from the MERR pipeline (``video.visual.analyze_visual``: the
main speaker's face, the peak by MERR's action-unit rule, refined to the exact frame); the crops are cut
from the track's frames, read again with the one frame reader (``video.decode``), and the audio is the
one decoder's 16 kHz mono track (``audio.decode``). A clip without a face is seen whole: the middle
frame stands for the peak and evenly spread frames for the face sequence (a note says so); a clip
without sound gives one second of silence, which still yields an audio token (HuBERT's output on
silence is not zero), and a note.

Results are kept per process for a few clips (keyed by the file's content hash and the settings that
shape them), so the video tab's two questions (the scored label, the reason) read the clip once; and the
MERR analysis the video task has just made of the same file is reused (``video/recent.py``) instead of
being run a second time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...settings import Settings

FACE_MARGIN = 0.25  # crop this share of the face box's size around it on every side
SILENCE_SECONDS = 1.0
KEPT_CLIPS = 4


@dataclass
class ClipViews:
    peak_frame: np.ndarray  # HxWx3 uint8 RGB, the whole frame
    face_frames: list[np.ndarray]  # square RGB crops of the main face, in time order
    audio: np.ndarray  # float32 mono at 16 kHz
    peak_index: int | None = None
    notes: list[str] = field(default_factory=list)


_KEPT: OrderedDict = OrderedDict()
_LOCK = threading.Lock()


def clip_views(path: str | Path, settings: Settings | None = None, max_audio_seconds: float = 30.0) -> ClipViews:
    from ...run_records import file_sha256

    settings = settings or Settings()
    path = Path(path)
    key = (file_sha256(path), settings.min_face_score, settings.max_faces, settings.video_sample_fps,
           settings.max_video_seconds, settings.video_max_side, max_audio_seconds)
    with _LOCK:
        if key in _KEPT:
            _KEPT.move_to_end(key)
            return _KEPT[key]
    views = read_clip_views(path, settings, max_audio_seconds)
    with _LOCK:
        _KEPT[key] = views
        while len(_KEPT) > KEPT_CLIPS:
            _KEPT.popitem(last=False)
    return views


def read_clip_views(path: Path, settings: Settings, max_audio_seconds: float = 30.0) -> ClipViews:
    from ...audio.decode import load_audio
    from ...cues.perception import get_perceiver
    from ...video.decode import probe, read_frames, sample_evenly, with_declared_duration
    from ...video import recent as recent_visual
    from ...video.visual import analyze_visual

    notes: list[str] = []
    with with_declared_duration(path) as readable:
        visual = recent_visual.recent(readable, settings) or analyze_visual(
            readable, get_perceiver(settings.min_face_score, settings.max_faces), sample_fps=settings.video_sample_fps,
            max_seconds=settings.max_video_seconds, max_side=settings.video_max_side)
        if visual.has_face and visual.track_boxes:
            boxes = dict(zip(visual.track_indices, visual.track_boxes))
            faces = []
            with closing(read_frames(visual.info, min(boxes), max(boxes))) as frames:
                for index, frame in frames:
                    if index in boxes:
                        faces.append(face_crop(frame, boxes[index]))
            peak = visual.peak_frame
        else:
            info = probe(readable, max_seconds=settings.max_video_seconds, max_side=settings.video_max_side)
            spread = sample_evenly(info, 16).frames
            faces, peak = spread, spread[len(spread) // 2]
            notes.append("no face was found: Emotion-LLaMA saw the whole frames instead of a face sequence")
        track = load_audio(readable, max_seconds=min(settings.max_video_seconds, max_audio_seconds))
    if track is None or track.samples.size == 0:
        audio = np.zeros(int(16000 * SILENCE_SECONDS), dtype=np.float32)
        notes.append("the clip has no sound: Emotion-LLaMA heard one second of silence")
    else:
        audio = track.samples.astype(np.float32)
    return ClipViews(peak, faces, audio, visual.peak_index, notes)


def face_crop(frame: np.ndarray, box) -> np.ndarray:
    """A square crop around ``box`` (x0, y0, x1, y1) with ``FACE_MARGIN``, clipped to the frame."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * FACE_MARGIN)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    height, width = frame.shape[:2]
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    return np.ascontiguousarray(frame[top:bottom, left:right])
