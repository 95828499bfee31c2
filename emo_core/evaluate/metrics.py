"""The papers' metrics on one set of predictions, with unparsed answers scored wrong, never mapped.

Point estimates come from scikit-learn (``accuracy_score``, ``recall_score``, ``f1_score``,
``confusion_matrix``); an unparsed answer (``None``) is a prediction outside every class, so it counts
against its true class's recall and never for any class. Over the classes present in the true labels:

- accuracy (= WAR, weighted average recall), UAR (= macro recall, balanced accuracy);
- macro F1 and weighted F1 (weighted by true-class support: MER2023's figure);
- per-class recall, and the confusion matrix with one more column, ``unparsed``.

Bootstrap 95% intervals (percentile, ``n_boot`` resamples of the samples with a fixed seed) are
computed from resampled confusion matrices in one vectorised pass (``metrics_from_confusion``, checked
against scikit-learn in the tests).

Across instructions: ``sensitivity`` (MultiInstruct's Sensitivity, used by EmoVIT Sec. 4.3.2): the
standard deviation of a metric across instructions divided by its mean; the **population** standard
deviation (ddof=0) is the figure, the sample one (ddof=1) is given beside it. ``mcnemar``: the exact
(binomial) McNemar test of two instructions on the same samples, plus the chi-squared version with
continuity correction.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

UNPARSED = "unparsed"
_SENTINEL = "\x00unparsed"  # a prediction no class can equal
METRICS = ("accuracy", "uar", "macro_f1", "weighted_f1")


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str | None], labels: Sequence[str], *,
                           n_boot: int = 1000, seed: int = 0) -> dict:
    """Metrics of predictions ``y_pred`` (None = unparsed) against ``y_true`` over the class set ``labels``."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

    labels = list(labels)
    if not len(y_true):
        raise ValueError("no predictions to score")
    truth = list(y_true)
    predicted = [_SENTINEL if p is None else p for p in y_pred]
    present = [label for label in labels if label in set(truth)]
    square = confusion_matrix(truth, predicted, labels=labels + [_SENTINEL])
    matrix = square[: len(labels), :]  # rows: true classes; columns: classes + unparsed
    recalls = recall_score(truth, predicted, labels=present, average=None, zero_division=0)
    result = {
        "n": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
        "uar": float(recall_score(truth, predicted, labels=present, average="macro", zero_division=0)),
        "macro_f1": float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(truth, predicted, labels=present, average="weighted", zero_division=0)),
        "unparsed": int(sum(p is None for p in y_pred)),
        "per_class_recall": {label: float(r) for label, r in zip(present, recalls)},
        "support": {label: int(matrix[i].sum()) for i, label in enumerate(labels)},
        "confusion": {"rows": labels, "columns": labels + [UNPARSED], "matrix": matrix.tolist()},
    }
    result["intervals"] = bootstrap_intervals(truth, list(y_pred), labels, n_boot=n_boot, seed=seed)
    return result


def confusion_counts(y_true_index: np.ndarray, y_pred_index: np.ndarray, k: int) -> np.ndarray:
    """(..., k, k+1) confusion counts from index arrays of shape (..., n); prediction index k = unparsed."""
    batch = y_true_index.shape[:-1]
    flat_batch = int(np.prod(batch)) if batch else 1
    offsets = np.arange(flat_batch).reshape(batch + (1,)) * (k * (k + 1)) if batch else 0
    cells = offsets + y_true_index * (k + 1) + y_pred_index
    counts = np.bincount(np.ravel(cells), minlength=flat_batch * k * (k + 1))
    return counts.reshape(batch + (k, k + 1))


def metrics_from_confusion(counts: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, uar, macro_f1, weighted_f1 of (..., k, k+1) confusion counts, over the classes present
    (non-zero support) in each matrix; the same definitions as ``classification_metrics``."""
    counts = np.asarray(counts, dtype=float)
    k = counts.shape[-2]
    tp = np.diagonal(counts[..., :k], axis1=-2, axis2=-1)
    support = counts.sum(axis=-1)
    predicted = counts[..., :k].sum(axis=-2)
    present = support > 0
    n_present = present.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(present, tp / np.where(present, support, 1), 0.0)
        f1 = np.where(present, 2 * tp / np.where(present, support + predicted, 1), 0.0)
        return {
            "accuracy": tp.sum(axis=-1) / support.sum(axis=-1),
            "uar": recall.sum(axis=-1) / n_present,
            "macro_f1": f1.sum(axis=-1) / n_present,
            "weighted_f1": (f1 * support).sum(axis=-1) / support.sum(axis=-1),
        }


def bootstrap_intervals(y_true: Sequence[str], y_pred: Sequence[str | None], labels: Sequence[str], *,
                        n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of ``METRICS`` (resampling samples with replacement)."""
    if n_boot <= 0:
        return {}
    labels = list(labels)
    index = {label: i for i, label in enumerate(labels)}
    truth = np.array([index[t] for t in y_true])
    predicted = np.array([len(labels) if p is None else index[p] for p in y_pred])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(truth), size=(n_boot, len(truth)))
    values = metrics_from_confusion(confusion_counts(truth[draws], predicted[draws], len(labels)))
    tail = (1 - level) / 2 * 100
    return {name: [float(np.nanpercentile(v, tail)), float(np.nanpercentile(v, 100 - tail))]
            for name, v in values.items()}


def sensitivity(values: Sequence[float]) -> dict:
    """Std / mean of a metric across instructions: ``value`` with the population std (ddof=0), and
    ``value_sample_std`` with the sample std (ddof=1). None where undefined (fewer than two values, mean 0)."""
    values = np.asarray(list(values), dtype=float)
    out = {"values": values.tolist(), "mean": float(values.mean()) if len(values) else None,
           "std_population": None, "std_sample": None, "value": None, "value_sample_std": None}
    if len(values) < 2:
        return out
    out["std_population"], out["std_sample"] = float(values.std(ddof=0)), float(values.std(ddof=1))
    if out["mean"] > 0:
        out["value"] = out["std_population"] / out["mean"]
        out["value_sample_std"] = out["std_sample"] / out["mean"]
    return out


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """McNemar's test on paired outcomes: ``a_only`` = A right and B wrong, ``b_only`` the reverse.
    ``p_exact``: two-sided binomial test of a_only among the discordant pairs (p = 0.5);
    ``p_chi2``: chi-squared with continuity correction, 1 degree of freedom."""
    from scipy.stats import binomtest, chi2

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("McNemar's test needs the same samples under both instructions")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = a_only + b_only
    if discordant == 0:
        return {"a_only": 0, "b_only": 0, "p_exact": 1.0, "chi2": 0.0, "p_chi2": 1.0}
    statistic = (abs(a_only - b_only) - 1) ** 2 / discordant
    return {"a_only": a_only, "b_only": b_only, "p_exact": float(binomtest(a_only, discordant, 0.5).pvalue),
            "chi2": float(statistic), "p_chi2": float(chi2.sf(statistic, 1))}
