"""A study's results for the researcher: the figures a paper reports, a chart and the raw votes.

    results = study_results(settings, "humour50")       # a JSON-ready dict (see ``study_results``)
    print(results_text(results)); write_chart(results, Path("chart.png"))
    export_votes(settings, "humour50", out)

Skips are not votes. A decisive vote is ``left`` or ``right``; ties ("equally funny") and "neither is
funny" are counted apart and left out of the shares, as are skips.
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ..settings import Settings
from . import stats
from .schema import study_store
from .studies import study_info

EXPORT_COLUMNS = ("rater", "item", "image", "left_system", "right_system", "choice", "time")
CATEGORIES = ("a", "b", "tie", "neither")  # an item's vote, relative to its own system_a / system_b
OUTLIER_ALPHA = 0.05
_CHUNK = 250  # bootstrap resamples drawn at once (bounds memory on large studies)


@dataclass(frozen=True)
class Vote:
    rater: int
    item: int
    image: str
    system_a: str
    system_b: str
    left_system: str
    right_system: str
    choice: str
    time: str

    @property
    def winner(self) -> str | None:
        return {"left": self.left_system, "right": self.right_system}.get(self.choice)

    @property
    def loser(self) -> str | None:
        return {"left": self.right_system, "right": self.left_system}.get(self.choice)

    @property
    def category(self) -> str | None:
        """a / b / tie / neither (which of the item's systems won, whatever side it was on); None for a skip."""
        if self.choice in ("tie", "neither"):
            return self.choice
        if self.winner is None:
            return None
        return "a" if self.winner == self.system_a else "b"


def load_votes(settings: Settings, name: str) -> list[Vote]:
    info = study_info(settings, name)
    rows = study_store(settings.data_dir).read(
        "SELECT r.number AS rater, i.number AS item, i.image_name, i.system_a, i.system_b, v.left_system, "
        "v.right_system, v.choice, v.time FROM study_votes v JOIN study_raters r ON r.id = v.rater_id "
        "JOIN study_items i ON i.id = v.item_id WHERE i.study_id = ? ORDER BY v.time, v.id", (info.id,))
    return [Vote(row["rater"], row["item"], row["image_name"], row["system_a"], row["system_b"], row["left_system"],
                 row["right_system"], row["choice"], row["time"]) for row in rows]


def export_votes(settings: Settings, name: str, out: IO[str]) -> int:
    """Writes one CSV row per trial (skips included) to ``out``; returns the number of rows."""
    votes = load_votes(settings, name)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for vote in votes:
        writer.writerow([vote.rater, vote.item, vote.image, vote.left_system, vote.right_system, vote.choice,
                         vote.time])
    return len(votes)


def study_results(settings: Settings, name: str, *, resamples: int = 2000, seed: int = 0) -> dict:
    """Everything the results page and ``results --json`` show, for study ``name``.

    Keys: ``votes`` (non-skip votes), ``decisive``, ``ties``, ``neither``, ``skips``, ``p_value`` (two
    systems: two-sided exact binomial test of the decisive votes against 50%; more systems: null, see
    each system's), ``systems`` {name: ``wins``, ``losses``, ``share`` of its decisive votes, Wilson
    ``ci_low``/``ci_high``, ``p_value``, ``cluster_ci_low``/``cluster_ci_high`` from the two-way
    bootstrap, and with more than two systems ``bt_strength`` with ``bt_ci_low``/``bt_ci_high``},
    ``left_side`` (position bias), ``fleiss_kappa``, ``items`` (per-item table), ``raters`` (per-rater
    counts, agreement with the others' majority and the outlier flag), ``bootstrap`` (its settings)."""
    info = study_info(settings, name)
    votes = load_votes(settings, name)
    store = study_store(settings.data_dir)
    items = store.read("SELECT number, image_name, system_a, system_b FROM study_items WHERE study_id = ? ORDER BY number",
                       (info.id,))
    raters = store.read("SELECT number, revoked FROM study_raters WHERE study_id = ? ORDER BY number", (info.id,))
    systems = sorted({row["system_a"] for row in items} | {row["system_b"] for row in items})
    counted = [vote for vote in votes if vote.choice != "skip"]
    decisive = [vote for vote in counted if vote.winner is not None]
    result = {
        "study": name, "created": info.created, "closed": info.closed, "n_items": info.items, "n_raters": info.raters,
        "votes": len(counted), "decisive": len(decisive),
        "ties": sum(vote.choice == "tie" for vote in votes), "neither": sum(vote.choice == "neither" for vote in votes),
        "skips": len(votes) - len(counted),
        "test": "two-sided exact binomial test of the decisive votes against 50%",
        "ci": "95% Wilson score interval; cluster_ci: 95% percentile bootstrap resampling raters and items together",
    }
    result["systems"] = _per_system(systems, decisive)
    result["p_value"] = result["systems"][systems[0]]["p_value"] if len(systems) == 2 else None
    left_wins = sum(vote.choice == "left" for vote in decisive)
    low, high = stats.wilson_interval(left_wins, len(decisive))
    result["left_side"] = {"wins": left_wins, "share": _share(left_wins, len(decisive)), "ci_low": _number(low),
                           "ci_high": _number(high), "p_value": _number(stats.binomial_p_value(left_wins, len(decisive)))}
    _bootstrap(result, systems, decisive, resamples, seed)
    result["bootstrap"] = {"resamples": resamples, "seed": seed, "resampled": "raters and items together (two-way)"}
    kappa_counts, kappa_items = _category_counts(counted)
    result["fleiss_kappa"] = _number(stats.fleiss_kappa(kappa_counts)) if kappa_items else None
    result["kappa_items"] = kappa_items
    result["items"] = _per_item(items, votes)
    result["raters"] = _per_rater(raters, votes)
    return result


def _per_system(systems: list[str], decisive: list[Vote]) -> dict:
    wins = Counter(vote.winner for vote in decisive)
    losses = Counter(vote.loser for vote in decisive)
    table = {}
    for system in systems:
        n = wins[system] + losses[system]
        low, high = stats.wilson_interval(wins[system], n)
        table[system] = {"wins": wins[system], "losses": losses[system], "decisive": n,
                         "share": _share(wins[system], n), "ci_low": _number(low), "ci_high": _number(high),
                         "p_value": _number(stats.binomial_p_value(wins[system], n))}
    return table


def _bootstrap(result: dict, systems: list[str], decisive: list[Vote], resamples: int, seed: int) -> None:
    """Two-way cluster intervals of each share and, with more than two systems, Bradley-Terry strengths."""
    table = result["systems"]
    for system in systems:
        table[system].update(cluster_ci_low=None, cluster_ci_high=None)
    if len(systems) > 2:
        for system in systems:
            table[system].update(bt_strength=None, bt_ci_low=None, bt_ci_high=None)
    if not decisive or resamples < 1:
        return
    rater_ids = {rater: index for index, rater in enumerate(sorted({vote.rater for vote in decisive}))}
    item_ids = {item: index for index, item in enumerate(sorted({vote.item for vote in decisive}))}
    raters = np.array([rater_ids[vote.rater] for vote in decisive])
    items = np.array([item_ids[vote.item] for vote in decisive])
    index = {system: position for position, system in enumerate(systems)}
    winners = np.array([index[vote.winner] for vote in decisive])
    losers = np.array([index[vote.loser] for vote in decisive])
    n = len(systems)
    pair_onehot = np.zeros((len(decisive), n * n))
    pair_onehot[np.arange(len(decisive)), winners * n + losers] = 1.0
    rng = np.random.default_rng(seed)
    bootstrap_wins = []
    for start in range(0, resamples, _CHUNK):
        weights = stats.two_way_weights(raters, items, min(_CHUNK, resamples - start), rng).astype(float)
        bootstrap_wins.append((weights @ pair_onehot).reshape(-1, n, n))
    bootstrap_wins = np.concatenate(bootstrap_wins)
    won = bootstrap_wins.sum(axis=2)
    played = won + bootstrap_wins.sum(axis=1)
    for position, system in enumerate(systems):
        usable = played[:, position] > 0
        if usable.any():
            shares = won[usable, position] / played[usable, position]
            table[system].update(cluster_ci_low=float(np.quantile(shares, 0.025)),
                                 cluster_ci_high=float(np.quantile(shares, 0.975)))
    if n > 2:
        observed = np.zeros((n, n))
        np.add.at(observed, (winners, losers), 1.0)
        strengths = stats.bradley_terry(observed)
        resampled = stats.bradley_terry(bootstrap_wins)
        for position, system in enumerate(systems):
            table[system].update(bt_strength=float(strengths[position]),
                                 bt_ci_low=float(np.quantile(resampled[:, position], 0.025)),
                                 bt_ci_high=float(np.quantile(resampled[:, position], 0.975)))


def _category_counts(counted: list[Vote]) -> tuple[np.ndarray, int]:
    """Items x CATEGORIES counts over items with at least two votes, and how many such items."""
    by_item: dict[int, Counter] = defaultdict(Counter)
    for vote in counted:
        by_item[vote.item][vote.category] += 1
    rows = [[counter[category] for category in CATEGORIES] for counter in by_item.values()
            if sum(counter.values()) >= 2]
    return np.array(rows, dtype=float).reshape(-1, len(CATEGORIES)), len(rows)


def _per_item(items, votes: list[Vote]) -> list[dict]:
    by_item: dict[int, Counter] = defaultdict(Counter)
    for vote in votes:
        by_item[vote.item][vote.category or "skip"] += 1
    table = []
    for row in items:
        counter = by_item[row["number"]]
        table.append({"item": row["number"], "image": row["image_name"], "system_a": row["system_a"],
                      "system_b": row["system_b"], "wins_a": counter["a"], "wins_b": counter["b"],
                      "ties": counter["tie"], "neither": counter["neither"], "skips": counter["skip"]})
    return table


def _per_rater(raters, votes: list[Vote]) -> list[dict]:
    """Per-rater choice counts, and agreement with the majority of the other raters of each item.

    An item counts for a rater when at least two others voted on it (skips aside) and their most
    frequent category is unique. A rater is flagged when, by a one-sided exact binomial test
    (Holm-corrected over raters), they agree with that majority less often than the other raters
    agree with theirs."""
    by_item: dict[int, Counter] = defaultdict(Counter)
    for vote in votes:
        if vote.category:
            by_item[vote.item][vote.category] += 1
    agreed: Counter = Counter()
    compared: Counter = Counter()
    for vote in votes:
        if not vote.category:
            continue
        others = by_item[vote.item].copy()
        others[vote.category] -= 1
        if sum(others.values()) < 2:
            continue
        ranked = others.most_common(2)
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            continue
        compared[vote.rater] += 1
        agreed[vote.rater] += ranked[0][0] == vote.category
    choices: dict[int, Counter] = defaultdict(Counter)
    for vote in votes:
        choices[vote.rater][vote.choice] += 1
    numbers = [row["number"] for row in raters]
    p_values = []
    for number in numbers:
        others_agreed = sum(agreed.values()) - agreed[number]
        others_compared = sum(compared.values()) - compared[number]
        if compared[number] and others_compared and 0 < others_agreed / others_compared:
            p_values.append(stats.binomial_p_value(agreed[number], compared[number], others_agreed / others_compared,
                                                   alternative="less"))
        else:
            p_values.append(math.nan)
    adjusted = stats.holm(p_values)
    table = []
    for row, p_value, p_adjusted in zip(raters, p_values, adjusted):
        number, counter = row["number"], choices[row["number"]]
        table.append({"rater": number, "revoked": bool(row["revoked"]),
                      "votes": sum(counter[choice] for choice in ("left", "right", "tie", "neither")),
                      **{choice: counter[choice] for choice in ("left", "right", "tie", "neither", "skip")},
                      "compared": compared[number], "agreed": agreed[number],
                      "agreement": _share(agreed[number], compared[number]),
                      "agreement_p": _number(p_adjusted), "flagged": bool(p_adjusted < OUTLIER_ALPHA)})
    return table


def results_text(results: dict) -> str:
    """A plain-text summary for the terminal."""
    lines = [f"Study {results['study']}: {results['n_items']} items, {results['n_raters']} raters"
             + (" (closed)" if results["closed"] else ""),
             f"votes {results['votes']} (decisive {results['decisive']}, ties {results['ties']}, "
             f"neither {results['neither']}), skips {results['skips']}"]
    for system, row in results["systems"].items():
        line = (f"  {system}: {row['wins']} of {row['decisive']} decisive votes = {_percent(row['share'])} "
                f"(95% Wilson {_percent(row['ci_low'])}-{_percent(row['ci_high'])}; raters+items bootstrap "
                f"{_percent(row['cluster_ci_low'])}-{_percent(row['cluster_ci_high'])}; p = {_p(row['p_value'])})")
        if "bt_strength" in row:
            line += (f"; Bradley-Terry {_fixed(row['bt_strength'])} "
                     f"({_fixed(row['bt_ci_low'])}-{_fixed(row['bt_ci_high'])})")
        lines.append(line)
    if results["p_value"] is not None:
        lines.append(f"exact binomial test against 50%: p = {_p(results['p_value'])}")
    side = results["left_side"]
    lines.append(f"left caption chosen in {_percent(side['share'])} of decisive votes (p = {_p(side['p_value'])})")
    lines.append(f"Fleiss' kappa over {results['kappa_items']} items with 2+ votes: {_fixed(results['fleiss_kappa'])}")
    flagged = [str(row["rater"]) for row in results["raters"] if row["flagged"]]
    lines.append("raters disagreeing with the majority beyond chance: " + (", ".join(flagged) or "none"))
    return "\n".join(lines)


def chart_figure(results: dict):
    """A bar chart of each system's share of its decisive votes with the 95% Wilson interval
    (a matplotlib ``Figure`` outside pyplot's global state)."""
    from matplotlib.figure import Figure

    names = list(results["systems"])
    rows = [results["systems"][name] for name in names]
    shares = [100 * (row["share"] or 0) for row in rows]
    # max(0, ...): at a share of 0 or 1 the interval's end may differ from it by a rounding error
    below = [max(0.0, 100 * ((row["share"] or 0) - (row["ci_low"] or 0))) for row in rows]
    above = [max(0.0, 100 * ((row["ci_high"] or 0) - (row["share"] or 0))) for row in rows]
    figure = Figure(figsize=(6.5, 1.4 + 0.55 * len(names)), layout="tight")
    axes = figure.subplots()
    axes.barh(names, shares, xerr=[below, above], color="#4c78a8", capsize=4)
    axes.axvline(50, color="#888", linestyle="--", linewidth=1)
    axes.set_xlim(0, 100)
    axes.set_xlabel("share of decisive votes won (%), 95% Wilson interval")
    axes.set_title(f"{results['decisive']} decisive votes; {results['ties']} ties, {results['neither']} neither",
                   fontsize=10)
    axes.invert_yaxis()
    return figure


def write_chart(results: dict, path: Path) -> Path:
    """``chart_figure`` saved as a PNG."""
    chart_figure(results).savefig(path, dpi=110)
    return Path(path)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
