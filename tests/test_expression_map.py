"""The expression-to-class mapping, face weights, abstention, the stated limits, and the no-face prior."""

import numpy as np
import pytest

from emo_core import CLASS_SETS
from emo_core.cues.faces import Face
from emo_core.cues.perception import FaceReading, ImagePerception
from emo_core.cues.pose import PoseCue
from emo_core.expression_map import decide, distribution, limits
from emo_core.models.mini_xception import FER_LABELS


def one_hot(expression):
    return {label: float(label == expression) for label in FER_LABELS}


def perception(faces=(), brightness=0.5, colorfulness=45.0):
    readings = [FaceReading(Face(box, 0.9, (0, 0), (1, 0)), probs) for box, probs in faces]
    return ImagePerception(640, 480, brightness, colorfulness, readings, [], PoseCue(False))


def winners(class_set):
    """Labels that are the answer for some clear (one-hot) face: found by running every expression."""
    labels = list(CLASS_SETS[class_set].labels)
    found = set()
    for expression in FER_LABELS:
        probs, _ = distribution(perception([((0, 0, 100, 100), one_hot(expression))]), labels)
        label, _ = decide(probs, labels, "faces")
        if label:
            found.add(label)
    return found


@pytest.mark.parametrize("class_set", list(CLASS_SETS))
def test_the_stated_limits_name_exactly_the_labels_no_face_can_give(class_set):
    labels = CLASS_SETS[class_set].labels
    never = [label for label in labels if label not in winners(class_set)]
    stated = [note for note in limits(labels) if note.startswith("never the answer offline")]
    if never:
        assert len(stated) == 1 and all(label in stated[0] for label in never)
    else:
        assert stated == []


def test_limits_in_words_for_the_sets_the_issue_names():
    assert any("love" in note and "never" in note for note in limits(CLASS_SETS["unbiasedemo"].labels))
    webemo = limits(CLASS_SETS["webemo7"].labels)
    assert any("joy / love" in note for note in webemo) and any("neutral face gives a flat" in note for note in webemo)
    assert any("doubt" in note for note in limits(CLASS_SETS["merr9"].labels))
    assert limits(CLASS_SETS["fer7"].labels) == []  # the model's own classes: nothing is merged


@pytest.mark.parametrize("class_set", ["webemo7", "mikels8", "emotion6", "unbiasedemo"])
@pytest.mark.parametrize("neutral", [1.0, 0.94])
def test_a_neutral_face_gives_a_flat_distribution_and_no_label(class_set, neutral):
    # The issue: a neutral face read "confusion 94%" in WebEmo-7 and "contentment 68%" in Mikels-8.
    labels = list(CLASS_SETS[class_set].labels)
    rest = (1.0 - neutral) / 6
    probs_in = {label: (neutral if label == "neutral" else rest) for label in FER_LABELS}
    probs, _ = distribution(perception([((0, 0, 100, 100), probs_in)]), labels)
    assert probs.max() - probs.min() < 0.05
    label, why = decide(probs, labels, "faces")
    assert label is None and "flat" in why


def test_an_unsure_face_gives_no_label():
    labels = list(CLASS_SETS["emotion6"].labels)
    even = {label: 1 / 7 for label in FER_LABELS}
    probs, _ = distribution(perception([((0, 0, 100, 100), even)]), labels)
    label, why = decide(probs, labels, "faces")
    assert label is None and "flat" in why


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


def test_two_smiles_outweigh_one_larger_sad_face():
    labels = list(CLASS_SETS["emotion6"].labels)
    faces = [((0, 0, 300, 300), one_hot("sad")), ((400, 0, 560, 160), one_hot("happy")),
             ((600, 0, 760, 160), one_hot("happy"))]
    probs, _ = distribution(perception(faces), labels)
    assert decide(probs, labels, "faces")[0] == "joy"
    assert probs[labels.index("joy")] == pytest.approx(2 * probs[labels.index("sadness")], rel=0.1)


def test_a_small_background_face_counts_less():
    labels = list(CLASS_SETS["fer7"].labels)
    faces = [((0, 0, 300, 300), one_hot("sad")), ((400, 0, 460, 60), one_hot("happy"))]  # 1/5 of the width
    probs, _ = distribution(perception(faces), labels)
    assert probs[labels.index("sad")] > 2 * probs[labels.index("happy")] > 0.01


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
    assert decide(bright, labels, basis) == (None, "no face was found, so no model judged the emotion")


@pytest.mark.parametrize("class_set", ["mer2023", "merr9", "dfew7"])
def test_video_limits_name_exactly_the_labels_no_face_or_action_units_can_give(class_set):
    """Run the offline video fusion itself over every pure expression and every action-unit pseudo-label
    (no voice): a class that never wins any of them must be stated as never answered, and only those."""
    from emo_core.video.au_rules import AU_COMBINATIONS
    from emo_core.video.fusion import fuse, fusion_limits

    labels = list(CLASS_SETS[class_set].labels)
    expressions = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    winners = set()
    for expression in expressions:
        for pseudo in [None, *AU_COMBINATIONS]:
            pure = {name: (1.0 if name == expression else 0.0) for name in expressions}
            probabilities, _ = fuse(labels, pure, pure, pseudo, None)
            if probabilities.max() > probabilities.min() + 1e-9:
                winners.add(labels[int(probabilities.argmax())])
    never = sorted(set(labels) - winners)
    stated = [note for note in fusion_limits(labels) if note.startswith("never the answer offline")]
    if never:
        assert len(stated) == 1 and sorted(stated[0].split(": ", 1)[1].split(" (")[0].split(", ")) == never
    else:
        assert stated == []
