"""Untrusted text in the real app, in headless Chromium: what a model answers, what its server says when
it refuses, the model's name and uploaded file names show as text, never as links, images, headings,
scripts or LaTeX.

The app runs the ``openai`` backend against a scripted local OpenAI-compatible server (the stub of
tests/test_backend_openai.py) that answers with hostile Markdown.

    .venv/bin/python -m pytest -q tests/test_untrusted_text.py
"""

from __future__ import annotations

import pytest

from emo_core import Settings
from tests.conftest import open_app
from tests.test_backend_openai import StubServer, completion, free_port

HOSTILE_PIECES = [
    "[click](http://evil.example)",
    "![x](http://evil.example/x.png)",
    "# Heading",
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "$\\frac{1}{2}$",
    "$$x^2$$",
    "**bold**",
    "| a | b |",
    "http://bare.example",
]
HOSTILE_REASON = "\n".join(HOSTILE_PIECES)
HOSTILE_MODEL = "stub-model [m](http://evil.example) <i>x</i> $$y^2$$ _u_"
# Gradio drops <>:"/\|?*`$!{} from uploaded file names; what is left can still be Markdown or an entity.
HOSTILE_FILE = "[x](evil.example) _em_ &amp; #h ~~s~~ (1).jpg"
# Elements that none of this may become (the answer's own markup is one h2, strong, em and br).
INJECTED = ["a", "img", "h1", "h3", "script", ".katex", "table", "blockquote", "code", "pre", "ul", "ol", "del",
            "i"]


@pytest.fixture(scope="module")
def stub():
    server = StubServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def hostile_app_url(stub, tmp_path_factory):
    """A second app, on the openai backend pointed at the stub, with a hostile model name."""
    from app import build_demo

    settings = Settings(backend="openai", model=HOSTILE_MODEL, openai_base_url=stub.base_url,
                        api_key_env="EMOLENS_TEST_NO_KEY", request_timeout=30, max_retries=0, preload=False,
                        data_dir=tmp_path_factory.mktemp("hostile-data"))
    demo = build_demo(settings)
    demo.queue(default_concurrency_limit=1)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture()
def hostile_page(browser_context, hostile_app_url, stub):
    stub.script.clear()
    stub.requests.clear()
    page = browser_context.new_page()
    page.set_default_timeout(120_000)
    open_app(page, hostile_app_url)
    yield page
    page.close()


def injected(page, selector: str) -> dict[str, int]:
    """How many elements of each INJECTED kind are inside ``selector`` (only non-zero counts)."""
    counts = {kind: page.locator(f"{selector} {kind}").count() for kind in INJECTED}
    return {kind: count for kind, count in counts.items() if count}


def answer_with_reason() -> dict:
    return completion(f"Predicted emotion: awe. Reason: {HOSTILE_REASON}")


@pytest.mark.browser
def test_a_hostile_model_answer_and_model_name_show_as_text(hostile_page, stub, images, artifacts):
    page = hostile_page
    stub.then(200, answer_with_reason())  # one answer gives the label and its reason
    header = page.locator("#app-header")
    assert header.locator("code").inner_text() == HOSTILE_MODEL
    assert injected(page, "#app-header") == {"h1": 1, "code": 1}  # the title, the model name
    page.set_input_files("#image-input input[type=file]", str(images["astronaut"]))
    page.get_by_text("astronaut.jpg").first.wait_for()
    page.click("#analyze-btn")
    # the stream's last update: the whole answer, without the "…" that streaming updates end with
    page.wait_for_function("() => { const t = document.querySelector('#answer').innerText;"
                           " return t.includes('Based on') && t.includes('bare.example') && !t.includes('…'); }")
    assert len(stub.requests) == 1
    assert page.locator("#answer h2").inner_text().startswith("awe")
    assert injected(page, "#answer") == {}
    assert page.locator("#answer h2").count() == 1
    text = page.locator("#answer").inner_text()
    for piece in HOSTILE_PIECES + [HOSTILE_MODEL]:
        assert piece in text, (piece, text)
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(artifacts / "untrusted_image_answer.png"), full_page=True)


@pytest.mark.browser
def test_a_hostile_refusal_from_the_server_shows_as_text(hostile_page, stub, images, artifacts):
    page = hostile_page
    refusal = '<img src="http://evil.example/x.png"> <a href="http://evil.example">click</a> & <b>bold</b>'
    stub.then(400, {"error": {"message": refusal}})
    page.set_input_files("#image-input input[type=file]", str(images["astronaut"]))
    page.get_by_text("astronaut.jpg").first.wait_for()
    page.click("#analyze-btn")
    toast = page.locator(".toast-body", has_text="rejected the request").first
    toast.wait_for()
    shown = refusal.replace("http://evil.example/x.png", "<server>").replace("http://evil.example", "<server>")
    assert f"(400: {shown})" in toast.inner_text()  # literal tags; addresses hidden like every server's
    assert {kind: toast.locator(kind).count() for kind in ("img", "a", "b")} == {"img": 0, "a": 0, "b": 0}
    page.screenshot(path=str(artifacts / "untrusted_error_toast.png"), full_page=True)


@pytest.mark.browser
def test_hostile_file_names_show_as_text(hostile_page, stub, images, tmp_path, artifacts):
    page = hostile_page
    stub.then(200, answer_with_reason())  # the batch asks for the good image's label only
    (tmp_path / "good").mkdir()
    (tmp_path / "empty").mkdir()
    good = tmp_path / "good" / HOSTILE_FILE
    good.write_bytes(images["astronaut"].read_bytes())
    empty = tmp_path / "empty" / ("empty " + HOSTILE_FILE)
    empty.write_bytes(b"")

    # one empty image: the error toast names the file
    page.set_input_files("#image-input input[type=file]", str(empty))
    page.get_by_text(empty.name).first.wait_for()
    page.click("#analyze-btn")
    toast = page.locator(".toast-body", has_text="is empty").first
    toast.wait_for()
    assert f"Cannot analyse this input: {empty.name} is empty (0 bytes)" in toast.inner_text()
    assert {kind: toast.locator(kind).count() for kind in ("a", "em", "del")} == {"a": 0, "em": 0, "del": 0}

    # both in a batch: the table names them
    page.get_by_role("button", name="Several images at once").click()
    page.set_input_files("#batch-input input[type=file]", [str(good), str(empty)])
    page.click("#batch-btn")
    page.locator("#batch-csv", has_text="emotions_").wait_for()
    table = page.locator("#batch-table")
    text = table.inner_text()
    assert good.name in text and empty.name in text, text
    assert {kind: table.locator(kind).count() for kind in ("a", "em", "del", "h1")} == {
        "a": 0, "em": 0, "del": 0, "h1": 0}
    page.screenshot(path=str(artifacts / "untrusted_file_names.png"), full_page=True)


@pytest.mark.browser
def test_a_hostile_model_answer_in_the_video_tab_shows_as_text(hostile_page, stub, clips, artifacts):
    page = hostile_page
    stub.then(200, answer_with_reason())
    page.get_by_role("tab", name="Video + audio").click()
    page.set_input_files("#video-input input[type=file]", str(clips["speech"]))
    page.locator("#video-input video").first.wait_for()
    page.click("#video-btn")
    page.get_by_role("button", name="MERR record").click()
    page.locator("#merr-file", has_text="jaw_speech_merr").wait_for(timeout=300_000)  # the last update
    assert len(stub.requests) == 1
    assert injected(page, "#video-answer") == {}
    text = page.locator("#video-answer").inner_text()
    for piece in HOSTILE_PIECES + [HOSTILE_MODEL]:
        assert piece in text, (piece, text)
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(artifacts / "untrusted_video_answer.png"), full_page=True)
