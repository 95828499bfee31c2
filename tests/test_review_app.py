"""The review desk as served: sign-in over HTTP and gradio_client, the guard on every event and download,
a second private page for another role, decisions that survive a restart, annotators sharing the desk over
HTTP, and the whole flow in headless Chromium."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from gradio_client import Client, handle_file

from emo_core import Settings
from emo_core.accounts import Accounts
from emo_core.review import import_run
from emo_core.store import Store
from tests.conftest import served_app
from tests.review_runs import write_run

PASSWORDS = {"alice": "alice password", "bob": "bob password", "rita": "rita password"}
SCRIPT = '<script>window.__injected = 1</script><img src=x onerror="window.__injected = 2"> [link](javascript:alert(1))'


def _desk_settings(folder, n_images=4, overlap=0.0, answers=None) -> Settings:
    settings = Settings(data_dir=folder / "data", preload=False, review_lease_seconds=300)
    write_run(folder / "run", n_images=n_images, types=("reasoning", "conversation"), answers=answers)
    import_run(Store.for_data_dir(settings.data_dir), folder / "run", overlap)
    accounts = Accounts.for_data_dir(settings.data_dir)
    accounts.add("alice", PASSWORDS["alice"], "reviewer")
    accounts.add("bob", PASSWORDS["bob"], "reviewer")
    accounts.add("rita", PASSWORDS["rita"], "researcher")
    return settings


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    folder = tmp_path_factory.mktemp("desk")
    settings = _desk_settings(folder, answers={(0, "reasoning"): SCRIPT})
    with served_app(settings) as url:
        yield url, settings


def _signed_in(url: str, page: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    answer = client.post(f"{page}/login", data={"username": name, "password": PASSWORDS[name]})
    assert answer.status_code == 200, answer.text
    return client


def test_without_sign_in_the_desk_its_events_and_downloads_are_closed(desk):
    url, _ = desk
    anonymous = httpx.Client(base_url=url, timeout=30)
    page = anonymous.get("review/")
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
    assert "review_decide" not in page.text and "Reject reason" not in page.text  # only the login form
    closed = [anonymous.get("review/config"), anonymous.get("review/gradio_api/info"),
              anonymous.post("review/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "x1"}),
              anonymous.post("review/gradio_api/call/review_next", json={"data": []}),
              anonymous.post("review/gradio_api/call/review_decide", json={"data": [1, "accept", "", None, ""]}),
              anonymous.post("review/gradio_api/upload", files={"files": ("a.txt", b"x")}),
              anonymous.get("review/export/decisions.jsonl"), anonymous.get("review/export/dashboard.json"),
              anonymous.get("results/config"), anonymous.get("results/export/anything")]
    assert [answer.status_code for answer in closed[:-1]] == [401] * 9
    assert closed[-1].status_code in (401, 404)
    with pytest.raises(Exception, match="credentials were not provided|login"):
        Client(f"{url}review/", verbose=False)
    with pytest.raises(Exception, match="Could not login"):
        Client(f"{url}review/", auth=("alice", "wrong password"), verbose=False)
    assert anonymous.post("review/login", data={"username": "nobody", "password": "whatever12"}).status_code == 400
    # the public tabs stay open
    assert anonymous.get("config").status_code == 200 and anonymous.get("gradio_api/info").status_code == 200


def test_public_events_work_without_sign_in(desk, images):
    url, _ = desk
    *_, result = Client(url, verbose=False).predict(handle_file(str(images["astronaut"])), "fer7",
                                                    api_name="/analyze_image")
    assert result["label"] == "happy"


def test_signed_in_reviewer_uses_the_desk_and_its_downloads(desk):
    url, _ = desk
    # download_files=False: the server's path of the image, not a copy the client saved
    client = Client(f"{url}review/", auth=("alice", PASSWORDS["alice"]), verbose=False, download_files=False)
    shown = client.predict(api_name="/review_next")
    item_id, image, header, _, conversation, provenance, edit_text, *_ = shown
    image = image["path"]
    assert isinstance(item_id, int) and image.endswith(".png") and "reasoning" in header
    assert provenance["model"] == "scripted-llm" and edit_text.startswith("### human\n")
    # the generated <script> is text: every markup character arrives escaped
    assert "\\<script\\>" in conversation and "<script>" not in conversation
    with pytest.raises(Exception, match="note"):
        client.predict(item_id, "reject", "", "other", "", api_name="/review_decide")
    after = client.predict(item_id, "reject", "", "unsafe or offensive", "script tag", api_name="/review_decide")
    assert after[0] != item_id and after[-1] == "Recorded: rejected."
    session = _signed_in(url, "review", "alice")
    decisions = [json.loads(line) for line in session.get("review/export/decisions.jsonl").text.splitlines()]
    assert any(d["action"] == "reject" and d["reason"] == "unsafe or offensive" and d["annotator"] == "alice"
               for d in decisions)
    figures = session.get("review/export/dashboard.json").json()
    assert figures["reject_reasons"]["unsafe or offensive"] >= 1
    # the image shown is served to the signed-in session only: not without sign-in, not by the public app
    assert session.get(f"review/gradio_api/file={image}").status_code == 200
    assert httpx.get(f"{url}review/gradio_api/file={image}").status_code == 401
    assert httpx.get(f"{url}gradio_api/file={image}").status_code == 403


def test_the_researcher_only_results_page_admits_only_researchers(desk):
    url, _ = desk
    reviewer = httpx.Client(base_url=url, timeout=30)
    assert reviewer.post("results/login", data={"username": "alice", "password": PASSWORDS["alice"]}).status_code == 400
    assert httpx.get(f"{url}results/gradio_api/info").status_code == 401
    results = Client(f"{url}results/", auth=("rita", PASSWORDS["rita"]), verbose=False)
    assert results.predict(api_name="/study_list")["choices"] == []  # the study page, signed in; no study yet
    researcher_at_desk = Client(f"{url}review/", auth=("rita", PASSWORDS["rita"]), verbose=False)
    assert researcher_at_desk.predict(api_name="/review_dashboard")[2]["counts"]
    # a session of one page is no session of another
    desk_session = _signed_in(url, "review", "rita")
    assert desk_session.get("results/config").status_code == 401


def test_a_removed_account_loses_its_open_session(desk):
    url, settings = desk
    accounts = Accounts.for_data_dir(settings.data_dir)
    accounts.add("temp", "temporary pw", "reviewer")
    PASSWORDS["temp"] = "temporary pw"
    client = Client(f"{url}review/", auth=("temp", "temporary pw"), verbose=False)
    session = _signed_in(url, "review", "temp")
    assert client.predict(api_name="/review_dashboard")
    accounts.remove("temp")
    with pytest.raises(Exception, match="no access"):
        client.predict(api_name="/review_next")
    assert session.get("review/export/decisions.jsonl").status_code == 401


def test_two_annotators_over_http_never_get_the_same_single_review_sample(tmp_path):
    settings = _desk_settings(tmp_path, n_images=6)  # 12 single-review samples
    seen: dict[str, list[int]] = {"alice": [], "bob": []}

    def annotate(name: str, barrier: threading.Barrier):
        client = Client(f"{url}review/", auth=(name, PASSWORDS[name]), verbose=False)
        barrier.wait()
        shown = client.predict(api_name="/review_next")
        while shown[0] is not None:
            seen[name].append(shown[0])
            shown = client.predict(shown[0], "accept", "", None, "", api_name="/review_decide")

    with served_app(settings) as url:
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=annotate, args=(name, barrier)) for name in seen]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert not set(seen["alice"]) & set(seen["bob"])
    assert sorted(seen["alice"] + seen["bob"]) == list(range(1, 13))


def test_decisions_survive_a_restart(tmp_path):
    settings = _desk_settings(tmp_path, n_images=2)
    with served_app(settings) as url:
        client = Client(f"{url}review/", auth=("bob", PASSWORDS["bob"]), verbose=False)
        first = client.predict(api_name="/review_next")
        second = client.predict(first[0], "edit", first[6].rstrip() + " Edited after review.", None, "",
                                api_name="/review_decide")
        client.predict(second[0], "reject", "", "wrong emotion", "", api_name="/review_decide")
    with served_app(settings) as url:  # a new server process state over the same data folder
        client = Client(f"{url}review/", auth=("bob", PASSWORDS["bob"]), verbose=False)
        *_, figures = client.predict(api_name="/review_dashboard")
        assert figures["annotators"]["bob"] == {"edit": 1, "reject": 1}
        progress = client.predict(api_name="/review_next")[9]
        assert "0 accepted · 1 edited · 1 rejected" in progress
    from emo_core.review import accepted_versions

    accepted = accepted_versions(settings.data_dir, "run-test")
    assert [sample["conversations"][-1]["value"].endswith("Edited after review.") for sample in accepted.values()] == [True]


@pytest.mark.browser
def test_browser_signs_in_and_reviews(desk, browser_context, artifacts):
    url, settings = desk
    page = browser_context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{url}review/")
        page.get_by_label("username").fill("bob")
        page.get_by_label("password").fill("bob wrong")
        page.get_by_role("button", name="Login").click()
        page.get_by_text("Incorrect Credentials").wait_for()
        page.get_by_label("username").fill("bob")  # the form clears both fields after a failed try
        page.get_by_label("password").fill(PASSWORDS["bob"])
        page.get_by_role("button", name="Login").click()
        page.locator("#review-user", has_text="Signed in as bob (reviewer)").wait_for()
        conversation = page.locator("#review-conversation")
        conversation.get_by_text("Answer:").first.wait_for()
        page.locator("#review-image img").wait_for()
        assert page.locator("#review-attributes", has_text="measured").count() == 1
        page.screenshot(path=str(artifacts / "review_desk.png"), full_page=True)
        # accept with the keyboard (focus outside text fields)
        before = page.locator("#review-progress").inner_text()
        page.locator("#review-progress").click()
        page.keyboard.press("a")
        page.locator("#review-status", has_text="Recorded").wait_for()
        assert page.locator("#review-progress", has_text="1 accepted").count() == 1 and "0 accepted" in before
        # edit, then accept
        edit = page.locator("#review-edit textarea")
        edit.fill(edit.input_value() + " Changed in the browser.")
        page.click("#review-edit-accept")
        page.locator("#review-progress", has_text="1 edited").wait_for()
        # reject needs a reason
        page.click("#review-reject")
        page.locator(".toast-body", has_text="choose a reject reason").first.wait_for()
        page.locator("#review-reason input").click()
        page.get_by_role("option", name="not grounded in the image").click()
        page.click("#review-reject")
        page.locator("#review-progress", has_text="1 rejected").wait_for()
        page.get_by_role("tab", name="Dashboard").click()
        page.click("#dashboard-refresh")
        page.locator("#dashboard", has_text="not grounded in the image").wait_for()
        page.locator("#dashboard-plot canvas, #dashboard-plot svg").first.wait_for()
        page.screenshot(path=str(artifacts / "review_dashboard.png"), full_page=True)
    finally:
        page.close()


@pytest.mark.browser
def test_browser_shows_a_generated_script_as_text(tmp_path, browser_context, artifacts):
    settings = _desk_settings(tmp_path, n_images=1, answers={(0, "reasoning"): SCRIPT})
    with served_app(settings) as url:
        page = browser_context.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{url}review/")
            page.get_by_label("username").fill("alice")
            page.get_by_label("password").fill(PASSWORDS["alice"])
            page.get_by_role("button", name="Login").click()
            conversation = page.locator("#review-conversation")
            conversation.get_by_text("window.__injected = 1").wait_for()
            text = conversation.inner_text()
            assert "<script>window.__injected = 1</script>" in text and "[link](javascript:alert(1))" in text
            assert conversation.locator("script, img, a").count() == 0
            assert page.evaluate("window.__injected") is None
            page.screenshot(path=str(artifacts / "review_script_as_text.png"), full_page=True)
        finally:
            page.close()


def test_conflicts_are_settled_over_the_api(tmp_path):
    settings = _desk_settings(tmp_path, n_images=1, overlap=1.0)  # 2 samples, each for two annotators
    with served_app(settings) as url:
        clients = {name: Client(f"{url}review/", auth=(name, PASSWORDS[name]), verbose=False) for name in ("alice", "bob")}
        for name, action, reason in (("alice", "accept", None), ("bob", "reject", "wrong emotion")):
            shown = clients[name].predict(api_name="/review_next")
            while shown[0] is not None:
                shown = clients[name].predict(shown[0], action, "", reason, "", api_name="/review_decide")
        assert clients["alice"].predict(api_name="/review_adjudication_next")[0] is None  # she reviewed them
        rita = Client(f"{url}review/", auth=("rita", PASSWORDS["rita"]), verbose=False)
        conflict = rita.predict(api_name="/review_adjudication_next")
        assert "accepted as generated" in conflict[3] and "rejected" in conflict[3] and "wrong emotion" in conflict[3]
        following = rita.predict(conflict[0], "reject", conflict[4], "factually wrong", "", api_name="/review_adjudicate")
        assert following[0] not in (None, conflict[0])
        rita.predict(following[0], "edit", following[4] + " Settled.", None, "", api_name="/review_adjudicate")
        *_, figures = rita.predict(api_name="/review_dashboard")
    assert figures["agreement"]["reasoning"]["pairs"] == 1 and figures["agreement"]["conversation"]["pairs"] == 1
    assert figures["annotators"]["rita"] == {"adjudicated": 2}
    assert sum(counts["conflict"] for counts in figures["counts"].values()) == 0
