"""Human-action cue from body pose: mediapipe Pose (bundled full model) + documented geometric rules.

The landmarks come from a real model; the action words come from the rules below, applied to them,
and the result says so. mediapipe's Pose tracks one person (the most prominent).

Rules (y grows downwards; a landmark counts when its visibility >= 0.5; "shoulder width" is the
distance between the shoulders and normalises every distance):
- ``arms raised``: both wrists above the nose;
- ``one arm raised``: one wrist above its shoulder;
- ``hands near the face``: a wrist within 0.8 shoulder widths of the nose;
- ``arms crossed``: each wrist nearer the opposite shoulder than its own, both below the shoulders;
- ``sitting or crouching``: a knee less than 0.6 shoulder widths below its hip;
- ``standing``: hips, knees and ankles visible, stacked vertically, knees well below the hips;
- otherwise ``no distinctive posture``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

_VISIBLE = 0.5
# mediapipe Pose landmark indices
NOSE, L_SHOULDER, R_SHOULDER, L_WRIST, R_WRIST = 0, 11, 12, 15, 16
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 23, 24, 25, 26, 27, 28


@dataclass
class PoseCue:
    person_detected: bool
    actions: list[str] = field(default_factory=list)
    landmarks: np.ndarray | None = field(default=None, repr=False)  # (33, 4): x, y (pixels), z, visibility

    @property
    def summary(self) -> str:
        if not self.person_detected:
            return "no person pose found"
        return ", ".join(self.actions) if self.actions else "no distinctive posture"


def actions_from_landmarks(points: np.ndarray) -> list[str]:
    """Apply the module's rules to (33, 4) landmarks (x, y, z, visibility)."""

    def visible(*indices: int) -> bool:
        return all(points[i, 3] >= _VISIBLE for i in indices)

    def xy(i: int) -> np.ndarray:
        return points[i, :2]

    if not visible(L_SHOULDER, R_SHOULDER):
        return []
    shoulder_width = float(np.linalg.norm(xy(L_SHOULDER) - xy(R_SHOULDER))) or 1.0
    actions: list[str] = []
    wrists = [(L_WRIST, L_SHOULDER, R_SHOULDER), (R_WRIST, R_SHOULDER, L_SHOULDER)]
    raised = [w for w, own, _ in wrists if visible(w) and xy(w)[1] < xy(own)[1]]
    if visible(NOSE, L_WRIST, R_WRIST) and xy(L_WRIST)[1] < xy(NOSE)[1] and xy(R_WRIST)[1] < xy(NOSE)[1]:
        actions.append("arms raised")
    elif raised:
        actions.append("one arm raised")
    if visible(NOSE) and any(
        visible(w) and np.linalg.norm(xy(w) - xy(NOSE)) < 0.8 * shoulder_width for w, _, _ in wrists
    ):
        actions.append("hands near the face")
    if all(visible(w) for w, _, _ in wrists) and all(
        np.linalg.norm(xy(w) - xy(other)) < np.linalg.norm(xy(w) - xy(own)) and xy(w)[1] > xy(own)[1]
        for w, own, other in wrists
    ):
        actions.append("arms crossed")
    legs = [(L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)]
    if any(visible(h, k) and xy(k)[1] - xy(h)[1] < 0.6 * shoulder_width for h, k, _ in legs):
        actions.append("sitting or crouching")
    elif all(visible(h, k, a) for h, k, a in legs) and all(
        xy(k)[1] - xy(h)[1] > 0.8 * shoulder_width and xy(a)[1] > xy(k)[1] for h, k, a in legs
    ):
        actions.append("standing")
    return actions


class PoseEstimator:
    def __init__(self):
        self._pose = None
        self._lock = threading.Lock()

    def load(self) -> "PoseEstimator":
        with self._lock:
            if self._pose is None:
                from mediapipe.python.solutions import pose

                # model_complexity 1 is the model bundled in the wheel (0 and 2 would be downloaded).
                self._pose = pose.Pose(static_image_mode=True, model_complexity=1, min_detection_confidence=0.5)
        return self

    def estimate(self, rgb: np.ndarray) -> PoseCue:
        self.load()
        height, width = rgb.shape[:2]
        with self._lock:
            result = self._pose.process(np.ascontiguousarray(rgb))
        if not result.pose_landmarks:
            return PoseCue(False)
        points = np.array(
            [(p.x * width, p.y * height, p.z * width, p.visibility) for p in result.pose_landmarks.landmark],
            dtype=np.float32,
        )
        return PoseCue(True, actions_from_landmarks(points), points)
