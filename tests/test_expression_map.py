"""The expression-to-class mapping and the no-face prior."""

import numpy as np
import pytest

from emo_core import CLASS_SETS
from emo_core.cues.faces import Face
from emo_core.cues.perception import FaceReading, ImagePerception
from emo_core.cues.pose import PoseCue
from emo_core.expression_map import EXPRESSION_AFFINITY, distribution
from emo_core.models.mini_xception import FER_LABELS


def one_hot(expression):
    return {label: float(label == expression) for label in FER_LABELS}


def perception(faces=(), brightness=0.5, colorfulness=45.0):
    readings = [FaceReading(Face(box, 0.9, (0, 0), (1, 0)), probs) for box, probs in faces]
    return ImagePerception(640, 480, brightness, colorfulness, readings, [], PoseCue(False))


def test_every_label_of_every_class_set_is_reachable_from_some_expression():
    for class_set in CLASS_SETS.values():
        for label in class_set.labels:
            assert any(row.get(label, 0) > 0 for row in EXPRESSION_AFFINITY.values()), (class_set.key, label)


@pytest.mark.parametrize(
    "class_set, expression, expected",
    [("fer7", "sad", "sad"), ("emotion6", "happy", "joy"), ("mikels8", "happy", "amusement"),
     ("mikels8", "angry", "anger"), ("mer2023", "fear", "worried"), ("unbiasedemo", "surprise", "surprise"),
     ("dfew7", "neutral", "neutral")],
)
def test_a_clear_face_maps_to_its_class(class_set, expression, expected):
    labels = list(CLASS_SETS[class_set].labels)
    probs, basis = distribution(perception([((0, 0, 100, 100), one_hot(expression))]), labels)
    assert basis == "faces"
    assert labels[int(np.argmax(probs))] == expected
    assert probs.sum() == pytest.approx(1.0) and probs.min() > 0


def test_the_largest_face_weighs_most():
    labels = list(CLASS_SETS["fer7"].labels)
    faces = [((0, 0, 300, 300), one_hot("sad")), ((400, 0, 450, 50), one_hot("happy"))]
    probs, _ = distribution(perception(faces), labels)
    assert probs[labels.index("sad")] > probs[labels.index("happy")] > 0.01


def test_an_expression_foreign_to_the_class_set_spreads_evenly():
    labels = list(CLASS_SETS["emotion6"].labels)  # has no "neutral"
    probs, _ = distribution(perception([((0, 0, 100, 100), one_hot("neutral"))]), labels)
    assert np.allclose(probs, 1 / len(labels))


def test_no_face_gives_a_weak_low_level_prior():
    labels = list(CLASS_SETS["mikels8"].labels)
    bright, basis = distribution(perception(brightness=0.9, colorfulness=80), labels)
    dark, _ = distribution(perception(brightness=0.1, colorfulness=10), labels)
    assert basis == "low-level cues only"
    assert bright.max() < 0.25 and dark.max() < 0.25  # never a confident answer without a model
    assert labels[int(np.argmax(bright))] in {"amusement", "excitement", "awe"}
    assert labels[int(np.argmax(dark))] == "sadness"
