"""Statistics of the user study against published worked examples and independent computations.

    .venv/bin/python -m pytest -q tests/test_study_stats.py
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import binomtest

from emo_core import Settings
from emo_core.study import VoteDesk, study_results
from emo_core.study.stats import (bradley_terry, fleiss_kappa, holm, two_way_weights, weighted_share_interval,
                                  wilson_interval)
from tests.study_helpers import choice_for, make_study


def independent_wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson (1927) from the quadratic (p - phat)^2 = z^2 p (1 - p) / n, solved with numpy's root finder."""
    phat = k / n
    roots = np.roots([1 + z * z / n, -(2 * phat + z * z / n), phat * phat])
    return float(min(roots)), float(max(roots))


@pytest.mark.parametrize("k, n, low, high", [
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (score interval)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_newcombes_worked_examples(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize("k, n", [(30, 50), (7, 9), (1, 3), (500, 1000), (2, 200)])
def test_wilson_interval_matches_the_quadratic_and_scipy(k, n):
    ours = wilson_interval(k, n)
    assert ours == pytest.approx(independent_wilson(k, n), abs=1e-9)
    scipy_ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours == pytest.approx((scipy_ci.low, scipy_ci.high), abs=1e-9)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_fleiss_kappa_matches_the_published_example():
    # Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters, 5 categories;
    # P-bar = 0.378, P_e = 0.213, kappa = 0.210.
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    # items with fewer than two ratings do not count; a row of one rating changes nothing
    assert fleiss_kappa(np.vstack([table, [[0, 0, 1, 0, 0]]])) == pytest.approx(fleiss_kappa(table))
    assert math.isnan(fleiss_kappa(np.array([[2, 0], [3, 0]])))  # all in one category: chance agreement is 1


def test_bradley_terry_recovers_a_known_case_and_the_maximum_likelihood():
    # Wins that are exactly the expected wins of strengths 4:2:1 (1 beats 2 in 40 of 60 = 4/6, 1 beats 3 in
    # 40 of 50 = 4/5, 2 beats 3 in 20 of 30 = 2/3): the maximum-likelihood strengths are 4/7, 2/7, 1/7.
    wins = np.array([[0, 40, 40], [20, 0, 20], [10, 10, 0]])
    assert bradley_terry(wins) == pytest.approx([4 / 7, 2 / 7, 1 / 7], abs=1e-6)
    # random tournaments: the same optimum as a general-purpose optimiser on the log-likelihood
    rng = np.random.default_rng(4)
    for _ in range(3):
        wins = rng.integers(1, 30, size=(4, 4)) * (1 - np.eye(4, dtype=int))

        def negative_log_likelihood(log_strength):
            diff = log_strength[:, None] - log_strength[None, :]
            return float((wins * np.logaddexp(0, -diff)).sum())

        fitted = minimize(negative_log_likelihood, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
        expected = np.exp(fitted) / np.exp(fitted).sum()
        assert bradley_terry(wins) == pytest.approx(expected, abs=1e-5)
    batch = np.stack([np.array([[0, 40, 40], [20, 0, 20], [10, 10, 0]]), np.array([[0, 5, 5], [5, 0, 5], [5, 5, 0]])])
    assert bradley_terry(batch)[1] == pytest.approx([1 / 3] * 3)
    undefeated = bradley_terry(np.array([[0, 3, 3], [0, 0, 2], [0, 1, 0]]))
    assert np.isfinite(undefeated).all() and undefeated[0] == undefeated.max()


def test_holm_adjusts_by_rank():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, then max(0.06, 0.04*1) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.5, math.nan, 0.9])
    assert adjusted[0] == pytest.approx(1.0) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(1.0)


def _crossed_votes(n_raters: int, n_items: int, wins_for):
    raters, items, won = [], [], []
    for rater in range(n_raters):
        for item in range(n_items):
            raters.append(rater)
            items.append(item)
            won.append(wins_for(rater, item))
    return np.array(raters), np.array(items), np.array(won, dtype=float)


def test_two_way_bootstrap_widens_only_when_raters_disagree_among_themselves():
    rng = random.Random(1)
    n_raters, n_items = 20, 30
    resample_rng = np.random.default_rng(0)
    # independent votes: about as wide as the Wilson interval of the 600 votes
    raters, items, won = _crossed_votes(n_raters, n_items, lambda r, i: rng.random() < 0.6)
    weights = two_way_weights(raters, items, 2000, resample_rng)
    low, high = weighted_share_interval(weights, won, np.ones_like(won))
    wilson_low, wilson_high = wilson_interval(int(won.sum()), len(won))
    assert low < won.mean() < high
    assert 0.6 < (high - low) / (wilson_high - wilson_low) < 1.7
    # half the raters always pick one system, half the other: the votes are 20 opinions, not 600
    raters, items, won = _crossed_votes(n_raters, n_items, lambda r, i: r % 2 == 0)
    weights = two_way_weights(raters, items, 2000, resample_rng)
    low, high = weighted_share_interval(weights, won, np.ones_like(won))
    wilson_low, wilson_high = wilson_interval(int(won.sum()), len(won))
    assert (high - low) > 3 * (wilson_high - wilson_low)
    # a vote's weight is (times its rater was drawn) x (times its item was drawn)
    # over a full 2 x 2 grid: w(r0,i0) w(r1,i1) == w(r0,i1) w(r1,i0), and the weights sum to 2 raters x 2 items
    weights = two_way_weights(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), 200, np.random.default_rng(3))
    assert (weights[:, 0] * weights[:, 3] == weights[:, 1] * weights[:, 2]).all()
    assert (weights.sum(axis=1) == 4).all() and len(np.unique(weights[:, 0])) > 1


def _vote_outcomes(settings, tmp_path, name, n_items, n_raters, outcomes_by_rater):
    study = make_study(settings, tmp_path / name, name, n_items, n_raters)
    desk = VoteDesk(settings)
    for token, outcomes in zip(study.tokens, outcomes_by_rater):
        for outcome in outcomes:
            shown = desk.next_item(name, token)
            desk.cast(name, token, shown.item, choice_for(study.captions, shown.left, shown.right, outcome))
    return study


def test_thirty_of_fifty_decisive_votes_is_sixty_percent(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", vote_rate_per_rater=0, vote_rate_per_address=0)
    outcomes = ["model-x"] * 30 + ["human"] * 20 + ["tie"] * 4 + ["neither"] * 3 + ["skip"] * 3
    random.Random(7).shuffle(outcomes)
    _vote_outcomes(settings, tmp_path, "sixty", 12, 5, [outcomes[i * 12:(i + 1) * 12] for i in range(5)])
    results = study_results(settings, "sixty", resamples=500)
    assert (results["votes"], results["decisive"], results["ties"], results["neither"], results["skips"]) == (57, 50, 4, 3, 3)
    ours, theirs = results["systems"]["model-x"], results["systems"]["human"]
    assert (ours["wins"], ours["losses"], theirs["wins"]) == (30, 20, 20)
    assert ours["share"] == pytest.approx(0.6) and theirs["share"] == pytest.approx(0.4)
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx(independent_wilson(30, 50), abs=1e-9)
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx((0.4618, 0.7239), abs=1e-4)
    assert results["p_value"] == pytest.approx(binomtest(30, 50, 0.5).pvalue)
    assert results["p_value"] == pytest.approx(0.2026, abs=1e-4)
    assert ours["cluster_ci_low"] < 0.6 < ours["cluster_ci_high"]
    assert sum(row["wins_a"] for row in results["items"]) == 30  # system_a of every pair is model-x
    assert sum(row["votes"] for row in results["raters"]) == 57
    assert results["left_side"]["share"] == pytest.approx(
        sum(row["left"] for row in results["raters"]) / 50)


def test_more_than_two_systems_get_bradley_terry_strengths(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", vote_rate_per_rater=0, vote_rate_per_address=0)
    from emo_core.study import create_study, invite_raters
    from tests.study_helpers import token_of, write_images, write_pairs

    images = write_images(tmp_path / "images", 6)
    systems = ["alpha", "beta", "gamma"]
    strength = {"alpha": 4, "beta": 2, "gamma": 1}
    rows, captions = [], {}
    for index, image in enumerate(images):
        for first, second in (("alpha", "beta"), ("alpha", "gamma"), ("beta", "gamma")):
            texts = (f"joke {index} {len(rows)} one", f"joke {index} {len(rows)} two")
            captions[texts[0]], captions[texts[1]] = first, second
            rows.append([str(image), texts[0], first, texts[1], second])
    create_study(settings, "three", write_pairs(tmp_path / "pairs.csv", rows))
    tokens = [token_of(link) for _, link in invite_raters(settings, "three", 12)]
    desk, rng = VoteDesk(settings), random.Random(3)
    for token in tokens:
        while (shown := desk.next_item("three", token)) is not None:
            a, b = captions[shown.left], captions[shown.right]
            winner = a if rng.random() < strength[a] / (strength[a] + strength[b]) else b
            desk.cast("three", token, shown.item, choice_for(captions, shown.left, shown.right, winner))
    results = study_results(settings, "three", resamples=300)
    assert results["p_value"] is None
    bt = {name: results["systems"][name]["bt_strength"] for name in systems}
    assert bt["alpha"] > bt["beta"] > bt["gamma"] and sum(bt.values()) == pytest.approx(1.0)
    for name in systems:
        row = results["systems"][name]
        assert row["bt_ci_low"] <= row["bt_strength"] <= row["bt_ci_high"]
        assert row["decisive"] == 12 * 12


def test_a_rater_who_contradicts_the_majority_is_flagged(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", vote_rate_per_rater=0, vote_rate_per_address=0)
    rng = random.Random(5)
    honest = [["model-x" if rng.random() < 0.85 else "human" for _ in range(20)] for _ in range(7)]
    contrarian = [["human"] * 20]
    _vote_outcomes(settings, tmp_path, "outlier", 20, 8, honest + contrarian)
    results = study_results(settings, "outlier", resamples=200)
    flagged = [row["rater"] for row in results["raters"] if row["flagged"]]
    assert flagged == [8]
    eight = results["raters"][7]
    assert eight["agreement"] < 0.2 and eight["compared"] == 20
    assert results["fleiss_kappa"] is not None and results["kappa_items"] == 20
