"""Tables and the chart of the Instruction sensitivity tab, from the runs' summaries (no model logic).

Every piece of untrusted text (file names, model answers, typed instructions) goes into dataframes,
which show text as text, or through ``escape_markdown`` into the status Markdown."""

from __future__ import annotations

from emo_core.evaluate.report import OFFLINE_NOTE

from .markdown_text import escape_markdown


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def status_markdown(runs, dataset, note: str) -> str:
    lines = [f"**{escape_markdown(dataset.name, one_line=True)}**: {len(dataset.samples)} samples, "
             f"{len(dataset.labels)} classes."]
    for run in runs:
        summary = run.outcome.summary
        sensitivity = summary["sensitivity"]
        value = "undefined" if sensitivity["value"] is None else f"{sensitivity['value']:.4f}"
        line = f"- *{escape_markdown(run.name, one_line=True)}*: Sensitivity (accuracy) **{value}**"
        if sensitivity["note"]:
            line += " (0 by construction: " + escape_markdown(OFFLINE_NOTE.split(", so")[0]) + ")"
        significant = [t for t in summary["paired"] if t["p_exact"] < 0.05]
        line += f"; {summary['changed_count']} samples changed answer"
        line += "; McNemar p < 0.05 for " + ", ".join(f"{escape_markdown(t['a'])} vs {escape_markdown(t['b'])}"
                                                      for t in significant) if significant else \
            "; no pair of instructions differs at p < 0.05 (McNemar)"
        if not summary["complete"]:
            line += " (cancelled: partial)"
        lines.append(line + ".")
    if note:
        lines += ["", escape_markdown(note)]
    return "\n".join(lines)


def metric_rows(runs) -> list[list]:
    rows = []
    for run in runs:
        for instruction, m in run.outcome.summary["per_instruction"].items():
            if not m["n"]:
                continue
            low, high = m.get("intervals", {}).get("accuracy", (None, None))
            rows.append([run.name, instruction, m["n"], _percent(m["accuracy"]), _percent(m["uar"]),
                         _percent(m["macro_f1"]), _percent(m["weighted_f1"]), m["unparsed"],
                         f"{_percent(low)}–{_percent(high)}" if low is not None else ""])
    return rows


def confusion_rows(runs):
    import pandas as pd

    frames = []
    for run in runs:
        for instruction, m in run.outcome.summary["per_instruction"].items():
            if not m["n"]:
                continue
            confusion = m["confusion"]
            for label, counts in zip(confusion["rows"], confusion["matrix"]):
                frames.append({"model": run.name, "instruction": instruction, "true class": label,
                               **dict(zip(confusion["columns"], counts))})
    return pd.DataFrame(frames)


def changed_rows(runs):
    import pandas as pd

    rows = []
    for run in runs:
        for sample in run.outcome.summary["changed"]:
            row = {"model": run.name, "file": sample["path"], "label": sample["label"]}
            for instruction, answer in sample["answers"].items():
                row[instruction] = f"{answer['prediction'] or 'unparsed'}: {answer['answer']}"
            rows.append(row)
    return pd.DataFrame(rows) if rows else pd.DataFrame({"file": [], "label": []})


def chart(runs):
    """Grouped bars: accuracy per instruction, one group per model."""
    from matplotlib.figure import Figure

    names = [run.name for run in runs]
    instructions = list(dict.fromkeys(i for run in runs for i in run.outcome.summary["per_instruction"]))
    figure = Figure(figsize=(7, 3.2), dpi=100, layout="constrained")
    axes = figure.subplots()
    width = 0.8 / max(1, len(instructions))
    for position, instruction in enumerate(instructions):
        values = [100 * (run.outcome.summary["per_instruction"].get(instruction, {}).get("accuracy") or 0)
                  for run in runs]
        bars = axes.bar([x + position * width for x in range(len(runs))], values, width, label=instruction)
        axes.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8, padding=2)
    axes.set_xticks([x + width * (len(instructions) - 1) / 2 for x in range(len(runs))],
                    [name[:40] for name in names])
    axes.set_ylabel("accuracy %")
    axes.set_ylim(0, 105)
    axes.legend(fontsize=8, loc="upper right")
    axes.spines[["top", "right"]].set_visible(False)
    return figure
