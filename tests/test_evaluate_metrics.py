"""The evaluation metrics against scikit-learn and against figures worked out by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, recall_score

from emo_core.evaluate.metrics import (bootstrap_intervals, classification_metrics, confusion_counts, mcnemar,
                                       metrics_from_confusion, sensitivity)
from emo_core.parsing import parse_prediction, unparsed_reason

LABELS = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]


def _random_predictions(seed: int, n: int, unparsed_share: float, classes: list[str]):
    rng = np.random.default_rng(seed)
    truth = list(rng.choice(classes, n))
    predicted = [None if rng.random() < unparsed_share else (t if rng.random() < 0.5 else str(rng.choice(LABELS)))
                 for t in truth]
    return truth, predicted


def test_hand_worked_example():
    # 3 joy, 2 anger, 1 fear; one joy unparsed, one anger read as joy.
    truth = ["joy", "joy", "joy", "anger", "anger", "fear"]
    predicted = ["joy", "joy", None, "joy", "anger", "fear"]
    m = classification_metrics(truth, predicted, LABELS, n_boot=0)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls: joy 2/3, anger 1/2, fear 1 -> UAR over the three present classes
    assert m["uar"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # F1 = 2TP / (support + predicted): joy 4/6, anger 2/3, fear 1
    f1 = {"joy": 4 / 6, "anger": 2 / 3, "fear": 1.0}
    assert m["macro_f1"] == pytest.approx(sum(f1.values()) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * f1["joy"] + 2 * f1["anger"] + 1 * f1["fear"]) / 6)
    assert m["unparsed"] == 1
    joy_row = m["confusion"]["matrix"][LABELS.index("joy")]
    assert joy_row[LABELS.index("joy")] == 2 and joy_row[-1] == 1 and m["confusion"]["columns"][-1] == "unparsed"
    assert m["per_class_recall"] == pytest.approx({"anger": 0.5, "fear": 1.0, "joy": 2 / 3})


@pytest.mark.parametrize("seed,n,share,classes", [(0, 50, 0.0, LABELS), (1, 200, 0.15, LABELS),
                                                   (2, 31, 0.4, ["joy", "fear", "anger"]), (3, 7, 0.3, LABELS)])
def test_metrics_match_sklearn_with_unparsed_as_wrong(seed, n, share, classes):
    truth, predicted = _random_predictions(seed, n, share, classes)
    m = classification_metrics(truth, predicted, LABELS, n_boot=0)
    filled = ["<none>" if p is None else p for p in predicted]  # sklearn's view: a label no class equals
    present = sorted(set(truth))
    assert m["accuracy"] == pytest.approx(accuracy_score(truth, filled))
    assert m["uar"] == pytest.approx(recall_score(truth, filled, labels=present, average="macro", zero_division=0))
    if set(truth) == set(LABELS):  # balanced accuracy = UAR (the unparsed column has no true samples: left out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert m["uar"] == pytest.approx(balanced_accuracy_score(truth, filled))
    assert m["macro_f1"] == pytest.approx(f1_score(truth, filled, labels=present, average="macro", zero_division=0))
    assert m["weighted_f1"] == pytest.approx(f1_score(truth, filled, labels=present, average="weighted"))
    full = confusion_matrix(truth, filled, labels=LABELS + ["<none>"])
    assert m["confusion"]["matrix"] == full[: len(LABELS)].tolist()
    assert m["unparsed"] == sum(p is None for p in predicted)


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_metrics_equal_sklearn_on_each_resample(seed):
    rng = np.random.default_rng(seed)
    k = 5
    truth = rng.integers(0, k, size=(6, 40))
    predicted = np.where(rng.random((6, 40)) < 0.2, k, rng.integers(0, k, size=(6, 40)))
    values = metrics_from_confusion(confusion_counts(truth, predicted, k))
    for row in range(6):
        t, p = truth[row], predicted[row]
        present = sorted(set(t.tolist()))
        assert values["accuracy"][row] == pytest.approx(accuracy_score(t, p))
        assert values["uar"][row] == pytest.approx(recall_score(t, p, labels=present, average="macro", zero_division=0))
        assert values["macro_f1"][row] == pytest.approx(f1_score(t, p, labels=present, average="macro", zero_division=0))
        assert values["weighted_f1"][row] == pytest.approx(f1_score(t, p, labels=present, average="weighted",
                                                                    zero_division=0))


def test_bootstrap_intervals_bracket_the_estimate_and_are_reproducible():
    truth, predicted = _random_predictions(5, 120, 0.1, LABELS)
    first = bootstrap_intervals(truth, predicted, LABELS, n_boot=500, seed=3)
    assert first == bootstrap_intervals(truth, predicted, LABELS, n_boot=500, seed=3)
    point = classification_metrics(truth, predicted, LABELS, n_boot=0)
    for name, (low, high) in first.items():
        assert low <= point[name] <= high
        assert high - low > 0.02  # 120 samples: not a degenerate interval
    # the binomial standard error of accuracy gives about the same width
    p = point["accuracy"]
    assert first["accuracy"][1] - first["accuracy"][0] == pytest.approx(2 * 1.96 * math.sqrt(p * (1 - p) / 120), rel=0.25)


def test_sensitivity_on_hand_made_accuracies():
    two = sensitivity([0.8, 0.6])  # mean 0.7, population std 0.1, sample std 0.1414
    assert two["value"] == pytest.approx(0.1 / 0.7)
    assert two["value_sample_std"] == pytest.approx(math.sqrt(0.02) / 0.7)
    three = sensitivity([0.2, 0.4, 0.6])  # population std sqrt(0.08/3), sample std 0.2
    assert three["value"] == pytest.approx(math.sqrt(0.08 / 3) / 0.4)
    assert three["value_sample_std"] == pytest.approx(0.5)
    assert sensitivity([0.55, 0.55, 0.55])["value"] == 0.0
    assert sensitivity([0.0, 0.0])["value"] is None  # a mean of 0: undefined, not infinite
    assert sensitivity([0.7])["value"] is None


def _binomial_two_sided(k: int, n: int) -> float:
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize("a_only,b_only,both,neither", [(7, 1, 10, 2), (3, 3, 5, 5), (0, 6, 1, 1), (12, 4, 0, 9)])
def test_mcnemar_exact_and_chi2_against_hand_computation(a_only, b_only, both, neither):
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    result = mcnemar(a, b)
    assert (result["a_only"], result["b_only"]) == (a_only, b_only)
    assert result["p_exact"] == pytest.approx(_binomial_two_sided(a_only, a_only + b_only))
    statistic = (abs(a_only - b_only) - 1) ** 2 / (a_only + b_only)
    assert result["chi2"] == pytest.approx(statistic)
    assert result["p_chi2"] == pytest.approx(math.erfc(math.sqrt(statistic / 2)))  # chi2 sf, 1 dof


def test_mcnemar_without_discordant_pairs_finds_no_difference():
    assert mcnemar([True, False], [True, False])["p_exact"] == 1.0


@pytest.mark.parametrize("text,reason", [
    ("", "empty"), ("   ", "empty"),
    ("Predicted emotion: joy or fear", "ambiguous"), ("It is either anger or sadness.", "ambiguous"),
    ("Predicted emotion: banana", "not a class"), ("I cannot identify emotions in images.", "not a class"),
    ("Predict emotion: joy", ""),
])
def test_unparsed_reasons(text, reason):
    assert unparsed_reason(parse_prediction(text, LABELS)) == reason
