"""The app as users meet it: one server per session, driven by gradio_client and by headless Chromium."""

from pathlib import Path

import pytest
from gradio_client import handle_file

import app


def test_importing_app_starts_nothing():
    from emo_core.cues import perception

    assert callable(app.build_demo)
    assert not hasattr(app, "demo")  # built on demand only


def test_client_analyze_image(client, images):
    answer, boxed, chart, cues, result = client.predict(handle_file(str(images["astronaut"])), "fer7",
                                                        api_name="/analyze_image")
    assert answer.startswith("## happy") and result["answer"].startswith("Predicted emotion: happy. Reason:")
    assert result["label"] == "happy" and len(result["faces"]) == 1
    assert result["reason_by_model"] is False and "*Reason:* template" in answer
    assert Path(boxed).is_file()
    assert chart is not None
    rows = dict(map(tuple, cues["data"]))
    assert rows["face count"] == "1" and "not measured" in rows["scene type"]


def test_client_batch_gives_table_and_csv(client, images):
    table, csv_path = client.predict([handle_file(str(images["group5"])), handle_file(str(images["cat"]))],
                                     "emotion6", api_name="/analyze_images")
    assert [row[0] for row in table["data"]] == ["group5.jpg", "cat.jpg"]
    assert table["data"][0][1] == "joy"
    text = Path(csv_path).read_text()
    assert text.startswith("file,label,confidence") and "group5.jpg" in text


def test_client_names_the_class_set_by_its_dataset(client, images, clips):
    *_, result = client.predict(handle_file(str(images["astronaut"])), "emoset", api_name="/analyze_image")
    assert (result["class_set"], result["dataset"], result["label"]) == ("mikels8", "EmoSet", "amusement")
    table, csv_path = client.predict([handle_file(str(images["astronaut"]))], "fer2013", api_name="/analyze_images")
    assert table["data"][0][1] == "happy" and Path(csv_path).name == "emotions_fer7.csv"
    *_, merr, _ = client.predict(handle_file(str(clips["mute"])), "dfew", "emotion", api_name="/analyze_video")
    assert (merr["provenance"]["class_set"], merr["provenance"]["dataset"]) == ("dfew7", "DFEW")
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict(handle_file(str(images["astronaut"])), "imagenet", api_name="/analyze_image")


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"GIF89a\x00\x00", "not an image"),
                                               (b"plain text, not a picture", "not an image")])
def test_client_gets_clear_errors_and_server_keeps_serving(client, images, tmp_path, content, message):
    bad = tmp_path / "upload.jpg"
    bad.write_bytes(content)
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(str(bad)), "mikels8", api_name="/analyze_image")
    *_, result = client.predict(handle_file(str(images["astronaut"])), "mikels8", api_name="/analyze_image")
    assert result["label"] == "amusement"


def test_client_refuses_a_decompression_bomb(client, tmp_path):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)
    with pytest.raises(Exception, match="too large|over the"):
        client.predict(handle_file(str(bomb)), "mikels8", api_name="/analyze_image")


@pytest.mark.browser
def test_browser_upload_and_analyse(page, images, artifacts):
    assert "Gemma Terms of Use" in page.locator("#credits").inner_text()  # the notice Gemma's terms ask for
    page.set_input_files("#image-input input[type=file]", str(images["group5"]))
    page.get_by_text("group5.jpg").first.wait_for()
    page.locator("#class-set input").click()
    page.get_by_role("option", name="FER-7").click()
    page.click("#analyze-btn")
    # the answer streams in: faces and cues first ("…"), then the label and its reason
    page.locator("#answer", has_text="5 faces were found").wait_for()
    assert page.locator("#answer h2").inner_text().startswith("happy")
    page.locator("#chart").wait_for()
    page.screenshot(path=str(artifacts / "image_tab.png"), full_page=True)


@pytest.mark.browser
def test_browser_shows_an_error_for_a_broken_file(page, tmp_path, artifacts):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    page.set_input_files("#image-input input[type=file]", str(broken))
    page.get_by_text("broken.png").first.wait_for()
    page.click("#analyze-btn")
    toast = page.locator(".toast-body", has_text="Cannot analyse this input: the file is not an image")
    toast.first.wait_for()
    page.screenshot(path=str(artifacts / "image_tab_error.png"), full_page=True)


def test_client_analyze_video(client, clips):
    from tests.conftest import CLIP_PEAK

    answer, peak, au_chart, voice_chart, transcript, merr, merr_file = client.predict(
        handle_file(str(clips["speech"])), "mer2023", "reason", api_name="/analyze_video")
    assert "Predicted emotion:" in answer and "Reason:" in answer
    assert abs(merr["peak_index"] - CLIP_PEAK) <= 1
    assert "championship" in transcript.lower()
    assert Path(peak).is_file() and au_chart is not None and voice_chart is not None
    import json

    saved = json.loads(Path(merr_file).read_text())
    assert list(saved.values())[0]["peak_index"] == merr["peak_index"]


def test_client_video_errors_are_clear(client, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video at all")
    with pytest.raises(Exception, match="not a video"):
        client.predict(handle_file(str(bad)), "mer2023", "emotion", api_name="/analyze_video")


@pytest.mark.browser
def test_browser_video_tab(page, clips, artifacts):
    page.get_by_role("tab", name="Video + audio").click()
    page.set_input_files("#video-input input[type=file]", str(clips["speech"]))
    page.locator("#video-input video").first.wait_for()
    page.click("#video-btn")
    page.locator("#video-answer h2").wait_for()
    page.locator("#transcript textarea").wait_for()
    page.wait_for_function("document.querySelector('#transcript textarea').value.toLowerCase().includes('championship')")
    page.get_by_role("button", name="MERR record").click()
    page.locator("#merr-file", has_text="jaw_speech_merr").wait_for()  # the last update of the stream
    assert "Reason:" in page.locator("#video-answer").inner_text()
    page.screenshot(path=str(artifacts / "video_tab.png"), full_page=True)


@pytest.mark.browser
def test_browser_records_with_the_webcam_and_analyses_it(webcam_page, artifacts):
    """Record ~6 s with Gradio's webcam source (Chromium's fake camera plays the astronaut's face, its
    fake microphone espeak-ng speech, see ``webcam_media``), then analyse the recording: a browser
    MediaRecorder webm, which declares no duration."""
    page = webcam_page
    page.get_by_role("tab", name="Video + audio").click()
    video = page.locator("#video-input")
    video.get_by_role("button", name="Capture from camera").click()
    video.get_by_title("grant webcam access").click()  # "Click to Access Webcam": getUserMedia
    page.wait_for_function("(() => { const live = document.querySelector('#video-input video[data-testid=webcam-video]');"
                           " return live && live.readyState >= 2 && live.videoWidth === 640; })()")
    record = video.get_by_role("button", name="start recording")  # its aria-label; it reads Record / Stop
    record.filter(has_text="Record").click()
    record.filter(has_text="Stop").wait_for()
    page.wait_for_timeout(6_000)  # > the audio loop (2.6 s) + the sentence: one whole sentence is recorded
    page.screenshot(path=str(artifacts / "webcam_recording.png"))
    record.click()
    # Stopping uploads the recording; the component then shows it in a player instead of the live feed.
    video.locator("video[src*='sample.webm']").wait_for()
    page.click("#video-btn")
    page.get_by_role("button", name="MERR record").click()
    # error toasts; an "Info" toast may note the recording's cut-off end (Gradio's recorder drops its last chunk)
    errors = page.locator(".toast-body").filter(has=page.locator(".toast-title").get_by_text("Error", exact=True))
    done = page.locator("#merr-file", has_text="sample_merr")  # the last update of the stream
    done.or_(errors).first.wait_for(timeout=180_000)
    assert errors.count() == 0, errors.first.inner_text()  # e.g. the webm, with no duration, could not be read
    answer = page.locator("#video-answer").inner_text()
    assert "Predicted emotion:" in answer and "Reason:" in answer, answer
    assert "Based on: face expressions" in answer and "low confidence" not in answer, answer
    assert page.locator("#peak-frame img").get_attribute("src")  # the peak frame, with the face boxed
    transcript = page.locator("#transcript textarea").input_value()
    assert "championship" in transcript.lower(), transcript
    page.screenshot(path=str(artifacts / "webcam_video_tab.png"), full_page=True)

