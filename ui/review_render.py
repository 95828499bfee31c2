"""Review-desk results as Markdown, tables and a chart (all text escaped: it comes from an LLM or a run file)."""

from __future__ import annotations

from emo_core.review import ReviewItem, attribute_rows, caption
from emo_core.review.conversation_text import strip_image_token

from .markdown_text import escape_markdown


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(escape_markdown(cell, one_line=True) or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def item_header(item: ReviewItem) -> str:
    overlap = " · reviewed by two annotators" if item.reviews_needed == 2 else ""
    return (f"**{escape_markdown(item.type, one_line=True)}** sample · label "
            f"**{escape_markdown(item.label or 'none', one_line=True)}** · prompt version "
            f"{escape_markdown(item.prompt_version, one_line=True)}{overlap}  \n"
            f"<small>run {escape_markdown(item.run_id, one_line=True)} · sample "
            f"{escape_markdown(item.sample_id, one_line=True)}</small>")


def attributes(item: ReviewItem) -> str:
    rows = attribute_rows(item.sample)
    text = _table(["attribute", "value", "source"], [list(row) for row in rows]) if rows else "*No attributes.*"
    found = caption(item.sample)
    return text + "\n\n**Caption:** " + (escape_markdown(found) if found else "*none (the run had no captioner)*")


def conversation(turns: list[dict]) -> str:
    return "\n\n".join(f"**{'Question' if turn['from'] == 'human' else 'Answer'}:** "
                       + escape_markdown(strip_image_token(str(turn['value'])))
                       for turn in turns)


def progress(figures: dict) -> str:
    mine = figures["decided"]
    return (f"**{escape_markdown(figures['annotator'], one_line=True)}**: {mine['accept']} accepted · "
            f"{mine['edit']} edited · {mine['reject']} rejected · {mine['skip']} skipped  \n"
            f"Queue: {figures['pending']} of {figures['total']} samples pending · {figures['conflicts']} "
            "waiting for adjudication")


def opinions(conflict) -> str:
    parts = []
    for number, opinion in enumerate(conflict.opinions, start=1):
        verdict = {"accept": "accepted as generated", "edit": "accepted with edits", "reject": "rejected"}[opinion.action]
        lines = [f"**Annotator {number} ({escape_markdown(opinion.annotator, one_line=True)})**: {verdict}"]
        if opinion.reason:
            lines.append(f"reason: {escape_markdown(opinion.reason, one_line=True)}")
        if opinion.note:
            lines.append(f"note: {escape_markdown(opinion.note)}")
        if opinion.action == "edit":
            lines.append("edited text:  \n" + escape_markdown(opinion.conversation_text))
        parts.append("  \n".join(lines))
    return "\n\n".join(parts)


def dashboard(figures: dict) -> str:
    counts = figures["counts"]
    states = ["pending", "accepted", "rejected", "conflict"]
    sections = ["### Samples by state and type",
                _table(["type", *states, "acceptance"],
                       [[kind, *(counts[kind][state] for state in states), _percent(figures["acceptance_by_type"][kind])]
                        for kind in counts]) if counts else "*Nothing imported yet.*",
                "### Acceptance by prompt version",
                _table(["prompt version", "acceptance"],
                       [[version, _percent(rate)] for version, rate in figures["acceptance_by_prompt_version"].items()]),
                "### Reject reasons",
                _table(["reason", "rejections"], [[reason, n] for reason, n in figures["reject_reasons"].items()]),
                "### Agreement (overlap samples both annotators decided)",
                _table(["type", "pairs", "observed agreement", "Cohen's kappa", "edits", "mean edit distance"],
                       [[kind, a["pairs"], _percent(a["observed_agreement"]), _number(a["kappa"]), a["edits"],
                         _number(a["mean_edit_distance"])] for kind, a in figures["agreement"].items()]),
                "<small>Kappa on accept (with or without edits) versus reject; n/a when undefined (one answer "
                "throughout). Edit distance: normalised Levenshtein, 0 unchanged, 1 all new.</small>",
                "### Annotators",
                _table(["annotator", "accept", "edit", "reject", "skip", "adjudicated"],
                       [[name, *(c.get(key, 0) for key in ("accept", "edit", "reject", "skip", "adjudicated"))]
                        for name, c in figures["annotators"].items()])]
    return "\n\n".join(sections)


def acceptance_frame(figures: dict):
    """Rows for the dashboard's bar plot: decided samples per type and outcome."""
    import pandas as pd

    rows = [{"type": kind, "outcome": outcome, "samples": counts[outcome]}
            for kind, counts in figures["counts"].items() for outcome in ("accepted", "rejected")]
    return pd.DataFrame(rows, columns=["type", "outcome", "samples"])
