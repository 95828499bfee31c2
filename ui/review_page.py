"""The review desk (private page at ``/review/``): annotators review generated instruction samples.

Tabs: **Review** (the next sample: image, attributes with their source, caption, conversation, provenance;
accept / edit then accept / reject with a reason / skip, keys a e r s n), **Adjudication** (conflicting
overlap decisions) and **Dashboard** (counts, acceptance, reject reasons, agreement, downloads).
Every handler calls the page's guard first; the logic is ``emo_core.review``.

Events a signed-in client may call: ``/review_next`` (), ``/review_decide`` (item id, action, edited
text, reason, note), ``/review_adjudication_next`` (), ``/review_adjudicate`` (item id, action, edited
text, reason, note), ``/review_dashboard`` (). The first output of the review events is the item id
(None when the queue is empty). They skip Gradio's queue (short store transactions: one POST each), and
they are "undocumented" (callable, not listed): gradio 6.31 embeds the listed API of a mounted app in the
login page it shows to anyone, so a listed event would reveal the desk's API before sign-in. The page's
own buttons use queued twins of these events, because only queued events show a refusal as a toast.
"""

from __future__ import annotations

import json

import gradio as gr

from emo_core import Settings
from emo_core.review import REJECT_REASONS, ConversationFormatError, ReviewDesk, ReviewError, dashboard, decision_rows
from emo_core.store import Store

from . import review_render
from .markdown_text import UNTRUSTED_MARKDOWN, escape_html
from .private_pages import Guard, PrivatePage

PATH = "/review"
ROLES = ("reviewer", "researcher")
KEYS = {"a": "review-accept", "e": "review-edit-accept", "r": "review-reject", "s": "review-skip", "n": "review-next"}
# Shortcuts act only when no text field has the focus, so typing an edit or a note never triggers them.
SHORTCUTS = """<script>
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
  const id = (%s)[event.key.toLowerCase()];
  const button = id && document.getElementById(id);
  if (button && button.offsetParent !== null && !button.disabled) { event.preventDefault(); button.click(); }
});
</script>""" % json.dumps(KEYS)


def _decisions_jsonl(settings: Settings) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in decision_rows(Store.for_data_dir(settings.data_dir)))


def _dashboard_json(settings: Settings) -> str:
    return json.dumps(dashboard(Store.for_data_dir(settings.data_dir)), indent=2)


def _user_error(error: Exception) -> gr.Error:
    return gr.Error(escape_html(str(error)), title="Not recorded")


def build(settings: Settings, guard: Guard) -> gr.Blocks:
    desk = ReviewDesk.for_settings(settings)

    def review_view(annotator: str, note: str = ""):
        item = desk.next_item(annotator)
        status = note + ("" if item else " Nothing left to review for you right now.")
        if item is None:
            return (None, None, "", "", "*The queue is empty.*", None, "", None, "",
                    review_render.progress(desk.progress(annotator)), status.strip())
        return (item.item_id, str(item.image_path) if item.image_path else None, review_render.item_header(item),
                review_render.attributes(item), review_render.conversation(item.sample["conversations"]),
                item.sample.get("provenance"), item.conversation_text, None, "",
                review_render.progress(desk.progress(annotator)), status.strip())

    def show_next(request: gr.Request):
        return review_view(guard(request).name)

    def decide(item_id, action: str, edited_text: str, reason: str | None, note: str, request: gr.Request):
        account = guard(request)
        if item_id is None:
            raise gr.Error("There is no sample on screen; press Next.", title="Not recorded")
        try:
            state = desk.decide(int(item_id), account.name, action, edited_text=edited_text, reason=reason or "",
                                note=note or "")
        except (ReviewError, ConversationFormatError) as error:
            raise _user_error(error) from None
        done = {"skip": "Skipped.", "pending": "Recorded; waiting for the second annotator."}
        return review_view(account.name, done.get(action) or done.get(state) or f"Recorded: {state}.")

    def decide_as(action: str):
        def handler(item_id, edited_text, reason, note, request: gr.Request):
            return decide(item_id, action, edited_text, reason, note, request)
        return handler

    def conflict_view(account):
        conflict = desk.next_conflict(account.name, may_adjudicate_own=account.role == "researcher")
        if conflict is None:
            return None, None, "*No conflicts waiting for you.*", "", "", None, ""
        item = conflict.item
        edited = next((o.conversation_text for o in conflict.opinions if o.action == "edit"), item.conversation_text)
        return (item.item_id, str(item.image_path) if item.image_path else None,
                review_render.item_header(item) + "\n\n" + review_render.attributes(item) + "\n\n"
                + review_render.conversation(item.sample["conversations"]),
                review_render.opinions(conflict), edited, None, "")

    def next_conflict(request: gr.Request):
        return conflict_view(guard(request))

    def adjudicate(item_id, action: str, edited_text: str, reason: str | None, note: str, request: gr.Request):
        account = guard(request)
        if item_id is None:
            raise gr.Error("There is no conflict on screen.", title="Not recorded")
        try:
            desk.adjudicate(int(item_id), account.name, action, edited_text=edited_text, reason=reason or "",
                            note=note or "", may_adjudicate_own=account.role == "researcher")
        except (ReviewError, ConversationFormatError) as error:
            raise _user_error(error) from None
        return conflict_view(account)

    def adjudicate_as(action: str):
        def handler(item_id, edited_text, reason, note, request: gr.Request):
            return adjudicate(item_id, action, edited_text, reason, note, request)
        return handler

    def show_dashboard(request: gr.Request):
        guard(request)
        figures = dashboard(desk.store)
        return review_render.dashboard(figures), review_render.acceptance_frame(figures), figures

    def who(request: gr.Request):
        account = guard(request)
        return f"Signed in as **{account.name}** ({account.role})"

    with gr.Blocks(title="EmoLens review desk", analytics_enabled=False) as page:
        with gr.Row():
            gr.Markdown("# Review desk")
            signed_in = gr.Markdown(elem_id="review-user")
            gr.Button("Sign out", link=f"{PATH}/logout", size="sm", scale=0, elem_id="review-sign-out")
        with gr.Tabs():
            with gr.Tab("Review", id="review"):
                progress = gr.Markdown(elem_id="review-progress")
                status = gr.Markdown(elem_id="review-status")
                item_id = gr.Number(visible=False, precision=0, elem_id="review-item-id")
                with gr.Row():
                    with gr.Column(scale=1):
                        image = gr.Image(type="filepath", interactive=False, label="Image", height=320,
                                         elem_id="review-image")
                        header = gr.Markdown(elem_id="review-header", **UNTRUSTED_MARKDOWN)
                        attributes = gr.Markdown(elem_id="review-attributes", **UNTRUSTED_MARKDOWN)
                    with gr.Column(scale=2):
                        conversation = gr.Markdown(elem_id="review-conversation", **UNTRUSTED_MARKDOWN)
                        edited = gr.Textbox(label="Edit the conversation ('### human' / '### gpt' start each turn)",
                                            lines=8, max_lines=30, elem_id="review-edit")
                        with gr.Row():
                            reason = gr.Dropdown(list(REJECT_REASONS), value=None, label="Reject reason",
                                                 elem_id="review-reason")
                            note = gr.Textbox(label="Note (required for 'other')", elem_id="review-note")
                        with gr.Row():
                            accept = gr.Button("Accept [a]", variant="primary", elem_id="review-accept")
                            edit_accept = gr.Button("Edit, then accept [e]", elem_id="review-edit-accept")
                            reject = gr.Button("Reject [r]", variant="stop", elem_id="review-reject")
                            skip = gr.Button("Skip [s]", elem_id="review-skip")
                            next_button = gr.Button("Next [n]", elem_id="review-next")
                        with gr.Accordion("Provenance", open=False):
                            provenance = gr.JSON(label="How this sample was made", elem_id="review-provenance")
                action = gr.Textbox(visible=False)
            with gr.Tab("Adjudication", id="adjudication"):
                conflict_id = gr.Number(visible=False, precision=0)
                with gr.Row():
                    with gr.Column(scale=1):
                        conflict_image = gr.Image(type="filepath", interactive=False, label="Image", height=280)
                        conflict_sample = gr.Markdown(elem_id="conflict-sample", **UNTRUSTED_MARKDOWN)
                    with gr.Column(scale=2):
                        conflict_opinions = gr.Markdown(elem_id="conflict-opinions", **UNTRUSTED_MARKDOWN)
                        conflict_text = gr.Textbox(label="Text to accept", lines=8, max_lines=30,
                                                   elem_id="conflict-edit")
                        with gr.Row():
                            conflict_reason = gr.Dropdown(list(REJECT_REASONS), value=None, label="Reject reason")
                            conflict_note = gr.Textbox(label="Note")
                        with gr.Row():
                            settle_original = gr.Button("Accept as generated", elem_id="conflict-accept")
                            settle_edit = gr.Button("Accept this text", variant="primary", elem_id="conflict-edit-accept")
                            settle_reject = gr.Button("Reject", variant="stop", elem_id="conflict-reject")
                            next_conflict_button = gr.Button("Next conflict", elem_id="conflict-next")
                adjudication_action = gr.Textbox(visible=False)
            with gr.Tab("Dashboard", id="dashboard"):
                refresh = gr.Button("Refresh", elem_id="dashboard-refresh")
                gr.Markdown(f"Downloads: [all decisions (JSONL)]({PATH}/export/decisions.jsonl) · "
                            f"[these figures (JSON)]({PATH}/export/dashboard.json)")
                plot = gr.BarPlot(x="type", y="samples", color="outcome", title="Decided samples per type",
                                  elem_id="dashboard-plot")
                figures_text = gr.Markdown(elem_id="dashboard", **UNTRUSTED_MARKDOWN)
                figures_json = gr.JSON(label="Figures", visible=False)

        review_outputs = [item_id, image, header, attributes, conversation, provenance, edited, reason, note, progress,
                          status]
        conflict_outputs = [conflict_id, conflict_image, conflict_sample, conflict_opinions, conflict_text,
                            conflict_reason, conflict_note]

        def browser(trigger, fn, inputs, outputs):
            # Queued, so a refused decision shows its reason as a toast; "hidden" keeps the error overlay off
            # the fields the annotator has to correct.
            trigger(fn, inputs=inputs, outputs=outputs, api_visibility="private", show_progress="hidden")

        def api(name: str, fn, inputs, outputs):
            # One POST each, no queue or event stream: these are short store transactions. "undocumented":
            # callable, but kept out of the API listing gradio puts in the login page.
            gr.Button(visible=False, render=False).click(fn, inputs=inputs, outputs=outputs, api_name=name,
                                                         api_visibility="undocumented", queue=False)

        page.load(who, outputs=signed_in, api_visibility="private").then(
            show_next, outputs=review_outputs, api_visibility="private")
        browser(next_button.click, show_next, [], review_outputs)
        for button, name in ((accept, "accept"), (edit_accept, "edit"), (reject, "reject"), (skip, "skip")):
            browser(button.click, decide_as(name), [item_id, edited, reason, note], review_outputs)
        browser(next_conflict_button.click, next_conflict, [], conflict_outputs)
        for button, name in ((settle_original, "accept"), (settle_edit, "edit"), (settle_reject, "reject")):
            browser(button.click, adjudicate_as(name), [conflict_id, conflict_text, conflict_reason, conflict_note],
                    conflict_outputs)
        browser(refresh.click, show_dashboard, [], [figures_text, plot, figures_json])
        api("review_next", show_next, [], review_outputs)
        api("review_decide", decide, [item_id, action, edited, reason, note], review_outputs)
        api("review_adjudication_next", next_conflict, [], conflict_outputs)
        api("review_adjudicate", adjudicate, [conflict_id, adjudication_action, conflict_text, conflict_reason,
                                              conflict_note], conflict_outputs)
        api("review_dashboard", show_dashboard, [], [figures_text, plot, figures_json])
    page.queue(max_size=settings.max_queue, default_concurrency_limit=settings.review_concurrency)
    return page


PAGE = PrivatePage(PATH, build, ROLES, title="EmoLens review desk", head=SHORTCUTS,
                   exports={"decisions.jsonl": ("application/x-ndjson", _decisions_jsonl),
                            "dashboard.json": ("application/json", _dashboard_json)})
