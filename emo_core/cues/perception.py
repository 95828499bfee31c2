"""Everything the offline models measure in one image: EmoVIT's attribute list, with timings.

``perceive_file(path)`` is memoised by the file's content hash, so the task (for the visuals) and
the offline backend (for the label) share one measurement. Models load once per process, lazily.
``scene=False`` measures only what the offline label rests on (faces, expressions, brightness,
colorfulness) and skips the object and pose models, for label-only work such as evaluation runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..timing import Laps
from . import lowlevel
from .expression import ExpressionClassifier
from .faces import Face, FaceAnalyzer, aligned_crop
from .objects import ObjectClassifier, short_name
from .pose import PoseCue, PoseEstimator

# EmoVIT's attributes that no offline model measures; listed in every result so nobody mistakes
# their absence for a measurement.
UNMEASURED = {
    "scene type": "no scene classifier ships in a registry package (Places365 etc. need a hub download)",
}


@dataclass
class FaceReading:
    face: Face
    expression_probs: dict[str, float]

    @property
    def expression(self) -> str:
        return max(self.expression_probs, key=self.expression_probs.get)

    @property
    def confidence(self) -> float:
        return self.expression_probs[self.expression]


@dataclass
class ImagePerception:
    width: int
    height: int
    brightness: float
    colorfulness: float
    faces: list[FaceReading]
    objects: list[tuple[str, float]]
    pose: PoseCue | None  # None when the scene was not measured (``scene=False``)
    timings: dict[str, float] = field(default_factory=dict)
    from_cache: bool = False

    def attributes(self) -> dict[str, object]:
        """EmoVIT's attribute list as measured values (plus what was not measured)."""
        return {
            "brightness": round(self.brightness, 3),
            "brightness_level": lowlevel.describe_brightness(self.brightness),
            "colorfulness": round(self.colorfulness, 1),
            "colorfulness_level": lowlevel.describe_colorfulness(self.colorfulness),
            "face_count": len(self.faces),
            "facial_expressions": [
                {"expression": r.expression, "confidence": round(r.confidence, 3)} for r in self.faces
            ],
            "object_classes": [{"class": short_name(n), "probability": round(p, 3)} for n, p in self.objects],
            "human_action": self.pose.summary,
            "not_measured": dict(UNMEASURED),
        }


class Perceiver:
    """Holds the offline perception models (face detector + landmarks, expression, objects, pose)."""

    def __init__(self, min_face_score: float = 0.5, max_faces: int = 20, cache_size: int = 32):
        self.faces = FaceAnalyzer(min_face_score, max_faces)
        self.expressions = ExpressionClassifier()
        self.objects = ObjectClassifier()
        self.pose = PoseEstimator()
        self._cache: OrderedDict[str, ImagePerception] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def load(self) -> "Perceiver":
        self.faces.load()
        self.expressions.load()
        self.objects.load()
        self.pose.load()
        return self

    def warm_up(self) -> "Perceiver":
        """Load every model and run each once (mediapipe's first inference is ~1 s slower)."""
        self.load()
        rgb = np.full((256, 256, 3), 128, dtype=np.uint8)
        self.perceive(rgb)
        self.expressions.predict(np.zeros((1, 64, 64), dtype=np.uint8))
        return self

    def perceive(self, rgb: np.ndarray, scene: bool = True) -> ImagePerception:
        import cv2

        timings: dict[str, float] = {}
        lap = Laps(timings)

        small = lowlevel.downscaled(rgb)
        bright, colour = lowlevel.brightness(small), lowlevel.colorfulness(small)
        lap("low_level")
        faces = self.faces.detect(rgb)
        lap("faces")
        readings: list[FaceReading] = []
        if faces:
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            crops = np.stack([aligned_crop(gray, face) for face in faces])
            probabilities = self.expressions.predict(crops)
            readings = [
                FaceReading(face, dict(zip(self.expressions.labels, map(float, row))))
                for face, row in zip(faces, probabilities)
            ]
        lap("expressions")
        objects, pose = [], None
        if scene:
            objects = self.objects.top_classes(small, k=5)
            lap("objects")
            pose = self.pose.estimate(rgb)
            lap("pose")
        height, width = rgb.shape[:2]
        return ImagePerception(width, height, bright, colour, readings, objects, pose, timings)

    def perceive_file(self, path: str | Path, scene: bool = True) -> ImagePerception:
        """Perception of the image file at ``path``, memoised by content hash (a full measurement also
        answers a later ``scene=False`` request)."""
        from PIL import Image

        data = Path(path).read_bytes()
        digest = hashlib.sha1(data).hexdigest()
        with self._cache_lock:
            for key in ((digest, True),) if scene else ((digest, True), (digest, False)):
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return dataclasses.replace(self._cache[key], from_cache=True)
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        result = self.perceive(rgb, scene)
        with self._cache_lock:
            self._cache[(digest, scene)] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result


_PERCEIVERS: dict[tuple[float, int], Perceiver] = {}
_PERCEIVERS_LOCK = threading.Lock()


def get_perceiver(min_face_score: float = 0.5, max_faces: int = 20) -> Perceiver:
    """The process-wide perceiver for these options (models load on first use)."""
    key = (float(min_face_score), int(max_faces))
    with _PERCEIVERS_LOCK:
        if key not in _PERCEIVERS:
            _PERCEIVERS[key] = Perceiver(*key)
        return _PERCEIVERS[key]
