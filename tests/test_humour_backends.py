"""Humour captions through the ``hf`` backend (a tiny random LLaVA, loaded like a hub checkpoint) and the
``openai`` backend (a scripted OpenAI-compatible server on 127.0.0.1).

    .venv/bin/python -m pytest -q tests/test_humour_backends.py
"""

from __future__ import annotations

import pytest

from emo_core import Settings, prompts
from emo_core.backends.hf import HFBackend
from emo_core.humour import humour_captions, humour_captions_stream, prompt_version
from tests import humour_media
# the scripted server's fixtures (`stub`, and `fast_backoff`, which is autouse) and backend, as the openai tests use them
from tests.test_backend_openai import completion, fast_backoff, stub, stub_backend  # noqa: F401
from tests.tiny_models import tiny_model_dir

TOP, BOTTOM = "TRAFFIC JAM", "AGAIN"


@pytest.fixture(scope="module")
def meme_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("humour-backends") / "meme.png"
    humour_media.meme(TOP, BOTTOM).save(path)
    return path


def user_text(request: dict) -> str:
    (message,) = request["body"]["messages"]
    return " ".join(part["text"] for part in message["content"] if part["type"] == "text")


def test_openai_captions_see_the_picture_and_the_prompt_and_drop_repeats(stub, meme_path, settings):  # noqa: F811 (the imported fixture)
    stub.then(200, completion('Caption: "Stuck in traffic again, so I started a podcast."'))
    stub.then(200, completion("Stuck in traffic again, so I started a podcast!"))  # the same joke
    stub.then(200, completion("My car has seen more of this road than my family has seen of me.\nCaption: more"))
    updates = []
    for result in humour_captions_stream(meme_path, 2, 0.7, 40, backend=stub_backend(stub, max_retries=0), settings=settings):
        updates.append((len(result.captions), result.draft.text if result.draft else None))
    assert [(c.text, c.seed, c.temperature) for c in result.captions] == [
        ("Stuck in traffic again, so I started a podcast.", 40, 0.7),
        ("My car has seen more of this road than my family has seen of me.", 42, 0.7)]
    assert [(r.seed, r.problem.split(" (")[0]) for r in result.rejected] == [
        (41, "nearly the same as an earlier caption")]
    assert len({draft for _, draft in updates if draft}) >= 6  # the captions streamed in, word by word
    assert result.reads_picture and result.model == "openai: stub-model" and result.backend == "openai"
    assert result.prompt_version == prompt_version("humour")
    bodies = [request["body"] for request in stub.requests]
    assert [(body["seed"], body["temperature"], body["stream"]) for body in bodies] == [
        (40, 0.7, True), (41, 0.7, True), (42, 0.7, True)]
    (message,) = bodies[0]["messages"]
    assert [part["type"] for part in message["content"]] == ["image_url", "text"]
    assert message["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    text = user_text(stub.requests[0])
    instruction = prompts.template("humour")
    assert text.startswith(instruction.split("{cues}")[0])  # EmoVIT's humour task, then the cues
    assert "no face found; " in text and "(brightness " in text and "(colorfulness " in text
    read = text.split("Words written in the image: ")[1].split(". Answer")[0]
    assert read.replace(" ", "") == f'"{TOP}"/"{BOTTOM}"'.replace(" ", "")


def test_openai_server_errors_end_the_request_with_what_was_written(stub, meme_path, settings):  # noqa: F811 (the imported fixture)
    stub.then(200, completion("Stuck in traffic again, so I started a podcast."))
    stub.then(400, {"error": {"message": "model not found"}})
    result = humour_captions(meme_path, 3, 0.7, 0, backend=stub_backend(stub, max_retries=0), settings=settings)
    assert [c.seed for c in result.captions] == [0]
    assert result.failure.startswith("the model failed: ") and "model not found" in result.failure
    assert result.shortfall.startswith("only 1 of 3 captions could be written: the model failed")
    assert len(stub.requests) == 2  # no more seeds after the model failed


def test_hf_backend_writes_captions_from_the_picture(meme_path, settings):
    backend = HFBackend(Settings(backend="hf", model=str(tiny_model_dir("llava")), preload=False))
    result = humour_captions(meme_path, 2, 1.0, 7, backend=backend, settings=settings)
    assert result.complete and result.backend == "hf" and result.model.startswith("hf: ")
    assert result.reads_picture and result.prompt_version == prompt_version("humour")
    assert result.words and result.cues[0] == "no face found"
    # a random tiny model writes noise: whatever passed the checks is shown, the rest is said
    asked = [c.seed for c in result.captions] + [r.seed for r in result.rejected]
    assert sorted(asked) == list(range(7, 7 + len(asked))) and len(asked) <= 6
    assert all(r.problem for r in result.rejected)
    if len(result.captions) < 2:
        assert result.shortfall.startswith(f"only {len(result.captions)} of 2 captions could be written")
    else:
        assert not result.shortfall and len(asked) >= 2
    # sampling is seeded: the same seed writes the same text again
    first = (result.captions or result.rejected)[0]
    again = humour_captions(meme_path, 1, 1.0, first.seed, backend=backend, settings=settings)
    assert ([c.text for c in again.captions] or [again.rejected[0].text]) == [first.text]
    backend.unload()
