"""The rater's **Vote** page (``/vote?study=NAME&token=TOKEN``, the personal link): one pair at a time.

The image and two captions in the rater's stored left/right order; buttons *left is funnier*, *right is
funnier*, *equally funny*, *neither is funny*, *skip*; "12 of 50"; a thank-you at the end. Nothing on
the page or in its answers names a system. Handlers call ``emo_core.study.VoteDesk`` only.

Events a client may call (both answer ``card``, a JSON object with ``item``, ``image``, ``left``,
``right``, ``progress`` and ``done``, then the image, the two captions, the progress and a message):
``/vote_next`` (study, token) and ``/vote_cast`` (study, token, item, choice), choice one of
``left``, ``right``, ``tie``, ``neither``, ``skip``; ``/vote_cast`` answers with the next item.
Refusals (unknown study or token, closed study, a second vote, too many requests) are errors there,
and messages on the page.
"""

from __future__ import annotations

import functools
import logging
import threading

import gradio as gr

from emo_core import EmoError, Settings
from emo_core.study import AlreadyVotedError, StudyError, VoteDesk, VoteItem

from .errors import toast_text
from .markdown_text import UNTRUSTED_MARKDOWN, escape_markdown

log = logging.getLogger(__name__)
VOTE_PATH = "vote"
BUTTONS = (("left", "⬅ left is funnier", "primary"), ("right", "right is funnier ➡", "primary"),
           ("tie", "equally funny", "secondary"), ("neither", "neither is funny", "secondary"),
           ("skip", "skip", "secondary"))
INSTRUCTIONS = ("Read both captions of the picture and choose the funnier one. Answer by your own taste; "
                "each choice is recorded as soon as you click.")


def add_route(demo: gr.Blocks, settings: Settings) -> None:
    """Adds the vote page to ``demo`` under ``/vote`` (not in any navigation: raters arrive by link)."""
    with demo.route("Vote", "/" + VOTE_PATH, show_in_navbar=False):
        build(demo, settings)


class _Desk:
    """The page's ``VoteDesk``, made on first use (building the app opens no database)."""

    def __init__(self, settings: Settings):
        self.settings, self._desk, self._lock = settings, None, threading.Lock()

    def __call__(self) -> VoteDesk:
        with self._lock:
            if self._desk is None:
                self._desk = VoteDesk(self.settings)
            return self._desk


def card_of(item: VoteItem | None, progress: str) -> dict:
    """What a client learns about the item on screen: never a system name, never a server path."""
    if item is None:
        return {"item": None, "image": None, "left": None, "right": None, "progress": progress, "done": True}
    return {"item": item.item, "image": item.image_name, "left": item.left, "right": item.right,
            "progress": item.progress, "done": False}


def _address(request: gr.Request | None) -> str:
    client = getattr(request, "client", None)
    return getattr(client, "host", "") or ""


def _answer(desk: VoteDesk, study: str, token: str, address: str, message: str = "") -> tuple:
    """(card, image path, left, right, progress, message) for the rater's next item."""
    item = desk.next_item(study, token, address=address)
    if item is None:
        progress = desk.progress(study, token)
        return (card_of(None, progress.text), None, "", "", progress.text,
                message + f"**Thank you!** You have answered all {progress.total} items. You can close this page.")
    return (card_of(item, item.progress), str(item.image_path), escape_markdown(item.left),
            escape_markdown(item.right), f"**{item.progress}**", message)


def _api_errors(handler):
    """Refusals as errors a client reads (``gr.Error``); anything else logged and named only by type."""
    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except EmoError as exc:
            raise gr.Error(toast_text(str(exc)), title="Refused") from None
        except gr.Error:
            raise
        except Exception as exc:
            log.error("vote handler %s failed", handler.__name__, exc_info=exc)
            raise gr.Error(f"Internal error ({type(exc).__name__}); the details are in the server log.") from None
    return wrapped


def _page_message(exc: Exception) -> str:
    if isinstance(exc, EmoError):
        return f"**{escape_markdown(str(exc)[:1].upper() + str(exc)[1:], one_line=True)}.**"
    log.error("vote page failed", exc_info=exc)
    return f"**Something went wrong on the server ({type(exc).__name__}); please try again later.**"


def build(demo: gr.Blocks, settings: Settings) -> None:
    """The page's components and events, inside ``demo`` (``add_route`` puts them under /vote)."""
    desk = _Desk(settings)
    # A vote is a short transaction (the rate limits bound the load): not queued behind the analysis tabs.
    # The page and plain HTTP clients call these events unqueued (one POST each, about 3 times cheaper);
    # gradio_client always joins the queue, where no concurrency limit keeps them from waiting.
    events = {"queue": False, "concurrency_limit": None, "concurrency_id": "study-vote", "show_progress": "hidden"}
    gr.Navbar(visible="hidden")  # rendered but hidden: see app.py
    gr.Markdown("# Which caption is funnier?\n" + INSTRUCTIONS, elem_id="vote-title")
    message = gr.Markdown(elem_id="vote-message", **UNTRUSTED_MARKDOWN)
    with gr.Column(visible=False, elem_id="vote-trial") as trial:
        progress = gr.Markdown(elem_id="vote-progress")
        image = gr.Image(type="filepath", interactive=False, show_label=False, buttons=[], height=420,
                         elem_id="vote-image")
        with gr.Row(equal_height=True):
            with gr.Column():
                gr.Markdown("**Left**")
                left = gr.Markdown(elem_id="caption-left", **UNTRUSTED_MARKDOWN)
            with gr.Column():
                gr.Markdown("**Right**")
                right = gr.Markdown(elem_id="caption-right", **UNTRUSTED_MARKDOWN)
        with gr.Row():
            buttons = {choice: gr.Button(label, variant=variant, elem_id=f"vote-{choice}")
                       for choice, label, variant in BUTTONS}
    # Inputs and outputs of the API events; the page keeps them hidden.
    study_box = gr.Textbox(visible=False)
    token_box = gr.Textbox(visible=False)
    item_box = gr.Number(visible=False, precision=0)
    choice_box = gr.Textbox(visible=False)
    card = gr.JSON(visible=False)
    api_outputs = [card, image, left, right, progress, message]
    page_outputs = api_outputs + [trial]

    @_api_errors
    def vote_next(study: str, token: str, request: gr.Request):
        return _answer(desk(), study, token, _address(request))

    @_api_errors
    def vote_cast(study: str, token: str, item, choice: str, request: gr.Request):
        address = _address(request)
        desk().cast(study, token, item, choice, address=address)
        return _answer(desk(), study, token, address)

    def open_link(request: gr.Request):
        params = request.query_params if request else {}
        study, token = params.get("study", ""), params.get("token", "")
        return (study, token) + _page(lambda: _answer(desk(), study, token, _address(request)))

    def on_button(choice: str):
        def handler(study: str, token: str, shown: dict | None, request: gr.Request):
            address = _address(request)
            item = (shown or {}).get("item")
            if item is None:
                return _page(lambda: _answer(desk(), study, token, address))
            try:
                desk().cast(study, token, item, choice, address=address)
                note = ""
            except AlreadyVotedError:  # answered in another tab or before a reload: move on
                note = "That item was already answered; here is the next one.\n\n"
            except StudyError as exc:
                return _page_refusal(exc)
            return _page(lambda: _answer(desk(), study, token, address, note))
        return handler

    demo.load(open_link, None, [study_box, token_box] + page_outputs, api_visibility="private", **events)
    for choice, button in buttons.items():
        button.click(on_button(choice), [study_box, token_box, card], page_outputs,
                     api_visibility="private", **events)
    # Clients only: buttons never shown, whose events are the page's API.
    api_next = gr.Button(visible=False)
    api_cast = gr.Button(visible=False)
    api_next.click(vote_next, [study_box, token_box], api_outputs, api_name="vote_next", **events)
    api_cast.click(vote_cast, [study_box, token_box, item_box, choice_box], api_outputs, api_name="vote_cast",
                   **events)


def _page(make_answer) -> tuple:
    """The page's outputs for an answer, or for a refusal (shown on the page, the pair hidden)."""
    try:
        answer = make_answer()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message on the page
        return _page_refusal(exc)
    shows_item = answer[0]["item"] is not None
    return answer + (gr.update(visible=shows_item),)


def _page_refusal(exc: Exception) -> tuple:
    return ({"item": None}, None, "", "", "", _page_message(exc), gr.update(visible=False))
