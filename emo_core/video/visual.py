"""The visual half of the MERR pipeline on a raw video: faces, the main speaker's track, action units
per frame, expressions, and the peak frame (found on sampled frames, refined at the full rate).

Steps: sample frames at ``sample_fps``; detect faces on each; link them into tracks and keep the main
one; FaceMesh landmarks on that track only; AU intensities against the track's rest values; the
peak by MERR's rule; then re-decode the frames around it at the full rate and apply the same rule
there, so ``peak_index`` is exact to the frame. Expression probabilities come from the FER2013
mini-Xception on eye-aligned crops, batched over the whole track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..timing import Laps
from ..cues.faces import Face, aligned_crop
from ..cues.perception import Perceiver
from . import action_units as au
from .au_rules import peak_frame, peak_score, pseudo_label
from .decode import SampledFrames, VideoInfo, frames_between, probe, sample_frames
from .tracking import build_tracks, main_track


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

    @property
    def has_face(self) -> bool:
        return self.peak_index is not None


def analyze_visual(path, perceiver: Perceiver, *, sample_fps: float = 5.0, max_seconds: float = 60.0,
                   max_side: int = 960) -> VisualAnalysis:
    timings: dict[str, float] = {}
    lap = Laps(timings)

    info = probe(path, max_seconds=max_seconds, max_side=max_side)
    sampled = sample_frames(info, sample_fps)
    lap("decode")
    perceiver.faces.load()
    faces_per_frame = [perceiver.faces.detect(frame, with_landmarks=False) for frame in sampled.frames]
    lap("faces")
    track = main_track(build_tracks(faces_per_frame))
    notes = list(info.notes)
    counts = [len(faces) for faces in faces_per_frame]
    if track is None:
        notes.append("no face was found in any sampled frame")
        return VisualAnalysis(info, sampled.indices, counts, [], np.zeros((0, len(au.AU_CODES))),
                              np.zeros((0, 7)), None, None, notes=notes, timings=timings)
    if max(counts) > 1:
        notes.append(f"up to {max(counts)} faces per frame: the main speaker's face (largest, longest present) "
                     "was analysed")

    positions, faces, measures = [], [], []
    for position, face in zip(track.frames, track.faces):
        perceiver.faces.add_landmarks(sampled.frames[position], face)
        if face.landmarks is not None:
            positions.append(position)
            faces.append(face)
            measures.append(au.measures(face.landmarks))
    lap("landmarks")
    if not measures:
        notes.append("faces were found but no landmarks could be placed on them")
        return VisualAnalysis(info, sampled.indices, counts, [], np.zeros((0, len(au.AU_CODES))),
                              np.zeros((0, 7)), None, None, notes=notes, timings=timings)
    rest = au.rest_values(measures)
    intensity = au.intensities(measures, rest)
    row, rule_aus = peak_frame(au.intensities(measures, rest, saturate=False))
    lap("action_units")

    peak = _refine_peak(info, sampled, positions[row], faces[row], rest, rule_aus, perceiver)
    lap("peak_refine")

    crops = [aligned_crop(_gray(sampled.frames[p]), f) for p, f in zip(positions, faces)]
    crops.append(aligned_crop(_gray(peak["frame"]), peak["face"]))
    probabilities = perceiver.expressions.predict(np.stack(crops))
    lap("expressions")

    peak_intensities = peak["intensities"]
    label, _score = pseudo_label(peak_intensities)
    return VisualAnalysis(
        info=info,
        sampled_indices=sampled.indices,
        face_counts=counts,
        track_indices=[sampled.indices[p] for p in positions],
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
    )


def _refine_peak(info: VideoInfo, sampled: SampledFrames, position: int, face: Face, rest, rule_aus,
                 perceiver: Perceiver) -> dict:
    """Apply the peak rule again to every frame around the sampled peak, at the full frame rate.

    The face barely moves within one sampling step, so landmarks are placed in the peak face's box
    without detecting again."""
    step = sampled.indices[1] - sampled.indices[0] if len(sampled.indices) > 1 else 1
    centre = sampled.indices[position]

    def score(candidate: Face) -> float:  # -inf on a blink: never the peak
        return peak_score(au.intensities([au.measures(candidate.landmarks)], rest, saturate=False)[0], rule_aus)

    best_index, best_frame, best_face, best_score = centre, sampled.frames[position], face, score(face)
    if step > 1:
        window = frames_between(info, centre - step + 1, centre + step - 1)
        for index, frame in zip(window.indices, window.frames):
            if index == centre:
                continue
            candidate = Face(face.box, face.score, face.right_eye, face.left_eye)
            perceiver.faces.add_landmarks(frame, candidate)
            if candidate.landmarks is not None and (value := score(candidate)) > best_score:
                best_index, best_frame, best_face, best_score = index, frame, candidate, value
    return {"index": best_index, "frame": best_frame, "face": best_face,
            "intensities": au.intensities([au.measures(best_face.landmarks)], rest)[0]}


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
