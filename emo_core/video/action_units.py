"""Facial action-unit (AU) intensities estimated from FaceMesh landmarks: geometric proxies.

No AU detector ships in a registry package (py-feat, OpenFace, libreface download weights), so each AU
is a documented distance between FaceMesh landmarks, measured in a face-aligned frame (eye line
level, origin between the eyes, unit = the inter-ocular distance so face size cancels out; y grows
downwards). These are proxies, not FACS coding: they follow the muscle movement's visible effect.

Intensity on OpenFace's 0-5 scale: ``5 * clip(direction * (value - reference) / full_range, 0, 1)``.
``reference`` is the clip's resting value (``REST_PERCENTILE`` of the track, on the non-active side),
so a person's own neutral face is zero whatever their face shape. Three AUs are absolute instead,
because their rest state is known: AU25 (lips parted), AU45 (eyes closed) and AU12/AU15 partly
(lip corners above/below the upper lip's inner edge). An AU counts as *active* at intensity >= 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# FaceMesh landmark indices (subject's right side first).
EYE_OUTER = (33, 263)
EYE_INNER = (133, 362)
UPPER_LID = (159, 386)
LOWER_LID = (145, 374)
BROW_INNER = (107, 336)
BROW_MID = (105, 334)
BROW_OUTER = (70, 300)
NOSE_ALA = (129, 358)
NOSE_TIP, SUBNASALE = 1, 2
MOUTH_CORNER = (61, 291)
UPPER_LIP_TOP, UPPER_LIP_INNER, LOWER_LIP_INNER, LOWER_LIP_BOTTOM = 0, 13, 14, 17
CHIN = 152

ACTIVE_THRESHOLD = 1.0
REST_PERCENTILE = 20  # the rest value of a measure: its 20th percentile on the non-active side


@dataclass(frozen=True)
class AUSpec:
    code: str
    name: str
    landmarks: str  # which landmarks the measure uses, for the documentation table
    direction: int  # +1: the AU makes the measure grow; -1: shrink
    full_range: float  # change (inter-ocular units) that counts as intensity 5
    absolute_rest: float | None = None  # fixed rest value instead of the clip's (see module doc)


AU_SPECS: dict[str, AUSpec] = {
    s.code: s
    for s in (
        AUSpec("AU01", "inner brow raiser", "inner brows 107/336 above inner eye corners 133/362", +1, 0.12),
        AUSpec("AU02", "outer brow raiser", "outer brows 70/300 above outer eye corners 33/263", +1, 0.12),
        AUSpec("AU04", "brow lowerer", "gap between inner brows 107-336 + mid-brow 105/334 height", -1, 0.10),
        AUSpec("AU05", "upper lid raiser", "eyelid opening 159-145 / 386-374 over eye width", +1, 0.12),
        AUSpec("AU06", "cheek raiser", "lower lids 145/374 raised towards the eye-corner line", -1, 0.08),
        AUSpec("AU07", "lid tightener", "eyelid opening 159-145 / 386-374 over eye width", -1, 0.10),
        AUSpec("AU09", "nose wrinkler", "nose wings 129/358 below the inner eye corners", -1, 0.05),
        AUSpec("AU10", "upper lip raiser", "upper lip top 0 below the subnasale 2", -1, 0.05),
        AUSpec("AU12", "lip corner puller", "mouth corners 61/291 above the upper lip's inner edge 13", +1, 0.10, 0.0),
        AUSpec("AU15", "lip corner depressor", "mouth corners 61/291 below the upper lip's inner edge 13", -1, 0.08, 0.0),
        AUSpec("AU17", "chin raiser", "lower lip bottom 17 to chin 152", -1, 0.06),
        AUSpec("AU20", "lip stretcher", "mouth width 61-291 (without corners rising)", +1, 0.15),
        AUSpec("AU23", "lip tightener", "red lip heights 0-13 + 14-17", -1, 0.06),
        AUSpec("AU25", "lips part", "inner lip gap 13-14", +1, 0.15, 0.02),
        AUSpec("AU26", "jaw drop", "chin 152 below the nose tip 1", +1, 0.25),
        AUSpec("AU45", "blink", "eyelid opening over eye width below an open eye's", -1, 0.15, 0.25),
    )
}
AU_CODES = tuple(AU_SPECS)


def aligned(points: np.ndarray) -> np.ndarray:
    """(478, 2+) pixel landmarks -> (478, 2) in the face frame: eyes level, inter-ocular unit."""
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    right = xy[[EYE_OUTER[0], EYE_INNER[0]]].mean(axis=0)
    left = xy[[EYE_OUTER[1], EYE_INNER[1]]].mean(axis=0)
    axis = left - right
    distance = float(np.hypot(*axis)) or 1.0
    cos, sin = axis / distance
    rotation = np.array([[cos, sin], [-sin, cos]])  # rotates the eye axis onto +x
    return ((xy - (right + left) / 2) @ rotation.T) / distance


def measures(points: np.ndarray) -> dict[str, float]:
    """The raw measure behind each AU for one face (inter-ocular units)."""
    p = aligned(points)
    y = p[:, 1]

    eye_width = np.mean([np.linalg.norm(p[EYE_OUTER[i]] - p[EYE_INNER[i]]) for i in range(2)])
    eye_open = np.mean([y[LOWER_LID[i]] - y[UPPER_LID[i]] for i in range(2)]) / eye_width
    corner_line = np.mean([(y[EYE_OUTER[i]] + y[EYE_INNER[i]]) / 2 for i in range(2)])
    # Against the upper lip, not the lip centre: an opening jaw lowers the centre, not the corners.
    corner_raise = float(np.mean([y[UPPER_LIP_INNER] - y[MOUTH_CORNER[i]] for i in range(2)]))
    return {
        "AU01": float(np.mean([y[EYE_INNER[i]] - y[BROW_INNER[i]] for i in range(2)])),
        "AU02": float(np.mean([y[EYE_OUTER[i]] - y[BROW_OUTER[i]] for i in range(2)])),
        "AU04": float(np.linalg.norm(p[BROW_INNER[0]] - p[BROW_INNER[1]])
                      + np.mean([corner_line - y[BROW_MID[i]] for i in range(2)])),
        "AU05": float(eye_open),
        "AU06": float(np.mean([y[LOWER_LID[i]] for i in range(2)]) - corner_line),
        "AU07": float(eye_open),
        "AU09": float(np.mean([y[NOSE_ALA[i]] - y[EYE_INNER[i]] for i in range(2)])),
        "AU10": float(y[UPPER_LIP_TOP] - y[SUBNASALE]),
        "AU12": corner_raise,
        "AU15": corner_raise,
        "AU17": float(y[CHIN] - y[LOWER_LIP_BOTTOM]),
        "AU20": float(np.linalg.norm(p[MOUTH_CORNER[0]] - p[MOUTH_CORNER[1]])),
        "AU23": float((y[UPPER_LIP_INNER] - y[UPPER_LIP_TOP]) + (y[LOWER_LIP_BOTTOM] - y[LOWER_LIP_INNER])),
        "AU25": float(y[LOWER_LIP_INNER] - y[UPPER_LIP_INNER]),
        "AU26": float(y[CHIN] - y[NOSE_TIP]),
        "AU45": float(eye_open),
    }


def rest_values(track_measures: list[dict[str, float]]) -> dict[str, float]:
    """Each measure's resting value for this face track (see the module doc)."""
    rest = {}
    for code in AU_CODES:
        spec = AU_SPECS[code]
        series = np.array([m[code] for m in track_measures]) if track_measures else np.zeros(1)
        clip_rest = float(np.percentile(series, REST_PERCENTILE if spec.direction > 0 else 100 - REST_PERCENTILE))
        if spec.absolute_rest is None:
            rest[code] = clip_rest
        elif code in ("AU12", "AU15"):  # the clip's rest too: a smile held all along still counts
            rest[code] = min(spec.absolute_rest, clip_rest) if spec.direction > 0 else max(spec.absolute_rest,
                                                                                          clip_rest)
        else:
            rest[code] = spec.absolute_rest
    return rest


def intensities(frame_measures: list[dict[str, float]], rest: dict[str, float], saturate: bool = True) -> np.ndarray:
    """(frames, AUs) intensities in ``AU_CODES`` order, against the track's ``rest`` values: 0-5, or
    0 upwards with ``saturate=False`` (to rank frames that all reach 5)."""
    out = np.zeros((len(frame_measures), len(AU_CODES)))
    for column, code in enumerate(AU_CODES):
        spec = AU_SPECS[code]
        series = np.array([m[code] for m in frame_measures])
        if len(series):
            out[:, column] = 5.0 * np.maximum(spec.direction * (series - rest[code]) / spec.full_range, 0.0)
    # AU20 is the stretch without the smile: a smile widens the mouth too.
    au12, au20 = AU_CODES.index("AU12"), AU_CODES.index("AU20")
    out[:, au20] *= np.clip(1.0 - out[:, au12] / 5.0, 0.0, 1.0)
    return np.minimum(out, 5.0) if saturate else out


def active(intensity_row: np.ndarray) -> list[str]:
    return [code for code, value in zip(AU_CODES, intensity_row) if value >= ACTIVE_THRESHOLD]
