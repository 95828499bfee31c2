"""The last few visual analyses of this process, so a second reader of a clip in the same request does
not analyse it again: the video task analyses the clip (MERR's face track and peak frame), then the
Emotion-LLaMA model's views of that clip (``models/emotion_llama/clip_views.py``) reuse the analysis.

Keyed by the file (resolved path, size, modification time) and the settings that shape the analysis, so
a changed or different file is never answered from here. The video task always analyses afresh (its
timings are its own) and only stores what it found.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from ..settings import Settings
from .visual import VisualAnalysis

KEPT_ANALYSES = 2

_RECENT: OrderedDict[tuple, VisualAnalysis] = OrderedDict()
_LOCK = threading.Lock()


def _key(path: str | Path, settings: Settings) -> tuple:
    path = Path(path).resolve()
    status = path.stat()
    return (str(path), status.st_size, status.st_mtime_ns, settings.min_face_score, settings.max_faces,
            settings.video_sample_fps, settings.max_video_seconds, settings.video_max_side)


def remember(path: str | Path, settings: Settings, analysis: VisualAnalysis) -> None:
    key = _key(path, settings)
    with _LOCK:
        _RECENT[key] = analysis
        _RECENT.move_to_end(key)
        while len(_RECENT) > KEPT_ANALYSES:
            _RECENT.popitem(last=False)


def recent(path: str | Path, settings: Settings) -> VisualAnalysis | None:
    """The analysis stored for this very file and settings, or None."""
    key = _key(path, settings)
    with _LOCK:
        return _RECENT.get(key)
