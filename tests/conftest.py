"""Shared fixtures: settings, example images, one app server and one headless browser per session."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tests' models are built from configs, never downloaded
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402

from emo_core import Settings  # noqa: E402
import numpy as np  # noqa: E402

from tests import media, media_av  # noqa: E402
from tests.app_process import free_port  # noqa: E402

# Fixtures that several test modules share, each started once per session: served_model (transformers serve).
pytest_plugins = ("tests.openai_server",)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/setup.sh --test installs it)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("data"), preload=False)


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    """Example files on disk: real photos from scikit-image and a generated group photo."""
    folder = tmp_path_factory.mktemp("images")
    files = {
        "astronaut": media.astronaut(),
        "coffee": media.coffee(),
        "cat": media.chelsea(),
        "group5": media.group_photo(5, seed=3),
        "drawn": media.drawn_scene(),
    }
    paths = {}
    for name, image in files.items():
        paths[name] = folder / f"{name}.jpg"
        image.save(paths[name], quality=92)
    return paths


CLIP_FPS, CLIP_PEAK = 30, 60
CLIP_SENTENCE = "I can't believe we actually won the championship today"


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """4 s clips at 30 fps: the astronaut's jaw drops at frame 60, with espeak-ng speech ("speech"),
    without an audio track ("mute"); and a drawn scene without a face, with the speech ("no_face")."""
    folder = tmp_path_factory.mktemp("clips")
    speech = media_av.pad_with_silence(media_av.speech_wav(CLIP_SENTENCE, folder / "speech.wav", pitch=60, speed=160),
                                       folder / "speech_padded.wav", before=0.3, after=0.3)
    frames = media.expression_frames(n_frames=4 * CLIP_FPS, peak=CLIP_PEAK)
    play = media.frame_function(frames, CLIP_FPS)
    return {
        "speech": media_av.mux_video(play, speech, folder / "jaw_speech.mp4", CLIP_FPS, duration=4.0),
        "mute": media_av.mux_video(play, None, folder / "jaw_mute.mp4", CLIP_FPS, duration=4.0),
        "no_face": media_av.mux_video(np.asarray(media.drawn_scene((640, 360))), speech, folder / "no_face.mp4", CLIP_FPS),
    }


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def app_url(settings) -> str:
    """The app, served once per session on a free loopback port."""
    with served_app(settings) as url:
        yield url


@contextmanager
def served_app(settings: Settings) -> Iterator[str]:
    """The app (``app.build_app``: public tabs and private pages) built from ``settings``, served by uvicorn
    on a free loopback port until the block ends."""
    from gradio.http_server import Server

    from app import build_app, server_config

    server = Server(server_config(settings, build_app(settings), host="127.0.0.1", port=free_port()))
    server.run_in_thread()
    try:
        yield f"http://127.0.0.1:{server.config.port}/"
    finally:
        server.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright driver per session (sync_playwright cannot be nested) for all browser contexts."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/setup.sh --test`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def _launch(playwright, profile: str, args: list[str], **options):
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True, args=args, viewport={"width": 1400, "height": 1100},
        **options,
    )


@pytest.fixture(scope="session")
def browser_context(playwright_driver):
    with tempfile.TemporaryDirectory() as profile:
        context = _launch(playwright_driver, profile, CHROMIUM_ARGS)
        yield context
        context.close()


WEBCAM_SENTENCE = "We won the championship"


@pytest.fixture(scope="session")
def webcam_media(tmp_path_factory) -> dict[str, Path]:
    """What the fake webcam and microphone play, each looping on its own: a 3 s .y4m of the astronaut
    whose jaw drops at 1.5 s, and espeak-ng saying WEBCAM_SENTENCE in a 2.6 s wav."""
    folder = tmp_path_factory.mktemp("webcam")
    speech = media_av.speech_wav(WEBCAM_SENTENCE, folder / "sentence.wav", pitch=60, speed=160)
    return {
        "video": media_av.y4m_video(media.expression_frames(n_frames=3 * CLIP_FPS, peak=45), folder / "face.y4m",
                                    CLIP_FPS),
        "audio": media_av.pad_with_silence(speech, folder / "speech.wav", before=0.3, after=0.5),
    }


@pytest.fixture()
def webcam_page(playwright_driver, webcam_media, app_url):
    """A page of the app in its own Chromium whose camera and microphone are fakes fed by ``webcam_media``.

    The fake-device flags only act at launch, so this is a second browser rather than the session's:
    the other browser tests keep a browser without (and without access to) any media device, and do not
    pay for generating the fake media."""
    args = CHROMIUM_ARGS + [
        "--use-fake-device-for-media-stream",  # fake camera and microphone instead of real devices
        "--use-fake-ui-for-media-stream",  # accept getUserMedia without a permission prompt
        f"--use-file-for-fake-video-capture={webcam_media['video']}",
        f"--use-file-for-fake-audio-capture={webcam_media['audio']}",
    ]
    with tempfile.TemporaryDirectory() as profile:
        context = _launch(playwright_driver, profile, args, permissions=["camera", "microphone"])
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            open_app(page, app_url)
            yield page
        finally:
            context.close()


@pytest.fixture()
def page(browser_context, app_url):
    page = browser_context.new_page()
    page.set_default_timeout(60_000)
    open_app(page, app_url)
    yield page
    page.close()


def open_app(page, url: str) -> None:
    """Go to the app and wait until it has loaded its scripts and config (on a loaded machine a file set
    before the page's scripts listen is never uploaded)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url)
    try:
        page.wait_for_load_state("networkidle", timeout=30_000)
    except PlaywrightTimeout:
        pass  # a page that keeps a connection open is still usable; the tests' own waits follow
    page.locator("#credits").wait_for()  # the last block of the layout: everything above it is rendered
