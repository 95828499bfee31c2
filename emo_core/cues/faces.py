"""Face detection, landmarks and eye-aligned face crops, with mediapipe's bundled models.

Detection uses the full-range BlazeFace model (``model_selection=1``), which finds small faces in
group photos that FaceMesh's own short-range detector misses; landmarks (478 points, FaceMesh with
iris refinement) are then computed per face on a crop around each detection. Each face crop is
rotated so the eyes are level and scaled so the eye distance is a fixed fraction of the crop, the
framing FER2013-style classifiers expect.

mediapipe graphs are not thread-safe, so each model is used under its own lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

# FaceMesh indices of the eye corners (subject's right eye: 33/133, left eye: 362/263).
_RIGHT_EYE = (33, 133)
_LEFT_EYE = (362, 263)
_CROP_MARGIN = 0.6  # landmarks are run on the detection box grown by this fraction on each side
TILE = 640  # side of the detection windows on large images
NMS_IOU = 0.3
# A detection below this score is kept only if FaceMesh finds a face's landmarks on it: on real photos
# this drops a stair railing (0.60) and an ear (0.67) and keeps a face turned down (0.84) that FaceMesh
# misses (docs/offline_models.md, benchmarks/bench_expression_models.py).
SURE_SCORE = 0.8


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels
    score: float
    right_eye: tuple[float, float]  # subject's right eye (left in the image), pixels
    left_eye: tuple[float, float]
    landmarks: np.ndarray | None = field(default=None, repr=False)  # (478, 3) pixels (z relative)

    @property
    def size(self) -> float:
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, y1 - y0))

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, 0) * max(y1 - y0, 0))


class FaceAnalyzer:
    """Detects faces, adds FaceMesh landmarks, and cuts aligned grey crops."""

    def __init__(self, min_score: float = 0.5, max_faces: int = 20):
        self.min_score = min_score
        self.max_faces = max_faces
        self._detector = None
        self._mesh = None
        self._detector_lock = threading.Lock()
        self._mesh_lock = threading.Lock()

    def load(self) -> "FaceAnalyzer":
        with self._detector_lock:
            if self._detector is None:
                self._create()
        return self

    def _create(self) -> None:
        from mediapipe.python.solutions import face_detection, face_mesh

        self._detector = face_detection.FaceDetection(model_selection=1, min_detection_confidence=self.min_score)
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
        )

    def detect(self, rgb: np.ndarray, with_landmarks: bool = True, confirm: bool = True) -> list[Face]:
        """Faces in an HxWx3 uint8 RGB image, largest first.

        With ``confirm`` (and landmarks), a detection scored under ``SURE_SCORE`` is dropped unless
        FaceMesh finds a face on it (see ``confirmed``).

        BlazeFace sees the image at 192x192, so faces under ~8% of a large image's width vanish;
        on images larger than ``TILE * 1.25`` the detector also runs on half-overlapping TILE x TILE
        windows, and duplicate boxes are merged by non-maximum suppression. (On 16 collages of 3-6 real
        ~100-200 px faces at 1920x1280: 1280-px windows found 64% of the faces, 960-px 89%, 640-px
        100% with no false boxes; 480-px windows added false boxes on cut faces.)
        """
        self.load()
        height, width = rgb.shape[:2]
        faces = self._detect_window(rgb, 0, 0)
        if max(height, width) > 1.25 * TILE:
            for y0 in _starts(height, TILE):
                for x0 in _starts(width, TILE):
                    faces += self._detect_window(rgb[y0:y0 + TILE, x0:x0 + TILE], x0, y0)
        faces = _non_max_suppression(faces)
        faces.sort(key=lambda face: face.area, reverse=True)
        faces = faces[: self.max_faces]
        if with_landmarks:
            for face in faces:
                self.add_landmarks(rgb, face)
            if confirm:
                faces = [face for face in faces if self.confirmed(face)]
        return faces

    @staticmethod
    def confirmed(face: Face) -> bool:
        """A face the detector is sure of, or one on which FaceMesh found landmarks."""
        return face.score >= SURE_SCORE or face.landmarks is not None

    def _detect_window(self, rgb: np.ndarray, x_offset: int, y_offset: int) -> list[Face]:
        height, width = rgb.shape[:2]
        with self._detector_lock:
            result = self._detector.process(np.ascontiguousarray(rgb))
        faces: list[Face] = []
        for detection in result.detections or []:
            box = detection.location_data.relative_bounding_box
            x0 = int(round(max(box.xmin, 0.0) * width))
            y0 = int(round(max(box.ymin, 0.0) * height))
            x1 = int(round(min(box.xmin + box.width, 1.0) * width))
            y1 = int(round(min(box.ymin + box.height, 1.0) * height))
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            keypoints = detection.location_data.relative_keypoints
            right_eye = (keypoints[0].x * width + x_offset, keypoints[0].y * height + y_offset)
            left_eye = (keypoints[1].x * width + x_offset, keypoints[1].y * height + y_offset)
            box = (x0 + x_offset, y0 + y_offset, x1 + x_offset, y1 + y_offset)
            faces.append(Face(box, float(detection.score[0]), right_eye, left_eye))
        return faces

    def add_landmarks(self, rgb: np.ndarray, face: Face) -> None:
        """Fill ``face.landmarks`` (and refine its eye centres) with FaceMesh on a crop around it."""
        # FaceMesh projects landmarks correctly only for square inputs: cut a square around the
        # face, padding with black where it leaves the image.
        height, width = rgb.shape[:2]
        x0, y0, x1, y1 = face.box
        side = int(round(face.size * (1 + 2 * _CROP_MARGIN)))
        left, top = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
        crop = np.zeros((side, side, 3), dtype=np.uint8)
        src_x0, src_y0 = max(left, 0), max(top, 0)
        src_x1, src_y1 = min(left + side, width), min(top + side, height)
        crop[src_y0 - top:src_y1 - top, src_x0 - left:src_x1 - left] = rgb[src_y0:src_y1, src_x0:src_x1]
        with self._mesh_lock:
            result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return
        points = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float32)
        points *= side
        points[:, 0] += left
        points[:, 1] += top
        face.landmarks = points
        face.right_eye = tuple(points[list(_RIGHT_EYE), :2].mean(axis=0).tolist())
        face.left_eye = tuple(points[list(_LEFT_EYE), :2].mean(axis=0).tolist())


def _starts(length: int, tile: int) -> list[int]:
    """Offsets of half-overlapping windows of size ``tile`` covering ``length``."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, max(tile // 2, 1)))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(x1 - x0, 0) * max(y1 - y0, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _non_max_suppression(faces: list[Face]) -> list[Face]:
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        if all(iou(face.box, other.box) < NMS_IOU for other in kept):
            kept.append(face)
    return kept


# Framing of the expression crops: eye distance and eye height as fractions of the crop side. 0.35/0.42
# and 0.40/0.36 read the same number of real labelled faces right; 0.35/0.42 has the higher mean
# recall over the expressions (docs/offline_models.md).
EYE_DISTANCE, EYE_HEIGHT = 0.35, 0.42


def aligned_crop(gray: np.ndarray, face: Face, size: int = 64, eye_distance: float = EYE_DISTANCE,
                 eye_height: float = EYE_HEIGHT) -> np.ndarray:
    """A size x size grey crop of ``face`` with level eyes ``eye_distance * size`` apart."""
    import cv2

    (rx, ry), (lx, ly) = face.right_eye, face.left_eye
    # The subject's right eye is on the image's left: the vector right->left eye points rightwards.
    dx, dy = lx - rx, ly - ry
    distance = float(np.hypot(dx, dy))
    if distance < 2.0:  # degenerate keypoints: fall back to the box
        return _box_crop(gray, face, size)
    angle = np.degrees(np.arctan2(dy, dx))
    scale = eye_distance * size / distance
    center = ((rx + lx) / 2.0, (ry + ly) / 2.0)
    matrix = cv2.getRotationMatrix2D(center, angle, scale)
    matrix[0, 2] += size / 2.0 - center[0]
    matrix[1, 2] += eye_height * size - center[1]
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _box_crop(gray: np.ndarray, face: Face, size: int) -> np.ndarray:
    import cv2

    x0, y0, x1, y1 = face.box
    crop = gray[y0:y1, x0:x1]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
