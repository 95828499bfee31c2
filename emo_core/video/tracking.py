"""Linking face detections across sampled frames into tracks, and choosing the main speaker's.

Greedy IoU association frame to frame (a detection joins the track whose last box overlaps it most,
if IoU >= ``LINK_IOU``). A track survives up to ``MAX_MISSED`` sampled frames in a row without a
detection (the detector misses a face for a frame or two when it turns, blurs or is briefly covered),
so one face is not split into pieces; after a longer absence a face that comes back starts a new
track. The main track is the one with the largest sum of face areas over its
frames: the face that is both big and present longest, which in interview-style clips (MER, DFEW)
is the speaker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..cues.faces import Face, iou

LINK_IOU = 0.3
MAX_MISSED = 2  # sampled frames in a row a track may miss (at 5 fps: 0.4 s) and still go on


@dataclass
class Track:
    frames: list[int] = field(default_factory=list)  # positions in the sampled-frame list
    faces: list[Face] = field(default_factory=list)

    @property
    def weight(self) -> float:
        return sum(face.area for face in self.faces)


def build_tracks(faces_per_frame: list[list[Face]]) -> list[Track]:
    tracks: list[Track] = []
    for position, faces in enumerate(faces_per_frame):
        open_tracks = [t for t in tracks if t.frames and t.frames[-1] >= position - 1 - MAX_MISSED]
        taken: set[int] = set()
        for face in sorted(faces, key=lambda f: f.area, reverse=True):
            best, best_iou = None, LINK_IOU
            for index, track in enumerate(open_tracks):
                overlap = iou(track.faces[-1].box, face.box)
                if index not in taken and overlap >= best_iou:
                    best, best_iou = index, overlap
            if best is None:
                tracks.append(Track([position], [face]))
            else:
                taken.add(best)
                open_tracks[best].frames.append(position)
                open_tracks[best].faces.append(face)
    return tracks


def main_track(tracks: list[Track]) -> Track | None:
    return max(tracks, key=lambda t: t.weight) if tracks else None
