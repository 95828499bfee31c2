"""``compare RUN_DIR...``: one Markdown table in the layout of the papers' tables.

Datasets are columns, system x instruction are rows (EmoVIT Table 1's layout). A cell holds the
figure the papers report for that dataset: accuracy % for the image sets, weighted F1 for MER2023
and MERR (Emotion-LLaMA's MER2023 figure), UAR / WAR % for DFEW. The last column is our Sensitivity
of accuracy averaged over the datasets a system was run on (population std / mean). Below our rows,
the papers' published numbers for the same datasets, each row labelled as published with its table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ..errors import InvalidInputError
from ..model_allowlist import display_name
from .published import PUBLISHED, SENSITIVITY_NOTE
from .report import OFFLINE_NOTE


def load_summaries(run_dirs: list[str | Path]) -> list[dict]:
    summaries = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "summary.json"
        if not path.is_file():
            raise InvalidInputError(f"{Path(run_dir).name}: no summary.json (run the evaluation first)")
        summaries.append(json.loads(path.read_text(encoding="utf-8")))
    if not summaries:
        raise InvalidInputError("name one or more run folders to compare")
    return summaries


def _system(summary: dict) -> str:
    run = summary["run"]
    return display_name(run["backend"], run["model"]) + ("" if run["method"] == "generate" else f" ({run['method']})")


def _ours(dataset: str, metrics: dict) -> str:
    if dataset == "DFEW":
        return f"{100 * metrics['uar']:.2f} / {100 * metrics['accuracy']:.2f}"
    if dataset in ("MER2023", "MERR"):
        return f"{metrics['weighted_f1']:.4f}"
    return f"{100 * metrics['accuracy']:.2f}"


def _published(dataset: str, value) -> str:
    if isinstance(value, tuple):
        return " / ".join(f"{v:.2f}" for v in value)
    return f"{value:.4f}" if value < 1 else f"{value:.2f}"


def compare_table(summaries: list[dict]) -> str:
    datasets = list(dict.fromkeys(s["dataset"]["name"] for s in summaries))
    cells: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    sensitivities: dict[str, list[float]] = defaultdict(list)
    cue_only = set()
    for summary in summaries:
        system, dataset = _system(summary), summary["dataset"]["name"]
        for instruction, metrics in summary["per_instruction"].items():
            if metrics["n"]:
                cells[(system, instruction)][dataset] = _ours(dataset, metrics) + ("" if summary["complete"] else "*")
        if summary["sensitivity"]["value"] is not None:
            sensitivities[system].append(summary["sensitivity"]["value"])
        if not summary["run"].get("reads_instruction", True):
            cue_only.add(system)
    header = ["system", "instruction"] + [_column(d) for d in datasets] + ["Sensitivity (accuracy, mean over datasets)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (system, instruction), row in cells.items():
        values = sensitivities.get(system)
        sens = "–" if not values else f"{sum(values) / len(values):.4f}" + (" (0 by construction)" if system in cue_only else "")
        lines.append("| " + " | ".join([system, instruction] + [row.get(d, "–") for d in datasets] + [sens]) + " |")
    notes = []
    for published in PUBLISHED:
        shown = [d for d in datasets if d in published.values]
        if not shown:
            continue
        row = []
        for d in datasets:
            value = published.values.get(d)
            row.append("–" if value is None else _published(d, value) + ("†" if d in published.notes else ""))
            if d in published.notes and d in shown:
                notes.append(f"† {published.notes[d]}")
        lines.append("| " + " | ".join([f"{published.system} (published, {published.source})", "not stated"] + row
                                        + ["–"]) + " |")
    lines += ["", "Ours: accuracy % for image datasets, weighted F1 for MER2023 / MERR, UAR / WAR % for DFEW; "
              "* marks a cancelled (partial) run. " + SENSITIVITY_NOTE + "."]
    if cue_only:
        lines.append(f"Offline: {OFFLINE_NOTE}.")
    lines += sorted(set(notes))
    return "\n".join(lines) + "\n"


def _column(dataset: str) -> str:
    return {"DFEW": "DFEW (UAR / WAR)", "MER2023": "MER2023 (weighted F1)", "MERR": "MERR (weighted F1)"}.get(dataset, dataset)
