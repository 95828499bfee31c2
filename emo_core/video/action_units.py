"""Facial action-unit (AU) intensities estimated from FaceMesh landmarks: geometric proxies.

No AU detector ships in a registry package (py-feat, OpenFace, libreface download weights), so each AU
is a documented distance between FaceMesh landmarks, measured in a face-aligned frame (eye line
level, origin between the eyes, unit = the inter-ocular distance so face size cancels out; y grows
downwards). These are proxies, not FACS coding: they follow the muscle movement's visible effect.

Each AU has a measure of its own (``AU_SPECS``: the landmarks, and why it differs from its
neighbours), because AUs that share one measure fire together: when one eye-opening number stood
for AU05, AU07 and AU45, every blink was also a lid tightener. Around the eye:

- AU05 (upper lid raiser): the upper lid above the iris centre; it shows sclera above the iris. A
  blink lowers the upper lid, so it can only lower this measure.
- AU07 (lid tightener): the lower lid raised towards the line of the eye corners (the canthi, fixed
  to the skull), narrowing the eye from below with the cheek unchanged; a cheek raise (AU06) lifts
  the lower lid too, so AU07 is discounted by AU06.
- AU06 (cheek raiser): the cheek apex below the eye raised towards the eye-corner line.
- AU45 (blink): the lids nearly touching, as a fraction of this face's open eye: nothing until the
  eye is ``BLINK_START`` closed, 5 at ``BLINK_FULL``. A blink is brief (0.1-0.4 s); this measure is
  per frame, so a longer closure (AU43, eyes closed) reads as AU45 too.
- On a frame whose eyes are closing (AU45 above 0), AU05, AU06 and AU07 are 0: where the lids of a
  closed eye sit says nothing about how wide the open eye is, and FaceMesh moves the lower lid and
  cheek points up on closed eyes (on the test clips' blinks, as far as AU06 at intensity 3.7-3.9).
  FaceMesh lowers the brows a little on closed eyes too (AU04 at 1.5-2.5 on those blinks); AU04 is
  left as measured, since a frown can go on through a blink, and blink frames are never the peak.

Around the mouth, AU12 (lip corner puller) is the corners' rise above the upper lip's inner edge:
the upper lip hangs from the skull, so an opening jaw cannot fake it. AU12 pulls the corners up and
out; the "out" part alone is AU20's stretch (mouth width), which is discounted when AU12 is active.
AU15 (lip corner depressor) is the corners' fall below the lip centre line (midway between the
inner lip edges): an opening jaw lowers that line along with the corners (a wide-open mouth's corners
sit at its mid-height). On the test clip's jaw drop AU15 peaks at 0.98 (not active) where the
corners measured against the upper lip, AU12's measure, read as AU15 at 5.

Intensity on OpenFace's 0-5 scale: ``5 * clip(direction * (value - reference) / full_range, 0, 1)``.
``reference`` is the track's resting value (``REST_PERCENTILE`` of the track, on the non-active side),
so a person's own neutral face is zero whatever their face shape; the eye measures (AU05-AU07) rest
on frames with open eyes, AU15 on frames with closed lips (where the lip centre line is the mouth line).
Some AUs are absolute instead, because their rest state is known: AU25 (lips parted), and partly
AU12/AU15 (lip corners level with the mouth line). An AU counts as *active* at intensity >= 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# FaceMesh landmark indices (subject's right side first).
EYE_OUTER = (33, 263)
EYE_INNER = (133, 362)
UPPER_LID = (159, 386)
LOWER_LID = (145, 374)
IRIS_CENTRE = (468, 473)  # FaceMesh with iris refinement (478 points)
BROW_INNER = (107, 336)
BROW_MID = (105, 334)
BROW_OUTER = (70, 300)
CHEEK_APEX = (50, 280)
NOSE_ALA = (129, 358)
NOSE_TIP, SUBNASALE = 1, 2
MOUTH_CORNER = (61, 291)
UPPER_LIP_TOP, UPPER_LIP_INNER, LOWER_LIP_INNER, LOWER_LIP_BOTTOM = 0, 13, 14, 17
CHIN = 152

ACTIVE_THRESHOLD = 1.0
REST_PERCENTILE = 20  # the rest value of a measure: its 20th percentile on the non-active side
BLINK_START, BLINK_FULL = 0.5, 0.8  # eye closure (1 - opening / open opening) where AU45 leaves 0 / reaches 5
OPEN_EYE_FLOOR = 0.2  # smallest open-eye opening (over eye width) a track may have; its eyes may be shut all along
OPEN_EYES_FOR_REST = 0.3  # eye measures rest on frames closed less than this


@dataclass(frozen=True)
class AUSpec:
    code: str
    name: str
    landmarks: str  # which landmarks the measure uses and why, for the documentation table
    direction: int  # +1: the AU makes the measure grow; -1: shrink
    full_range: float  # change (inter-ocular units; AU45: eye closure) that counts as intensity 5
    absolute_rest: float | None = None  # fixed rest value instead of the track's (see module doc)


AU_SPECS: dict[str, AUSpec] = {
    s.code: s
    for s in (
        AUSpec("AU01", "inner brow raiser", "inner brows 107/336 above inner eye corners 133/362", +1, 0.12),
        AUSpec("AU02", "outer brow raiser", "outer brows 70/300 above outer eye corners 33/263", +1, 0.12),
        AUSpec("AU04", "brow lowerer", "gap between inner brows 107-336 + mid-brow 105/334 height", -1, 0.10),
        AUSpec("AU05", "upper lid raiser", "upper lids 159/386 above the iris centres 468/473 (sclera above the "
               "iris); 0 on closing eyes", +1, 0.06),
        AUSpec("AU06", "cheek raiser", "cheek apex 50/280 below the eye-corner line 33-133 / 263-362; 0 on closing "
               "eyes", -1, 0.05),
        AUSpec("AU07", "lid tightener", "lower lids 145/374 below the eye-corner line (the canthi), discounted "
               "by AU06 (cheek unchanged); 0 on closing eyes", -1, 0.08),
        AUSpec("AU09", "nose wrinkler", "nose wings 129/358 below the inner eye corners", -1, 0.05),
        AUSpec("AU10", "upper lip raiser", "upper lip top 0 below the subnasale 2", -1, 0.05),
        AUSpec("AU12", "lip corner puller", "mouth corners 61/291 above the upper lip's inner edge 13 (the up "
               "part of the pull; an opening jaw only lowers it)", +1, 0.10, 0.0),
        AUSpec("AU15", "lip corner depressor", "mouth corners 61/291 below the lip centre line (13+14)/2, "
               "which an opening jaw lowers too", +1, 0.06, 0.0),
        AUSpec("AU17", "chin raiser", "lower lip bottom 17 to chin 152", -1, 0.06),
        AUSpec("AU20", "lip stretcher", "mouth width 61-291, discounted by AU12 (a smile widens it too)", +1, 0.15),
        AUSpec("AU23", "lip tightener", "red lip heights 0-13 + 14-17", -1, 0.06),
        AUSpec("AU25", "lips part", "inner lip gap 13-14", +1, 0.15, 0.02),
        AUSpec("AU26", "jaw drop", "chin 152 below the nose tip 1", +1, 0.25),
        AUSpec("AU45", "blink", f"lid gap 159-145 / 386-374 over eye width as a fraction of the open eye's: "
               f"0 until {BLINK_START:.0%} closed, 5 at {BLINK_FULL:.0%}", -1, BLINK_FULL - BLINK_START),
    )
}
AU_CODES = tuple(AU_SPECS)
_COLUMN = {code: column for column, code in enumerate(AU_CODES)}
_EYE_AUS = ("AU05", "AU06", "AU07")  # measured on or under the lids: rest on open eyes, 0 on closing ones


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
    """The raw measure behind each AU for one face (inter-ocular units; AU45: opening over eye width)."""
    p = aligned(points)
    y = p[:, 1]

    def both(value) -> float:  # the mean over the subject's right (0) and left (1) side
        return float(np.mean([value(i) for i in range(2)]))

    corner_line = [(y[EYE_OUTER[i]] + y[EYE_INNER[i]]) / 2 for i in range(2)]  # the canthi, per eye
    eye_width = both(lambda i: np.linalg.norm(p[EYE_OUTER[i]] - p[EYE_INNER[i]]))
    # without iris points (a 468-point mesh) the eye-corner line stands in for the iris centre
    iris = [y[IRIS_CENTRE[i]] if len(y) > max(IRIS_CENTRE) else corner_line[i] for i in range(2)]
    lip_centre_line = (y[UPPER_LIP_INNER] + y[LOWER_LIP_INNER]) / 2
    return {
        "AU01": both(lambda i: y[EYE_INNER[i]] - y[BROW_INNER[i]]),
        "AU02": both(lambda i: y[EYE_OUTER[i]] - y[BROW_OUTER[i]]),
        "AU04": float(np.linalg.norm(p[BROW_INNER[0]] - p[BROW_INNER[1]]))
                + both(lambda i: np.mean(corner_line) - y[BROW_MID[i]]),
        "AU05": both(lambda i: iris[i] - y[UPPER_LID[i]]),
        "AU06": both(lambda i: y[CHEEK_APEX[i]] - corner_line[i]),
        "AU07": both(lambda i: y[LOWER_LID[i]] - corner_line[i]),
        "AU09": both(lambda i: y[NOSE_ALA[i]] - y[EYE_INNER[i]]),
        "AU10": float(y[UPPER_LIP_TOP] - y[SUBNASALE]),
        "AU12": both(lambda i: y[UPPER_LIP_INNER] - y[MOUTH_CORNER[i]]),
        "AU15": both(lambda i: y[MOUTH_CORNER[i]] - lip_centre_line),
        "AU17": float(y[CHIN] - y[LOWER_LIP_BOTTOM]),
        "AU20": float(np.linalg.norm(p[MOUTH_CORNER[0]] - p[MOUTH_CORNER[1]])),
        "AU23": float((y[UPPER_LIP_INNER] - y[UPPER_LIP_TOP]) + (y[LOWER_LIP_BOTTOM] - y[LOWER_LIP_INNER])),
        "AU25": float(y[LOWER_LIP_INNER] - y[UPPER_LIP_INNER]),
        "AU26": float(y[CHIN] - y[NOSE_TIP]),
        "AU45": both(lambda i: y[LOWER_LID[i]] - y[UPPER_LID[i]]) / (eye_width or 1.0),
    }


def eye_closure(opening: np.ndarray | float, open_opening: float) -> np.ndarray:
    """How closed the eyes are, 0 (as open as this face's open eyes) to 1 (lids touching)."""
    return np.clip(1.0 - np.asarray(opening, dtype=np.float64) / open_opening, 0.0, 1.0)


def rest_values(track_measures: list[dict[str, float]]) -> dict[str, float]:
    """Each measure's resting value for this face track (see the module doc); AU45's is the opening
    of this face's open eyes."""
    if not track_measures:
        track_measures = [{code: 0.0 for code in AU_CODES}]
    series = {code: np.array([m[code] for m in track_measures], dtype=np.float64) for code in AU_CODES}
    open_opening = max(float(np.percentile(series["AU45"], 100 - REST_PERCENTILE)), OPEN_EYE_FLOOR)
    open_eyes = eye_closure(series["AU45"], open_opening) < OPEN_EYES_FOR_REST
    lips_closed = series["AU25"] < AU_SPECS["AU25"].absolute_rest + AU_SPECS["AU25"].full_range / 5

    rest = {"AU45": open_opening}
    for code in AU_CODES:
        spec = AU_SPECS[code]
        if code == "AU45":
            continue
        values = series[code]
        subset = open_eyes if code in _EYE_AUS else lips_closed if code == "AU15" else None
        if subset is not None and subset.any():
            values = values[subset]
        track_rest = float(np.percentile(values, REST_PERCENTILE if spec.direction > 0 else 100 - REST_PERCENTILE))
        if spec.absolute_rest is None:
            rest[code] = track_rest
        elif code in ("AU12", "AU15"):  # the track's rest too, unless the expression is held all along
            rest[code] = min(spec.absolute_rest, track_rest)
        else:
            rest[code] = spec.absolute_rest
    return rest


def intensities(frame_measures: list[dict[str, float]], rest: dict[str, float], saturate: bool = True) -> np.ndarray:
    """(frames, AUs) intensities in ``AU_CODES`` order, against the track's ``rest`` values: 0-5, or
    0 upwards with ``saturate=False`` (to rank frames that all reach 5)."""
    out = np.zeros((len(frame_measures), len(AU_CODES)))
    if not frame_measures:
        return out
    for column, code in enumerate(AU_CODES):
        spec = AU_SPECS[code]
        series = np.array([m[code] for m in frame_measures], dtype=np.float64)
        if code == "AU45":
            closure = eye_closure(series, rest["AU45"])
            out[:, column] = 5.0 * np.maximum((closure - BLINK_START) / spec.full_range, 0.0)
        else:
            out[:, column] = 5.0 * np.maximum(spec.direction * (series - rest[code]) / spec.full_range, 0.0)
    # the neighbour that moves the same landmarks takes precedence: a smile widens the mouth (AU20),
    # a cheek raise lifts the lower lid (AU07)
    for kept, discounted in (("AU12", "AU20"), ("AU06", "AU07")):
        out[:, _COLUMN[discounted]] *= np.clip(1.0 - out[:, _COLUMN[kept]] / 5.0, 0.0, 1.0)
    closing = eyes_closing(out)
    for code in _EYE_AUS:
        out[closing, _COLUMN[code]] = 0.0
    return np.minimum(out, 5.0) if saturate else out


def eyes_closing(intensity_rows: np.ndarray) -> np.ndarray:
    """Which rows (frames) show closing or closed eyes (AU45 above 0): a blink, never an expression."""
    return np.atleast_2d(intensity_rows)[:, _COLUMN["AU45"]] > 0.0


def active(intensity_row: np.ndarray) -> list[str]:
    return [code for code, value in zip(AU_CODES, intensity_row) if value >= ACTIVE_THRESHOLD]
