"""The study in the served app: the vote API and page name no system, one vote per rater and item over
HTTP, the vote flow in a headless browser, votes surviving a restart, and the results page's handlers.

    .venv/bin/python -m pytest -q tests/test_study_app.py
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from emo_core import Settings
from emo_core.study import EXPORT_COLUMNS, create_study, invite_raters, study_results, study_store
from tests.app_process import free_port, start_app, stop_app
from tests.conftest import served_app
from ui.markdown_text import escape_markdown
from tests.study_helpers import SYSTEMS, choice_for, make_study, write_images, write_pairs

REPO = Path(__file__).resolve().parent.parent
HOSTILE = "<img src=x onerror=alert(1)> **bold** [link](http://evil.example) $x^2$"


@pytest.fixture(scope="module")
def study_settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("study-data"), preload=False, vote_rate_per_rater=0,
                    vote_rate_per_address=0, max_queue=64)


@pytest.fixture(scope="module")
def study_url(study_settings):
    with served_app(study_settings) as url:
        yield url


@pytest.fixture(scope="module")
def study_client(study_url):
    from gradio_client import Client

    return Client(study_url, verbose=False)


def _no_system_name(text: str) -> None:
    for system in SYSTEMS:
        assert system not in text


def test_the_api_names_no_system_and_walks_a_rater_to_the_end(study_settings, study_url, study_client, tmp_path):
    study = make_study(study_settings, tmp_path, "api", 4, 2)
    token = study.tokens[0]
    page = httpx.get(f"{study_url}vote", params={"study": "api", "token": token}, timeout=30)
    assert page.status_code == 200
    for answer in (page.text, httpx.get(f"{study_url}config", timeout=30).text,
                   httpx.get(f"{study_url}gradio_api/info", timeout=30).text):
        _no_system_name(answer)
    seen = []
    answer = study_client.predict("api", token, api_name="/vote_next")
    while not answer[0]["done"]:
        card, image_file, left, right, progress, message = answer
        _no_system_name(json.dumps(answer))
        assert set(card) >= {"item", "image", "left", "right", "progress"}
        assert (left, right) == (escape_markdown(card["left"]), escape_markdown(card["right"]))
        assert {card["left"], card["right"]} <= set(study.captions) and card["progress"] == f"{len(seen) + 1} of 4"
        assert card["image"].startswith("picture") and Image.open(image_file).size == (96, 64)
        assert str(study_settings.data_dir) not in json.dumps(answer)
        seen.append(card["item"])
        choice = choice_for(study.captions, card["left"], card["right"], SYSTEMS[len(seen) % 2])
        answer = study_client.predict("api", token, card["item"], choice, api_name="/vote_cast")
    assert answer[0] == {"item": None, "image": None, "left": None, "right": None, "progress": "4 of 4", "done": True}
    assert "Thank you" in answer[5] and sorted(seen) == [1, 2, 3, 4]
    results = study_results(study_settings, "api", resamples=100)
    assert results["systems"][SYSTEMS[0]]["wins"] == 2 and results["systems"][SYSTEMS[1]]["wins"] == 2


@pytest.mark.parametrize("study, token, message", [
    ("nope", "x", "does not exist"), ("refusals", "guessed", "not valid for this study")])
def test_the_api_refuses_unknown_studies_and_tokens(study_settings, study_client, tmp_path, study, token, message):
    from gradio_client.exceptions import AppError

    if study == "refusals":
        make_study(study_settings, tmp_path, "refusals", 2, 1)
    with pytest.raises(AppError, match=message):
        study_client.predict(study, token, api_name="/vote_next")
    with pytest.raises(AppError, match=message):
        study_client.predict(study, token, 1, "left", api_name="/vote_cast")


def _votes_in(settings: Settings, study: str) -> int:
    return study_store(settings.data_dir).read_one(
        "SELECT COUNT(*) FROM study_votes v JOIN study_items i ON i.id = v.item_id JOIN study_studies s "
        "ON s.id = i.study_id WHERE s.name = ?", (study,))[0]


def test_thirty_two_concurrent_http_casts_for_one_item_record_one_vote(study_settings, study_url, study_client,
                                                                      tmp_path):
    study = make_study(study_settings, tmp_path, "http-race", 3, 2)
    # the page's way: unqueued POSTs, 32 at once from threads
    token = study.tokens[0]
    item = study_client.predict("http-race", token, api_name="/vote_next")[0]["item"]
    start = threading.Barrier(32)

    def post(_):
        start.wait()
        answer = httpx.post(f"{study_url}gradio_api/run/vote_cast", timeout=120,
                            json={"data": ["http-race", token, item, "left"], "session_hash": "race"})
        return "recorded" if answer.status_code == 200 else ("refused" if "already answered" in answer.text
                                                              else answer.text)

    with ThreadPoolExecutor(32) as pool:
        assert Counter(pool.map(post, range(32))) == {"recorded": 1, "refused": 31}
    # gradio_client's way: 32 jobs through gradio's queue (max_queue is 64 in this app)
    token = study.tokens[1]
    item = study_client.predict("http-race", token, api_name="/vote_next")[0]["item"]
    jobs = [study_client.submit("http-race", token, item, "right", api_name="/vote_cast") for _ in range(32)]
    outcomes = Counter()
    for job in jobs:
        try:
            job.result(timeout=120)
            outcomes["recorded"] += 1
        except Exception as exc:  # noqa: BLE001 - the refusal is what is counted
            outcomes["refused" if "already answered" in str(exc) else str(exc)] += 1
    assert outcomes == {"recorded": 1, "refused": 31}
    assert _votes_in(study_settings, "http-race") == 2


def test_the_vote_page_in_a_browser(study_settings, study_url, browser_context, tmp_path):
    images = write_images(tmp_path / "images", 3)
    captions = {f"{HOSTILE} one": "model-x", "plain pun two": "human", f"{HOSTILE} three": "model-x",
                "plain pun four": "human", "fifth % joke": "model-x", "sixth joke": "human"}
    texts = list(captions)
    write_pairs(tmp_path / "pairs.csv", [[f"images/{image.name}", texts[2 * i], "model-x", texts[2 * i + 1], "human"]
                                         for i, image in enumerate(images)])
    create_study(study_settings, "browser", tmp_path / "pairs.csv")
    (number, link), = invite_raters(study_settings, "browser", 1)
    page = browser_context.new_page()
    page.set_default_timeout(60_000)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(study_url + "vote?" + link.split("?", 1)[1])
        clicked = []
        for position, button in enumerate(("left", "tie", "neither"), start=1):
            page.locator("#vote-progress").get_by_text(f"{position} of 3").wait_for()
            left, right = page.locator("#caption-left").inner_text(), page.locator("#caption-right").inner_text()
            assert left.strip() in captions and right.strip() in captions  # shown as typed: no markup, no LaTeX
            assert page.locator("#vote-image img").count() == 1
            _no_system_name(page.content())
            clicked.append((captions[left.strip()], captions[right.strip()], button))
            page.locator(f"button#vote-{button}").click()
        page.locator("#vote-message").get_by_text("Thank you").wait_for()
        assert not page.locator("#vote-trial").is_visible()
        assert page.locator("nav").count() == 0 or not page.locator("nav").first.is_visible()
        page.reload()  # a reload after the end shows the thank-you again, and records nothing
        page.locator("#vote-message").get_by_text("all 3 items").wait_for()
        page.goto(study_url + "vote?study=browser&token=forged")
        page.locator("#vote-message").get_by_text("not valid").wait_for()
    finally:
        page.close()
    assert dialogs == []  # the hostile caption ran no script
    from emo_core.study import load_votes

    recorded = [(vote.left_system, vote.right_system, vote.choice) for vote in load_votes(study_settings, "browser")]
    assert recorded == clicked


def test_votes_survive_an_app_restart(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    settings = Settings(data_dir=tmp_path / "data")
    study = make_study(settings, tmp_path, "restart", 4, 1)
    token, port = study.tokens[0], free_port()
    arguments = ["--data-dir", str(settings.data_dir), "--port", str(port), "--no-preload", "--vote-rate-per-rater", "0"]
    process = start_app(arguments, port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        first = client.predict("restart", token, api_name="/vote_next")[0]
        second = client.predict("restart", token, first["item"], "left", api_name="/vote_cast")[0]
        client.predict("restart", token, second["item"], "tie", api_name="/vote_cast")
    finally:
        stop_app(process, kill=True)  # no clean shutdown
    process = start_app(arguments, port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        card = client.predict("restart", token, api_name="/vote_next")[0]
        assert card["progress"] == "3 of 4" and card["item"] not in (first["item"], second["item"])
        with pytest.raises(AppError, match="already answered"):
            client.predict("restart", token, first["item"], "right", api_name="/vote_cast")
    finally:
        stop_app(process, kill=True)
    results = study_results(settings, "restart", resamples=50)
    assert (results["decisive"], results["ties"]) == (1, 1)


def test_results_page_handlers(tmp_path):
    import gradio as gr

    from ui import results_page

    settings = Settings(data_dir=tmp_path / "data", vote_rate_per_rater=0, vote_rate_per_address=0)
    from emo_core.study import VoteDesk

    study = make_study(settings, tmp_path, "page", 3, 2)
    desk = VoteDesk(settings)
    for token in study.tokens:
        while (shown := desk.next_item("page", token)) is not None:
            desk.cast("page", token, shown.item, choice_for(study.captions, shown.left, shown.right, "model-x"))
    assert results_page.study_choices(settings)["choices"] == ["page"]
    summary, systems, figure, items, raters, votes_csv, results_json = results_page.results_view(
        settings, "page", 200, tmp_path)
    assert "model\\-x\\: 6 of 6 decisive votes" in summary
    assert systems[0][:4] == ["human", 0, 6, "0.0"] and systems[1][:4] == ["model-x", 6, 0, "100.0"]
    assert len(items) == 3 and [row[4] for row in items] == [2, 2, 2]
    assert [row[:3] for row in raters] == [[1, "", 3], [2, "", 3]]
    assert votes_csv.read_text().splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert json.loads(results_json.read_text())["systems"]["model-x"]["wins"] == 6
    assert figure.axes[0].get_xlim() == (0, 100)
    with pytest.raises(gr.Error):
        results_page.results_view(settings, None, 200, tmp_path)
    from ui.private_pages import Guard

    blocks = results_page.build(settings, Guard(settings, results_page.ROLES))
    assert {"study_results", "study_list"} <= {fn.api_name for fn in blocks.fns.values()}
