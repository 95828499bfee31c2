"""The visual half of the MERR pipeline on a raw video: faces, the main speaker's track, action units
per frame, expressions, and the peak frame (found on sampled frames, refined at the full rate).

Frames stream through once, at ``sample_fps``: on each, faces are detected, FaceMesh landmarks placed
on every face, and what the later steps need is measured (the AU measures, the eye-aligned grey crop
for the expression model); then the frame is let go, so a 60 s clip's 300 sampled frames (445 MiB at
960x540) never sit in memory together. Which face is the main speaker's is known only at the end, so
every face gets its landmarks (3-4 ms per face on 2 cores: nothing extra for the usual one-face clip).
Then faces are linked into tracks and the main one kept; AU intensities against the track's rest
values; the peak by MERR's rule; the frames around it are decoded again at the full rate and the same
rule applied there, so ``peak_index`` is exact to the frame (and the peak frame's pixels come from that
window). Expression probabilities come from the FER2013 mini-Xception on the track's crops.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from ..timing import Laps
from ..cues.faces import Face, aligned_crop
from ..cues.perception import Perceiver
from ..errors import InvalidInputError
from . import action_units as au
from .au_rules import peak_frame, peak_score, pseudo_label
from .decode import VideoInfo, probe, read_frames
from .tracking import build_tracks, main_track


@dataclass
class FaceReading:
    """What is kept of one face on one sampled frame once the frame is gone."""

    measures: dict[str, float]  # au.measures of its landmarks
    crop: np.ndarray  # 64x64 eye-aligned grey crop, the expression model's input


@dataclass
class VisualAnalysis:
    info: VideoInfo
    sampled_indices: list[int]  # original frame indices of the sampled frames
    face_counts: list[int]  # faces found on each sampled frame
    track_indices: list[int]  # original frame indices where the main face has landmarks
    au_intensities: np.ndarray  # (len(track_indices), 16), AU_CODES order
    expression_probs: np.ndarray  # (len(track_indices), 7), FER labels order
    peak_index: int | None  # 0-based index of the peak frame in the original video
    peak_time: float | None
    peak_frame: np.ndarray | None = field(repr=False, default=None)
    peak_face: Face | None = None
    peak_intensities: np.ndarray | None = None  # (16,) at the peak
    peak_expression: dict[str, float] = field(default_factory=dict)
    peak_rule_aus: list[str] = field(default_factory=list)  # the most frequent active AUs used by the rule
    pseudo_label: str = "neutral"
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    track_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # the face's box at each track index

    @property
    def has_face(self) -> bool:
        return self.peak_index is not None


def analyze_visual(path, perceiver: Perceiver, *, sample_fps: float = 5.0, max_seconds: float = 60.0,
                   max_side: int = 960) -> VisualAnalysis:
    timings: dict[str, float] = {}
    lap = Laps(timings)

    info = probe(path, max_seconds=max_seconds, max_side=max_side)
    lap("decode")
    perceiver.faces.load()
    lap("faces")
    sampled_indices: list[int] = []
    faces_per_frame: list[list[Face]] = []
    readings: dict[int, FaceReading] = {}  # by id() of the Face, which faces_per_frame keeps alive
    with closing(read_frames(info, step=max(1, int(round(info.fps / sample_fps))))) as frames:
        for index, frame in frames:
            lap("decode")
            faces = perceiver.faces.detect(frame, with_landmarks=False)
            lap("faces")
            readings.update(_read_faces(frame, faces, perceiver))
            lap("landmarks")
            sampled_indices.append(index)
            faces_per_frame.append(faces)
    track = main_track(build_tracks(faces_per_frame))
    notes = list(info.notes)
    counts = [len(faces) for faces in faces_per_frame]
    if track is None:
        notes.append("no face was found in any sampled frame")
        return VisualAnalysis(info, sampled_indices, counts, [], np.zeros((0, len(au.AU_CODES))),
                              np.zeros((0, 7)), None, None, notes=notes, timings=timings)
    if max(counts) > 1:
        notes.append(f"up to {max(counts)} faces per frame: the main speaker's face (largest, longest present) "
                     "was analysed")

    members = [(position, face, readings[id(face)]) for position, face in zip(track.frames, track.faces)
               if id(face) in readings]
    if not members:
        notes.append("faces were found but no landmarks could be placed on them")
        return VisualAnalysis(info, sampled_indices, counts, [], np.zeros((0, len(au.AU_CODES))),
                              np.zeros((0, 7)), None, None, notes=notes, timings=timings)
    measures = [reading.measures for _, _, reading in members]
    rest = au.rest_values(measures)
    intensity = au.intensities(measures, rest)
    row, rule_aus = peak_frame(au.intensities(measures, rest, saturate=False))
    lap("action_units")

    step = sampled_indices[1] - sampled_indices[0] if len(sampled_indices) > 1 else 1
    position, face, reading = members[row]
    peak = _refine_peak(info, sampled_indices[position], step, face, reading.measures, rest, rule_aus, perceiver)
    lap("peak_refine")

    crops = [reading.crop for _, _, reading in members]
    crops.append(aligned_crop(_gray(peak["frame"]), peak["face"]))
    probabilities = perceiver.expressions.predict(np.stack(crops))
    lap("expressions")

    peak_intensities = peak["intensities"]
    label, _score = pseudo_label(peak_intensities)
    return VisualAnalysis(
        info=info,
        sampled_indices=sampled_indices,
        face_counts=counts,
        track_indices=[sampled_indices[position] for position, _, _ in members],
        au_intensities=intensity,
        expression_probs=probabilities[:-1],
        peak_index=peak["index"],
        peak_time=peak["index"] / info.fps,
        peak_frame=peak["frame"],
        peak_face=peak["face"],
        peak_intensities=peak_intensities,
        peak_expression=dict(zip(perceiver.expressions.labels, map(float, probabilities[-1]))),
        peak_rule_aus=rule_aus,
        pseudo_label=label,
        notes=notes,
        timings=timings,
        track_boxes=[tuple(face.box) for _, face, _ in members],
    )


def _read_faces(frame: np.ndarray, faces: list[Face], perceiver: Perceiver) -> dict[int, FaceReading]:
    """Landmarks on each face (which also refine its eye centres), then its measures and aligned crop.
    The landmarks themselves are not kept: nothing after this step needs them."""
    readings, gray = {}, None
    for face in faces:
        perceiver.faces.add_landmarks(frame, face)
        if face.landmarks is None:
            continue
        gray = _gray(frame) if gray is None else gray
        readings[id(face)] = FaceReading(au.measures(face.landmarks), aligned_crop(gray, face))
        face.landmarks = None
    return readings


def _refine_peak(info: VideoInfo, centre: int, step: int, face: Face, centre_measures: dict[str, float], rest,
                 rule_aus, perceiver: Perceiver) -> dict:
    """Apply the peak rule again to every frame around the sampled peak ``centre``, at the full frame rate.

    The face barely moves within one sampling step, so landmarks are placed in the peak face's box
    without detecting again. Only the best frame so far is held."""

    def score(measures: dict[str, float]) -> float:  # -inf on a blink: never the peak
        return peak_score(au.intensities([measures], rest, saturate=False)[0], rule_aus)

    best = {"index": centre, "frame": None, "face": face, "measures": centre_measures}
    best_score = score(centre_measures)
    with closing(read_frames(info, centre - step + 1, centre + step - 1)) as window:
        for index, frame in window:
            if index == centre:
                if best["index"] == centre:
                    best["frame"] = frame
                continue
            candidate = Face(face.box, face.score, face.right_eye, face.left_eye)
            perceiver.faces.add_landmarks(frame, candidate)
            if candidate.landmarks is None:
                continue
            measures = au.measures(candidate.landmarks)
            if (value := score(measures)) > best_score:
                best = {"index": index, "frame": frame, "face": candidate, "measures": measures}
                best_score = value
    if best["frame"] is None:
        raise InvalidInputError(f"{info.path.name}: the peak frame could not be decoded again")
    best["intensities"] = au.intensities([best.pop("measures")], rest)[0]
    return best


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
