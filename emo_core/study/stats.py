"""Statistics of pairwise votes, on plain arrays (no store, no study objects).

Written by hand where no installed library has them, each tested against a published worked example
or an independent computation: the Wilson score interval (Wilson 1927; Newcombe 1998, method 3),
Bradley-Terry strengths by Hunter's (2004) MM algorithm, Fleiss' (1971) kappa (generalised to items
with different numbers of raters), Holm's step-down correction, and a bootstrap that resamples raters
and items together (votes cluster by both). The exact binomial test is scipy's.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

Z_95 = 1.959963984540054  # the 97.5% quantile of the standard normal


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a proportion; (nan, nan) when there are no trials."""
    if trials <= 0:
        return math.nan, math.nan
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_p_value(successes: int, trials: int, p: float = 0.5, alternative: str = "two-sided") -> float:
    """Exact binomial test (scipy) of ``successes`` out of ``trials`` against ``p`` (nan without trials)."""
    if trials <= 0:
        return math.nan
    from scipy.stats import binomtest

    return float(binomtest(successes, trials, p, alternative=alternative).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the input's order; nan stays nan."""
    indexed = [(p, index) for index, p in enumerate(p_values) if not math.isnan(p)]
    indexed.sort()
    adjusted = [math.nan] * len(p_values)
    running, m = 0.0, len(indexed)
    for rank, (p, index) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of an items x categories matrix of rating counts.

    Items may have different numbers of raters (each item's agreement uses its own count); items with
    fewer than two ratings are left out. nan when fewer than two items remain or agreement by chance is
    certain (every rating in one category)."""
    counts = np.asarray(counts, dtype=float)
    per_item = counts.sum(axis=1)
    counts, per_item = counts[per_item >= 2], per_item[per_item >= 2]
    if len(counts) < 2:
        return math.nan
    agreement = ((counts * (counts - 1)).sum(axis=1) / (per_item * (per_item - 1))).mean()
    shares = counts.sum(axis=0) / per_item.sum()
    chance = float((shares ** 2).sum())
    if chance >= 1.0:
        return math.nan
    return float((agreement - chance) / (1 - chance))


def bradley_terry(wins: np.ndarray, *, iterations: int = 5_000, tolerance: float = 1e-9) -> np.ndarray:
    """Bradley-Terry strengths (summing to 1) from ``wins[..., i, j]`` = times i beat j, by Hunter's (2004)
    MM updates; a stack of matrices (bootstrap resamples) is fitted at once.

    A system that never won (or never lost) has no finite estimate: for such a matrix a pseudo-count of
    0.1 of a win each way is added between every two systems that met, as is usual."""
    wins = np.array(wins, dtype=float)
    single = wins.ndim == 2
    wins = wins[None] if single else wins
    games = wins + np.swapaxes(wins, -1, -2)
    won, lost = wins.sum(axis=-1), wins.sum(axis=-2)
    boundary = ((won == 0) | (lost == 0)).any(axis=-1)
    wins = wins + 0.1 * (games > 0) * boundary[:, None, None]
    games = wins + np.swapaxes(wins, -1, -2)
    total_wins = wins.sum(axis=-1)
    strength = np.full(total_wins.shape, 1.0 / wins.shape[-1])
    for _ in range(iterations):
        pair_sums = strength[..., :, None] + strength[..., None, :]
        denominator = (games / np.where(games > 0, pair_sums, 1.0)).sum(axis=-1)
        updated = np.where(denominator > 0, total_wins / np.where(denominator > 0, denominator, 1.0), strength)
        updated /= updated.sum(axis=-1, keepdims=True)
        converged = np.abs(updated - strength).max() < tolerance
        strength = updated
        if converged:
            break
    return strength[0] if single else strength


def two_way_weights(rater_index: np.ndarray, item_index: np.ndarray, resamples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Bootstrap weights (resamples x votes) that resample raters and items together.

    Each resample draws raters with replacement and, independently, items with replacement; a vote
    counts (times its rater was drawn) x (times its item was drawn). This is the pigeonhole bootstrap
    for data crossed by two random factors (Owen 2007), so the interval widens when raters, or items,
    disagree among themselves."""
    rater_index, item_index = np.asarray(rater_index), np.asarray(item_index)
    n_raters, n_items = int(rater_index.max()) + 1, int(item_index.max()) + 1
    rater_draws = rng.multinomial(n_raters, np.full(n_raters, 1 / n_raters), size=resamples)
    item_draws = rng.multinomial(n_items, np.full(n_items, 1 / n_items), size=resamples)
    return rater_draws[:, rater_index] * item_draws[:, item_index]


def weighted_share_interval(weights: np.ndarray, won: np.ndarray, decisive: np.ndarray,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the share sum(w * won) / sum(w * decisive) over bootstrap weight rows."""
    numerator = weights @ np.asarray(won, dtype=float)
    denominator = weights @ np.asarray(decisive, dtype=float)
    shares = numerator[denominator > 0] / denominator[denominator > 0]
    if len(shares) == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2
    return float(np.quantile(shares, tail)), float(np.quantile(shares, 1 - tail))
