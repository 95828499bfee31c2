"""The Humour captions tab as users meet it: its handler, ``/humour_captions`` through gradio_client
(streamed), and the tab in headless Chromium.

    .venv/bin/python -m pytest -q tests/test_humour_app.py
"""

from __future__ import annotations

import time

import pytest
from gradio_client import handle_file

from emo_core.humour import Caption, HumourResult
from tests import humour_media
from ui import humour_tab

TOP, BOTTOM = "ONE DOES NOT SIMPLY", "WALK INTO MORDOR"


@pytest.fixture(scope="module")
def meme_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("humour-app") / "meme.png"
    humour_media.meme(TOP, BOTTOM).save(path)
    return path


def squeezed(lines) -> list[str]:
    return [line.replace(" ", "") for line in lines]  # the recogniser may run two words together


def test_the_handler_streams_captions_then_the_result(meme_path, settings):
    updates = list(humour_tab.write_captions(str(meme_path), 2, 0.8, 3, settings))
    markdown, image, cue_rows, result = updates[0]
    assert markdown.startswith("### 0 of 2 captions …") and image.size == (640, 480) and result is None
    rows = dict(map(tuple, cue_rows))
    assert rows["face count"] == "0"
    assert "ONEDOESNOTSIMPLY" in rows["words in the image"].replace(" ", "")
    assert len(updates) >= 4  # the cues, the captions as they are written, the end
    markdown, *_, result = updates[-1]
    assert markdown.startswith("### 2 of 2 captions\n") and result["complete"]
    assert [c["seed"] for c in result["captions"]] == sorted(c["seed"] for c in result["captions"])
    assert result["captions"][0]["seed"] == 3 and squeezed(result["words"]) == squeezed([TOP, BOTTOM])
    for caption in result["captions"]:
        assert f"seed {caption['seed']}, temperature 0.8" in markdown
    assert "it does not see the picture" in markdown and "270M" in markdown


def test_captions_and_ocr_text_are_shown_as_text():
    hostile = "[click](http://example.com) **bold** <img src=x onerror=alert(1)> # heading"
    result = HumourResult(captions=[Caption(hostile, 7, 0.8)], requested=2, temperature=0.8, seed=7,
                          backend="offline", model="offline *model*", prompt_version="humour@1234", reads_picture=False,
                          cues=["no face found"], words=["`code` | table |"], word_scores=[0.9], attributes={},
                          draft=Caption("half *written", 8, 0.8), complete=False)
    markdown = humour_tab.captions_markdown(result)
    assert "\\[click\\]\\(http\\:\\/\\/example\\.com\\)" in markdown and "\\*\\*bold\\*\\*" in markdown
    assert "\\<img src\\=x onerror\\=alert\\(1\\)\\>" in markdown and "<img" not in markdown.replace("\\<img", "")
    assert "\\`code\\` \\| table \\|" in markdown and "half \\*written" in markdown
    assert "offline \\*model\\*" in markdown
    assert "*writing (seed 8, not yet checked):*" in markdown


def test_client_streams_captions(client, meme_path):
    from gradio_client.utils import Status

    job = client.submit(handle_file(str(meme_path)), 3, 0.8, 0, api_name="/humour_captions")
    deadline = time.monotonic() + 300
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.status().code == Status.FINISHED
    outputs = job.outputs()
    assert len(outputs) >= 5  # cues first, then captions word by word, then the result
    markdown, image, cues, result = outputs[-1]
    assert result["requested"] == 3 and len(result["captions"]) + bool(result["shortfall"]) >= 1
    assert len(result["captions"]) == 3 or result["shortfall"].startswith(f"only {len(result['captions'])} of 3")
    assert squeezed(result["words"]) == squeezed([TOP, BOTTOM]) and result["reads_picture"] is False
    counts = [text.split(" of ")[0] for text, *_ in outputs]
    assert counts[0] == "### 0" and counts[-1] == f"### {len(result['captions'])}"
    assert outputs[0][1] is not None  # the analysed image comes with the first update


def test_client_refuses_bad_input_and_keeps_serving(client, meme_path, tmp_path):
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("plain text, not a picture")
    with pytest.raises(Exception, match="not an image"):
        client.predict(handle_file(str(text_file)), 2, 0.8, 0, api_name="/humour_captions")
    with pytest.raises(Exception, match="ask for 1 to 5 captions|maximum|<= 5"):
        client.predict(handle_file(str(meme_path)), 9, 0.8, 0, api_name="/humour_captions")
    with pytest.raises(Exception, match="choosing another model is turned off"):
        client.predict(handle_file(str(meme_path)), 1, 0.8, 0, "hf", "some/model", api_name="/humour_captions")
    *_, result = client.predict(handle_file(str(meme_path)), 1, 0.8, 0, api_name="/humour_captions")
    assert result["complete"] and result["requested"] == 1


@pytest.mark.browser
def test_browser_humour_tab(page, meme_path, artifacts):
    page.get_by_role("tab", name="Humour captions").click()
    intro = page.locator("#humour-intro").inner_text()
    assert "270M" in intro and "not the picture itself" in intro
    # The examples hold the meme drawn when the app was built. (Clicking one is not tested here: the test
    # process serves several apps, and one that deletes its cached files (on its schedule, or when it
    # is closed) deletes the example's cached copy, which has the same content hash in every app.)
    assert page.get_by_text("meme.png").count() >= 1
    page.set_input_files("#humour-input input[type=file]", str(meme_path))
    page.locator("#humour-input", has_text="meme").wait_for()  # the file name is shown in two parts
    page.locator("#humour-n input[type=number]").fill("2")
    page.click("#humour-btn")
    page.locator("#humour-captions h3", has_text="of 2 captions").filter(has_not_text="…").wait_for(timeout=180_000)
    text = page.locator("#humour-captions").inner_text()
    assert "seed 0, temperature 0.8" in text and "does not see the picture" in text
    assert "MORDOR" in text  # the words read in the image
    page.locator("#humour-image img").wait_for()
    page.screenshot(path=str(artifacts / "humour_tab.png"), full_page=True)
