"""Safe to put in public: who may choose the model, what errors reveal, and bounded queue and files.

Unit tests of ``emo_core.model_choice``, ``redact_paths`` and the backend leases, then the app over
HTTP with gradio_client: a visitor cannot switch the model when switching is off, nor pick one outside
the allow-list when it is on; errors name no server path; a full queue answers "busy"; temp folders
and gradio's file cache do not grow over 20 requests.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from emo_core import Settings
from emo_core.backends import BACKENDS, backend_lease, get_backend, hf_loading
from emo_core.backends.base import Backend
from emo_core.errors import redact_paths
from emo_core.model_choice import ModelChoiceError, choose_model, hub_offline, model_options, parse_allowlist
from tests.conftest import served_app
from tests.tiny_models import tiny_model_dir

# ------------------------------------------------------------------------------------------------
# choosing the model


def test_without_switching_only_the_configured_model_is_accepted(tmp_path):
    settings = Settings(data_dir=tmp_path, preload=False)
    assert choose_model(settings, None, None) is settings
    assert choose_model(settings, "offline", "") is settings
    for backend, model in [("hf", "Salesforce/instructblip-vicuna-7b"), ("openai", "gpt-4o"), ("hf", "/etc"),
                           ("offline", "anything-else")]:
        with pytest.raises(ModelChoiceError, match="turned off"):
            choose_model(settings, backend, model)


def test_allow_list_names_hide_folders_and_refuse_the_rest(tmp_path):
    folder = tmp_path / "models" / "emovit-ckpt"
    settings = Settings(data_dir=tmp_path, preload=False, allow_model_switch=True,
                        model_allowlist=f"offline, hf:{folder}, Big one = hf:Salesforce/instructblip-vicuna-7b,"
                                        "openai:gpt-4o-mini")
    names = [(o.backend, o.name) for o in model_options(settings)]
    assert names[0][0] == "offline" and len(names) == 4  # "offline" appears once, configured first
    assert ("hf", "emovit-ckpt") in names and ("hf", "Big one") in names and ("openai", "gpt-4o-mini") in names
    assert str(tmp_path) not in repr(names)

    assert choose_model(settings, "hf", "emovit-ckpt").model == str(folder)
    chosen = choose_model(settings, "hf", "Big one")
    assert (chosen.backend, chosen.model) == ("hf", "Salesforce/instructblip-vicuna-7b")
    assert choose_model(settings, "openai", "gpt-4o-mini").backend == "openai"
    for backend, model in [("hf", "gpt-4o-mini"), ("openai", "gpt-4o"), ("hf", "/srv/other"), ("nope", "x")]:
        with pytest.raises(ModelChoiceError, match="not offered here") as refused:
            choose_model(settings, backend, model)
        assert str(tmp_path) not in str(refused.value)


def test_the_allow_list_knows_every_backend_of_the_registry():
    from emo_core.model_allowlist import BACKEND_NAMES

    assert set(BACKEND_NAMES) == set(BACKENDS)


@pytest.mark.parametrize("entry", ["hf", "hf:", "gpt:gpt-4o", "name=", "openai :"])
def test_malformed_allow_list_fails_at_start(tmp_path, entry):
    with pytest.raises(ValueError, match="allow-list entry"):
        parse_allowlist(entry)
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, model_allowlist=entry)


def test_hub_access_follows_the_configured_models(tmp_path):
    base = Settings(data_dir=tmp_path, preload=False)
    assert hub_offline(base)  # the offline default never needs the hub
    assert not hub_offline(dataclasses.replace(base, backend="hf", model="Salesforce/blip2-opt-2.7b"))
    listed = dataclasses.replace(base, allow_model_switch=True, model_allowlist="hf:Salesforce/blip2-opt-2.7b")
    assert not hub_offline(listed)
    assert hub_offline(dataclasses.replace(listed, allow_model_switch=False))  # a list nobody may use
    assert hub_offline(dataclasses.replace(listed, hub_access="offline"))
    assert not hub_offline(dataclasses.replace(base, hub_access="online"))


def test_hf_loader_does_not_ask_the_hub_when_hub_access_is_off(tmp_path, monkeypatch):
    """With hub access off, a hub id that is not in the local cache fails at once with a hint, and no
    request leaves the process (socket creation is refused for the duration)."""
    import socket

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))

    def no_network(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(socket, "create_connection", no_network)
    settings = Settings(data_dir=tmp_path, preload=False, backend="hf", model="someone/not-cached-here",
                        hub_access="offline")
    options = hf_loading.LoadOptions.from_settings(settings)
    assert options.local_files_only
    with pytest.raises(Exception, match="hub access is off"):
        hf_loading.load_config(options.source, options.local_files_only)


def test_redact_paths_keeps_words_and_hub_ids():
    cases = {
        "cannot load the model '/srv/models/secret': no config.json in /srv/models/secret.":
            "cannot load the model 'secret': no config.json in secret.",
        "no such file: /tmp/gradio/0a1b/photo.jpg": "no such file: photo.jpg",
        "no answer from http://10.0.0.7:8000/v1 within 60 s": "no answer from <server> within 60 s",
        "cannot read the configuration of 'Salesforce/blip2-opt-2.7b'": "cannot read the configuration of "
                                                                        "'Salesforce/blip2-opt-2.7b'",
        "3/4 faces, and/or a ratio of 1/2": "3/4 faces, and/or a ratio of 1/2",
        "said <b>no</b> in </script>": "said <b>no</b> in </script>",
        r"C:\Users\me\model.bin is missing": "model.bin is missing",
    }
    for text, expected in cases.items():
        assert redact_paths(text) == expected


# ------------------------------------------------------------------------------------------------
# leases: a model in use is never unloaded, and a load does not hold up other models


class _SlowBackend(Backend):
    """A stand-in registered as a backend: records loads and unloads; ``load`` takes LOAD_SECONDS."""

    name = "slowtest"
    LOAD_SECONDS = 1.5
    events: list[tuple[str, str]] = []

    def __init__(self, settings: Settings) -> None:
        self.settings, self.loaded = settings, False

    def load(self):
        if not self.loaded:
            time.sleep(self.LOAD_SECONDS)
            self.loaded = True
            self.events.append(("load", self.settings.model))
        return self

    def unload(self) -> None:
        self.loaded = False
        self.events.append(("unload", self.settings.model))


@pytest.fixture()
def slow_backend(monkeypatch, tmp_path):
    monkeypatch.setitem(BACKENDS, "slowtest", (__name__, "_SlowBackend"))
    _SlowBackend.events = []
    return lambda model, kept=1: Settings(data_dir=tmp_path, preload=False, backend="offline", model=model,
                                          max_loaded_models=kept)


def test_a_model_in_use_is_not_unloaded_by_a_switch(slow_backend):
    first, second = slow_backend("first"), slow_backend("second")
    with backend_lease("slowtest", first) as held:
        held.load()
        other = get_backend("slowtest", second)  # another visitor picks another model meanwhile
        other.load()
        assert ("unload", "first") not in _SlowBackend.events and held.loaded
    assert ("unload", "first") in _SlowBackend.events  # gone once its request ended
    assert other.loaded and ("unload", "second") not in _SlowBackend.events


def test_loading_one_model_does_not_block_a_request_on_another(slow_backend):
    ready = slow_backend("ready", kept=2)  # room for both, so the switch itself unloads nothing
    with backend_lease("slowtest", ready) as backend:
        backend.load()
    loading = threading.Thread(target=lambda: get_backend("slowtest", slow_backend("cold", kept=2)).load())
    loading.start()
    time.sleep(0.2)  # the cold model is loading now
    started = time.perf_counter()
    with backend_lease("slowtest", ready) as backend:
        assert backend.load().loaded
    waited = time.perf_counter() - started
    loading.join()
    assert waited < 0.5 < _SlowBackend.LOAD_SECONDS


def test_hf_cache_loads_one_model_while_another_serves(monkeypatch):
    """``hf_loading.acquire``: a model being loaded blocks only requests for that same model."""
    real_load = hf_loading._load
    slow = hf_loading.LoadOptions("slow-model")

    def load(options):
        if options == slow:
            time.sleep(1.5)
            return "slow-loaded"
        return real_load(options)

    monkeypatch.setattr(hf_loading, "_load", load)
    fast = hf_loading.LoadOptions(str(tiny_model_dir("blip2")), device="cpu")
    hf_loading.acquire(fast)
    loader = threading.Thread(target=hf_loading.acquire, args=(slow,))
    loader.start()
    time.sleep(0.2)
    started = time.perf_counter()
    assert hf_loading.acquire(fast) is not None
    assert time.perf_counter() - started < 0.5
    loader.join()
    assert hf_loading.acquire(slow) == "slow-loaded"
    with hf_loading._CACHE_LOCK:
        hf_loading._CACHE.pop(slow)
    hf_loading.release(fast)


# ------------------------------------------------------------------------------------------------
# over HTTP


def _errors_of(call) -> str:
    with pytest.raises(Exception) as refused:
        call()
    return str(refused.value)


def test_client_cannot_switch_the_model_when_switching_is_off(client, images):
    photo = handle_file(str(images["astronaut"]))
    for backend, model in [("hf", "Salesforce/instructblip-vicuna-7b"), ("openai", "gpt-4o"),
                           ("hf", "/etc/passwd")]:
        message = _errors_of(lambda: client.predict(photo, "mikels8", backend, model, api_name="/analyze_image"))
        assert "turned off" in message and "/etc" not in message
        message = _errors_of(lambda: client.predict([photo], "mikels8", backend, model, api_name="/analyze_images"))
        assert "turned off" in message
    *_, result = client.predict(photo, "mikels8", "offline", "", api_name="/analyze_image")
    assert result["label"]  # the configured model still answers


def test_client_errors_name_no_server_path(client, images, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    messages = [
        _errors_of(lambda: client.predict(handle_file(str(bad)), "mikels8", api_name="/analyze_image")),
        _errors_of(lambda: client.predict(handle_file(str(bad)), "mer2023", "emotion", api_name="/analyze_video")),
    ]
    assert "broken.jpg" in messages[1]  # named by its name only
    for message in messages:
        assert message.startswith("Cannot analyse this input")
        assert tempfile.gettempdir() not in message and str(tmp_path) not in message and "/gradio/" not in message


@pytest.fixture(scope="module")
def switching_app(tmp_path_factory):
    """An app that offers the offline default and a tiny hf checkpoint (by folder), plus a broken entry."""
    tiny = tiny_model_dir("blip2")
    broken = tmp_path_factory.mktemp("private-models") / "half-copied"
    broken.mkdir()
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), preload=False, allow_model_switch=True,
                        model_allowlist=f"hf:{tiny},Broken=hf:{broken},hf:{tiny_model_dir('llava')}", device="cpu")
    with served_app(settings) as url:
        yield Client(url, verbose=False), tiny, broken


def test_client_may_pick_only_allow_listed_models(switching_app, images):
    client, tiny, broken = switching_app
    photo = handle_file(str(images["astronaut"]))
    *_, result = client.predict(photo, "mikels8", "hf", tiny.name, api_name="/analyze_image")
    assert result["backend"].startswith("hf: ") and tiny.name in result["backend"]
    assert result["basis"] == "model likelihood of each label"
    assert result["reason_by_model"] and result["reason_note"].startswith("written by") and result["limits"] == []
    assert sum(result["distribution"].values()) == pytest.approx(1.0)
    assert str(tiny.parent) not in str(result)
    *_, back = client.predict(photo, "mikels8", "offline", "", api_name="/analyze_image")
    assert back["label"] == "amusement" and back["basis"].startswith("face expressions")
    for backend, model in [("hf", str(tiny.parent / "other")), ("hf", "Salesforce/blip2-opt-2.7b"),
                           ("openai", "gpt-4o"), ("hf", "")]:
        message = _errors_of(lambda: client.predict(photo, "mikels8", backend, model, api_name="/analyze_image"))
        assert "not offered here" in message and tiny.name in message and str(tiny.parent) not in message
    message = _errors_of(lambda: client.predict(photo, "mikels8", "hf", "Broken", api_name="/analyze_image"))
    assert "cannot" in message and str(broken.parent) not in message and tempfile.gettempdir() not in message


def _gradio_cache_files() -> set[Path]:
    from gradio.utils import get_upload_folder

    return {path for path in Path(get_upload_folder()).rglob("*") if path.is_file()}


def test_temp_folders_and_file_cache_do_not_grow(tmp_path, images, clips, monkeypatch):
    """20 requests (and two that fail) leave no request folder behind, and every file they put in
    gradio's cache is gone after ``cache_max_age``. The server's temporary folder is private to the test
    (other processes on the machine also use the system one)."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # also moves gradio's cache, built below
    settings = Settings(data_dir=tmp_path / "data", preload=False, cache_max_age=3)
    with served_app(settings) as url:
        client = Client(url, verbose=False)
        cache_before = _gradio_cache_files()
        photos = [images[name] for name in ("astronaut", "coffee", "cat", "group5", "drawn")]
        for round_ in range(4):
            for photo in photos[:3]:
                client.predict(handle_file(str(photo)), "emotion6", api_name="/analyze_image")
            client.predict([handle_file(str(p)) for p in photos], "mikels8", api_name="/analyze_images")
        corrupt = tmp_path / "corrupt.png"
        corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
        for call in (lambda: client.predict(handle_file(str(corrupt)), "emotion6", api_name="/analyze_image"),
                     lambda: client.predict(handle_file(str(corrupt)), "mer2023", "emotion", api_name="/analyze_video")):
            _errors_of(call)  # a failing request must clean up as well
        client.predict(handle_file(str(clips["mute"])), "mer2023", "emotion", api_name="/analyze_video")
        # A streaming handler's last update reaches the client just before its generator finishes.
        _wait_for(lambda: not list(private.glob("emolens-*")), seconds=10)  # every request removed what it made
        assert Path(private / "gradio").is_dir()
        assert _gradio_cache_files() - cache_before  # uploads and results were cached ...
        _wait_for(lambda: not _gradio_cache_files() - cache_before, seconds=15)  # ... and deleted after 3 s
        leftovers = [path for path in (private / "gradio").iterdir() if path not in cache_before]
        _wait_for(lambda: all(not path.exists() for path in leftovers), seconds=15)  # their folders too


def test_a_full_queue_answers_busy(tmp_path):
    """One request running and one waiting fill a queue of one; the third is told the server is busy."""
    from gradio_client.utils import QueueError, Status

    from tests import media

    batches = []
    for batch in range(3):  # distinct photos: repeated ones would come from the perception cache at once
        paths = []
        for index in range(8):
            path = tmp_path / f"group{batch}_{index}.jpg"
            media.group_photo(3 + index % 3, seed=100 * batch + index).save(path, quality=90)
            paths.append(handle_file(str(path)))
        batches.append(paths)
    settings = Settings(data_dir=tmp_path, preload=False, max_queue=1, concurrency=1)
    with served_app(settings) as url:
        client = Client(url, verbose=False)
        running = client.submit(batches[0], "mikels8", api_name="/analyze_images")
        _wait_for(lambda: running.status().code in (Status.PROCESSING, Status.PROGRESS))
        waiting = client.submit(batches[1], "mikels8", api_name="/analyze_images")
        _wait_for(lambda: waiting.status().code == Status.IN_QUEUE)
        refused = client.submit(batches[2], "mikels8", api_name="/analyze_images")
        with pytest.raises(QueueError, match="full|busy"):
            refused.result(timeout=60)
        assert running.result(timeout=120)[0]["data"] and waiting.result(timeout=120)[0]["data"]


def _wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_client_sees_the_reason_of_an_allow_listed_hf_model_stream(switching_app, images):
    client, *_ = switching_app
    job = client.submit(handle_file(str(images["astronaut"])), "mikels8", "hf", tiny_model_dir("llava").name,
                        api_name="/analyze_image")
    answer, boxed, chart, _, result = job.result(timeout=600)
    updates = job.outputs()
    assert len(updates) > 3  # faces and cues first, then the label, then the reason piece by piece
    streamed = [update[0] for update in updates[:-1]]
    assert len(set(streamed)) == len(streamed)  # each update says something new
    assert all(text.startswith(f"## {result['label']}  ·  ") for text in streamed[1:])
    assert answer.startswith(f"## {result['label']}  ·  {result['confidence']:.0%}")
    assert result["distribution_kind"] == "model scores" and chart is not None and Path(boxed).is_file()
    assert result["raw_text"].startswith(f"Predicted emotion: {result['label']}. Reason:")


def test_client_upload_of_an_hls_playlist_is_refused(client, clips, tmp_path):
    """A playlist uploaded as a video, pointing at a real local segment ffmpeg could play: refused over
    HTTP with a plain message, and the server keeps serving."""
    import subprocess

    from emo_core.ffmpeg_input import ffmpeg_binary
    from tests.test_ffmpeg_input import hls_playlist

    segment = tmp_path / "segment0.ts"
    subprocess.run([ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-i", str(clips["speech"]), "-c", "copy",
                    "-f", "mpegts", str(segment)], check=True, timeout=60)
    for name, target in [("clip.mp4", str(segment)), ("clip.m3u8", f"file://{segment}"),
                         ("list.mp4", "http://127.0.0.1:9/segment.ts")]:
        playlist = tmp_path / name
        playlist.write_text(hls_playlist(target))
        message = _errors_of(lambda: client.predict(handle_file(str(playlist)), "mer2023", "emotion",
                                                    api_name="/analyze_video"))
        assert "playlist" in message and str(tmp_path) not in message, message
    answer, *_ = client.predict(handle_file(str(clips["mute"])), "mer2023", "emotion", api_name="/analyze_video")
    assert "Predicted emotion" in answer
