"""The offline models on real photos: faces, expressions, objects; and the Keras-padding helper."""

import numpy as np
import pytest
import torch

from emo_core.cues.faces import iou, _non_max_suppression, Face, aligned_crop
from emo_core.cues.perception import get_perceiver
from emo_core.models.mini_xception import _same_pad
from tests import media


@pytest.fixture(scope="module")
def perceiver():
    return get_perceiver().load()


@pytest.mark.parametrize("size, kernel, stride, expected", [(60, 3, 2, (0, 1)), (15, 3, 2, (1, 1)),
                                                             (8, 3, 1, (1, 1)), (60, 1, 2, (0, 0))])
def test_same_padding_matches_tensorflow(size, kernel, stride, expected):
    # TensorFlow's "same": total = max((ceil(n/s) - 1) * s + k - n, 0), the extra pixel at the end.
    padded = _same_pad(torch.zeros(1, 1, size, size), kernel, stride, value=1.0)
    assert padded.shape[-1] == size + sum(expected)
    if expected[0] == 0:
        assert padded[0, 0, 0, 0] == 0.0
    if expected[1]:
        assert padded[0, 0, -1, -1] == 1.0


def test_astronaut_has_one_happy_face(perceiver):
    rgb = np.asarray(media.astronaut())
    faces = perceiver.faces.detect(rgb)
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.box
    assert 150 < (x0 + x1) / 2 < 300 and 50 < (y0 + y1) / 2 < 200  # her face, upper middle-left
    assert face.landmarks is not None and face.landmarks.shape == (478, 3)
    assert face.right_eye[0] < face.left_eye[0]  # subject's right eye is on the image's left
    gray = rgb.mean(axis=2).astype(np.uint8)
    probabilities = perceiver.expressions.predict(np.stack([aligned_crop(gray, face)]))[0]
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert perceiver.expressions.labels[int(probabilities.argmax())] == "happy" and probabilities.max() > 0.9


def test_many_crops_go_through_in_batches_in_their_order(perceiver):
    """A video track's crops (more than one batch) get each crop's own probabilities, in order: the
    astronaut's happy face and a neutral drawing, interleaved over three batches."""
    from emo_core.cues.expression import PREDICT_BATCH

    rgb = np.asarray(media.astronaut())
    gray = rgb.mean(axis=2).astype(np.uint8)
    happy = aligned_crop(gray, perceiver.faces.detect(rgb)[0])
    flat = np.full((64, 64), 128, dtype=np.uint8)
    crops = np.stack([happy if i % 3 == 0 else flat for i in range(2 * PREDICT_BATCH + 5)])
    probabilities = perceiver.expressions.predict(crops)
    alone = {name: perceiver.expressions.predict(crop[None])[0] for name, crop in (("happy", happy), ("flat", flat))}
    assert probabilities.shape == (len(crops), 7)
    for i, row in enumerate(probabilities):
        np.testing.assert_allclose(row, alone["happy" if i % 3 == 0 else "flat"], atol=1e-5)
    assert not np.allclose(alone["happy"], alone["flat"], atol=0.05)


def test_mirrored_face_reads_the_same(perceiver):
    rgb = np.asarray(media.astronaut())
    readings = [perceiver.perceive(image).faces[0] for image in (rgb, rgb[:, ::-1].copy())]
    assert [r.expression for r in readings] == ["happy", "happy"]
    assert abs(readings[0].confidence - readings[1].confidence) < 0.05


@pytest.mark.parametrize("n_faces", [3, 4, 5, 6])
def test_every_face_of_a_group_photo_is_found(perceiver, n_faces):
    rgb = np.asarray(media.group_photo(n_faces, (1920, 1280), seed=n_faces))
    faces = perceiver.faces.detect(rgb, with_landmarks=False)
    assert len(faces) == n_faces


def test_no_face_in_photos_without_people(perceiver):
    for image in (media.coffee(), media.chelsea(), media.drawn_scene()):
        assert perceiver.faces.detect(np.asarray(image)) == []


def test_object_classifier_names_real_objects(perceiver):
    top = perceiver.objects.top_classes(np.asarray(media.coffee()), k=3)
    assert top[0][0] == "espresso" and top[0][1] > 0.5
    cat = perceiver.objects.top_classes(np.asarray(media.chelsea()), k=3)
    assert any("cat" in name for name, _ in cat)


def test_non_max_suppression_merges_overlaps():
    a = Face((0, 0, 100, 100), 0.9, (30, 40), (70, 40))
    b = Face((5, 5, 105, 105), 0.8, (35, 45), (75, 45))
    c = Face((300, 0, 400, 100), 0.7, (330, 40), (370, 40))
    assert iou(a.box, b.box) > 0.8 and iou(a.box, c.box) == 0
    assert _non_max_suppression([b, c, a]) == [a, c]
