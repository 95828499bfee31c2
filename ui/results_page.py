"""The researcher's **Results** page of the user study: pick a study, read its statistics, download
the raw votes and the full results.

A private page (``PAGE``, mounted at ``/results`` by ``app.PRIVATE_PAGES``): researchers sign in; every
event asks the page's guard first. Handlers call ``emo_core.study`` only. Events: ``/study_list`` () and
``/study_results`` (study name, bootstrap resamples).
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from emo_core import Settings
from emo_core.study import chart_figure, export_votes, list_studies, results_text, study_results

from . import downloads
from .errors import user_errors
from .markdown_text import UNTRUSTED_MARKDOWN, escape_markdown
from .private_pages import Guard, PrivatePage

PATH = "/results"
ROLES = ("researcher",)

SYSTEM_HEADERS = ["system", "wins", "losses", "share %", "95% Wilson", "95% raters+items bootstrap", "p",
                  "Bradley-Terry (95% bootstrap)"]
ITEM_HEADERS = ["item", "image", "system A", "system B", "A wins", "B wins", "ties", "neither", "skips"]
RATER_HEADERS = ["rater", "revoked", "votes", "left", "right", "tie", "neither", "skip", "agreement %",
                 "compared", "Holm p", "flagged"]


def study_choices(settings: Settings):
    return gr.update(choices=list_studies(settings))


def results_view(settings: Settings, study: str | None, resamples: int, folder: Path):
    """(summary markdown, systems rows, chart, item rows, rater rows, votes CSV path, results JSON path) of
    ``study``; the files are written in ``folder``."""
    if not study:
        raise gr.Error("Choose a study first.", title="No study")
    results = study_results(settings, study, resamples=int(resamples))
    summary = "\n\n".join(escape_markdown(line, one_line=True) for line in results_text(results).splitlines())
    systems = [[name, row["wins"], row["losses"], _percent(row["share"]),
                f"{_percent(row['ci_low'])}-{_percent(row['ci_high'])}",
                f"{_percent(row['cluster_ci_low'])}-{_percent(row['cluster_ci_high'])}", _p(row["p_value"]),
                (f"{row['bt_strength']:.3f} ({row['bt_ci_low']:.3f}-{row['bt_ci_high']:.3f})"
                 if row.get("bt_strength") is not None else "")]
               for name, row in results["systems"].items()]
    items = [[row["item"], row["image"], row["system_a"], row["system_b"], row["wins_a"], row["wins_b"], row["ties"],
              row["neither"], row["skips"]] for row in results["items"]]
    raters = [[row["rater"], "yes" if row["revoked"] else "", row["votes"], row["left"], row["right"], row["tie"],
               row["neither"], row["skip"], _percent(row["agreement"]), row["compared"], _p(row["agreement_p"]),
               "FLAGGED" if row["flagged"] else ""] for row in results["raters"]]
    votes_path, json_path = folder / f"{study}_votes.csv", folder / f"{study}_results.json"
    with open(votes_path, "w", encoding="utf-8", newline="") as out:
        export_votes(settings, study, out)
    json_path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return summary, systems, chart_figure(results), items, raters, votes_path, json_path


def build(settings: Settings, guard: Guard) -> gr.Blocks:
    """The page as a Blocks of its own (served behind sign-in; ``guard`` checks every event's session)."""
    with gr.Blocks(title="EmoLens study results", analytics_enabled=False) as page:
        gr.Markdown("# User study results\nShares count decisive votes only (ties, *neither* and skips apart).")
        with gr.Row():
            study = gr.Dropdown(choices=[], label="Study", elem_id="results-study", scale=3)
            resamples = gr.Number(value=2000, precision=0, minimum=100, maximum=20000, label="Bootstrap resamples",
                                  scale=1)
            refresh = gr.Button("Refresh list", scale=1)
            show = gr.Button("Show results", variant="primary", scale=1)
        summary = gr.Markdown(elem_id="results-summary", **UNTRUSTED_MARKDOWN)
        systems = gr.Dataframe(headers=SYSTEM_HEADERS, label="Systems", interactive=False)
        chart = gr.Plot(label="Share of decisive votes")
        items = gr.Dataframe(headers=ITEM_HEADERS, label="Items", interactive=False)
        raters = gr.Dataframe(headers=RATER_HEADERS, label="Raters", interactive=False)
        with gr.Row():
            votes_file = gr.File(label="Raw votes (CSV)", interactive=False)
            json_file = gr.File(label="Results (JSON)", interactive=False)

        def list_studies_for(request: gr.Request):
            guard(request)
            return study_choices(settings)

        def show_results(name: str | None, count: int, request: gr.Request):
            guard(request)
            with downloads.request_folder() as folder:
                *shown, votes_path, json_path = results_view(settings, name, count, folder)
                return (*shown, downloads.publish(votes_file, votes_path), downloads.publish(json_file, json_path))

        list_event = dict(fn=user_errors(list_studies_for), inputs=None, outputs=study)
        page.load(**list_event, api_visibility="private")
        refresh.click(**list_event, api_name="study_list")
        show.click(user_errors(show_results), [study, resamples],
                   [summary, systems, chart, items, raters, votes_file, json_file], api_name="study_results")
    return page


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


PAGE = PrivatePage(PATH, build, ROLES, title="EmoLens study results")
