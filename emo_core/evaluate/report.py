"""A run's summary from its predictions: ``summary.json`` (everything), ``summary.md`` and ``summary.csv``.

Per instruction (``per_instruction[id]``): ``n``, ``accuracy`` (= WAR), ``uar``, ``macro_f1``,
``weighted_f1``, ``per_class_recall``, ``confusion`` (plus an ``unparsed`` column), ``unparsed`` with
its reasons and examples, and bootstrap 95% ``intervals`` (``metrics``). Across instructions:
``sensitivity`` (std / mean, population std; see ``metrics.sensitivity``), ``paired`` (McNemar between
every two instructions on the samples both answered) and ``changed`` (samples whose prediction differs
between instructions). ``label_aliases`` lists every dataset label that was renamed to a class.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from collections import Counter
from pathlib import Path

from .metrics import METRICS, classification_metrics, mcnemar, sensitivity

UNPARSED_POLICY = "an unparsed answer (empty, ambiguous, not a class) is scored wrong and never mapped to a class"
OFFLINE_NOTE = ("the offline backend's label comes from measured cues (faces, expressions) and does not read the "
                "instruction, so its Sensitivity is 0 by construction: it is not a finding about instructions")
STD_KIND = "population standard deviation (ddof=0) across instructions, divided by their mean"
EXAMPLES = 5
CHANGED_SHOWN = 100
SENSITIVITY_METRIC = "accuracy"  # EmoVIT Sec. 4.3.2 reports Sensitivity of accuracy


def summarise(dataset, instructions, rows: list[dict], run: dict, *, complete: bool = True,
              n_boot: int = 1000) -> dict:
    labels = list(dataset.labels)
    per_instruction = {}
    for instruction in instructions:
        mine = [r for r in rows if r["instruction"] == instruction.id]
        entry = {"text": next(i["text"] for i in run["instructions"] if i["id"] == instruction.id),
                 "source": instruction.source}
        if mine:
            entry.update(classification_metrics([r["label"] for r in mine], [r["prediction"] for r in mine], labels,
                                                 n_boot=n_boot))
            failed = [r for r in mine if r["prediction"] is None]
            entry["unparsed_reasons"] = dict(Counter(r["unparsed_reason"] for r in failed))
            entry["unparsed_examples"] = [{"path": r["path"], "answer": r["answer"][:300],
                                           "unparsed_reason": r["unparsed_reason"], "abstained": r.get("abstained", "")}
                                          for r in failed[:EXAMPLES]]
        else:
            entry.update({"n": 0})
        per_instruction[instruction.id] = entry
    answered = [i.id for i in instructions if per_instruction[i.id]["n"]]
    by_metric = {metric: sensitivity([per_instruction[i][metric] for i in answered]) for metric in METRICS}
    headline = by_metric[SENSITIVITY_METRIC]
    summary = {
        "complete": complete,
        "dataset": {"name": dataset.name, "class_set": dataset.choice.key, "labels": labels, "source": dataset.source,
                    "layout": dataset.layout, "samples": len(dataset.samples), "samples_in_dataset": dataset.total,
                    "modality": "video" if dataset.video else "image"},
        "run": run,
        "unparsed_policy": UNPARSED_POLICY,
        "label_aliases": {"used": dataset.aliases_used,
                          "rule": "a dataset label outside the class set is renamed only by an explicit alias "
                                  "(emo_core.evaluate.datasets.ALIASES or --alias FROM=TO)"},
        "per_instruction": per_instruction,
        "sensitivity": {"metric": SENSITIVITY_METRIC, "std": STD_KIND, "value": headline["value"],
                        "value_sample_std": headline["value_sample_std"], "mean": headline["mean"],
                        "instructions": answered, "per_metric": by_metric, "datasets_averaged": 1,
                        "note": "" if run.get("reads_instruction", True) else OFFLINE_NOTE},
        "paired": _paired(rows, answered),
    }
    summary.update(_changed(rows, answered))
    return summary


def _paired(rows: list[dict], ids: list[str]) -> list[dict]:
    correct = {i: {r["sha256"]: r["prediction"] == r["label"] for r in rows if r["instruction"] == i} for i in ids}
    tests = []
    for a, b in itertools.combinations(ids, 2):
        shared = sorted(set(correct[a]) & set(correct[b]))
        result = mcnemar([correct[a][s] for s in shared], [correct[b][s] for s in shared])
        tests.append({"a": a, "b": b, "n": len(shared), "test": "McNemar", **result})
    return tests


def _changed(rows: list[dict], ids: list[str]) -> dict:
    by_sample: dict[str, dict] = {}
    for r in rows:
        if r["instruction"] in ids:
            entry = by_sample.setdefault(r["sha256"], {"path": r["path"], "label": r["label"], "answers": {}})
            entry["answers"][r["instruction"]] = {"prediction": r["prediction"], "answer": r["answer"][:300]}
    changed = [e for e in by_sample.values()
               if len(e["answers"]) > 1 and len({a["prediction"] for a in e["answers"].values()}) > 1]
    return {"changed_count": len(changed), "changed": changed[:CHANGED_SHOWN]}


def write(out_dir: Path, summary: dict) -> None:
    out_dir = Path(out_dir)
    _atomic(out_dir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=1))
    _atomic(out_dir / "summary.md", to_markdown(summary))
    _atomic(out_dir / "summary.csv", to_csv(summary))


def _atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _cell(text: str) -> str:
    """Untrusted text (model answers, file names) as a plain Markdown table cell."""
    return "`" + " ".join(str(text).replace("`", "'").replace("|", "/").split())[:200] + "`"


def to_markdown(summary: dict) -> str:
    data, run = summary["dataset"], summary["run"]
    lines = [f"# Evaluation: {data['name']} ({data['class_set']}, {data['samples']} {data['modality']}s)", "",
             f"Backend **{run['backend']}**" + (f", model {_cell(run['model'])}" if run["model"] else "")
             + f", method **{run['method']}**." + ("" if summary["complete"] else " **Cancelled: partial results.**"),
             "", f"Unparsed answers: {UNPARSED_POLICY}.", "",
             "| instruction | n | accuracy (WAR) % | UAR % | macro F1 % | weighted F1 % | unparsed |",
             "|---|---|---|---|---|---|---|"]
    for instruction, m in summary["per_instruction"].items():
        if not m["n"]:
            lines.append(f"| {instruction} | 0 | – | – | – | – | – |")
            continue
        cells = [f"{_percent(m[k])} [{_percent(m['intervals'][k][0])}, {_percent(m['intervals'][k][1])}]"
                 if m.get("intervals") else _percent(m[k]) for k in METRICS]
        lines.append(f"| {instruction} | {m['n']} | " + " | ".join(cells) + f" | {m['unparsed']} |")
    lines += ["", "Brackets: bootstrap 95% intervals.", ""]
    s = summary["sensitivity"]
    value = "undefined (fewer than two instructions, or a mean of 0)" if s["value"] is None else f"{s['value']:.4f}"
    lines.append(f"**Sensitivity** ({s['metric']}; {s['std']}): {value}"
                 + (f" (with the sample standard deviation: {s['value_sample_std']:.4f})"
                    if s["value_sample_std"] is not None else "") + ".")
    if s["note"]:
        lines += ["", f"*Note:* {s['note']}."]
    if summary["paired"]:
        lines += ["", "| McNemar | n | only first right | only second right | p (exact) | p (chi², corrected) |",
                  "|---|---|---|---|---|---|"]
        for t in summary["paired"]:
            lines.append(f"| {t['a']} vs {t['b']} | {t['n']} | {t['a_only']} | {t['b_only']} | {t['p_exact']:.4g} "
                         f"| {t['p_chi2']:.4g} |")
    examples = [(i, e) for i, m in summary["per_instruction"].items() for e in m.get("unparsed_examples", [])]
    if examples:
        lines += ["", "Unparsed answers (examples):", "", "| instruction | file | reason | answer |", "|---|---|---|---|"]
        lines += [f"| {i} | {_cell(e['path'])} | {e['unparsed_reason']} | {_cell(e['answer'])} |" for i, e in examples]
    used = summary["label_aliases"]["used"]
    lines += ["", "Label aliases used: " + (", ".join(f"{k} ({v})" for k, v in used.items()) if used else "none") + "."]
    lines += ["", f"Samples whose prediction changed between instructions: {summary['changed_count']}."]
    return "\n".join(lines) + "\n"


def to_csv(summary: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["dataset", "class_set", "backend", "model", "method", "instruction", "n"]
    for metric in METRICS:
        header += [metric, f"{metric}_low", f"{metric}_high"]
    writer.writerow(header + ["unparsed", "sensitivity_accuracy"])
    data, run = summary["dataset"], summary["run"]
    for instruction, m in summary["per_instruction"].items():
        row = [data["name"], data["class_set"], run["backend"], run["model"], run["method"], instruction, m["n"]]
        for metric in METRICS:
            interval = m.get("intervals", {}).get(metric, ["", ""])
            row += [m.get(metric, ""), *interval]
        writer.writerow(row + [m.get("unparsed", ""), summary["sensitivity"]["value"]])
    return buffer.getvalue()
