"""The ``openai`` backend against a real OpenAI-compatible server (``transformers serve`` on a tiny model,
started once per session on 127.0.0.1) and, for the failure paths, against a scripted stub server.

    .venv/bin/python -m pytest -q tests/test_backend_openai.py

Only loopback addresses are used; nothing touches the network.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import time
from http.server import BaseHTTPRequestHandler

import pytest

from emo_core import Settings, analyze_image, analyze_images, analyze_video, prompts, rows_to_csv
from emo_core.backends import get_backend, openai_compat, user_message
from emo_core.labels import get_class_set
from emo_core.backends.openai_compat import OpenAIBackend
from emo_core.errors import BackendError, CapabilityError
from tests.loopback_http import LoopbackServer, send_body
from tests.openai_server import free_port  # its served_model fixture is registered in conftest.py

KEY_VARIABLE = "EMOLENS_TEST_OPENAI_KEY"


# ------------------------------------------------------------------------------------------------
# a real server: transformers serve on the tiny LLaVA (tests/openai_server.py)


def served_settings(served_model, **overrides) -> Settings:
    base_url, model = served_model
    return Settings(backend="openai", model=model, openai_base_url=base_url, request_timeout=60, max_retries=1,
                    preload=False, **overrides)


def test_generate_and_stream_through_a_real_server(served_model, images):
    backend = OpenAIBackend(served_settings(served_model))
    messages = user_message("Please select the emotion closest to the image.", image=str(images["astronaut"]))
    text = backend.generate(messages, max_new_tokens=8)
    assert isinstance(text, str) and text
    pieces = list(backend.generate_stream(messages, max_new_tokens=8))
    joined = "".join(pieces)
    assert len(pieces) >= 2 and text.startswith(joined)  # greedy on both paths
    # A random byte-level model can end on half a UTF-8 character: the non-streamed answer shows it as
    # U+FFFD, the server's stream holds it back. Nothing else may differ.
    assert set(text[len(joined):]) <= {"\ufffd"}
    backend.unload()


def test_image_task_end_to_end_through_a_real_server(served_model, images):
    settings = served_settings(served_model)
    backend = get_backend("openai", settings)
    assert not backend.supports("score")  # so the task generates and parses
    result = analyze_image(images["astronaut"], "mikels8", backend=backend, settings=settings)
    assert result.raw_text and result.basis.startswith("model answer (")
    assert result.backend.startswith("openai: ")
    # transformers serve ignores logprobs, so the label is read from the text and carries no probability
    # (and a random tiny model may name no label: the task says so rather than guessing one)
    assert result.distribution == {} and result.confidence is None
    assert result.distribution_kind == ("parsed answer" if result.label else "none")
    if "reason:" not in result.raw_text.lower():  # never the raw text in place of a reason
        assert result.reason == "" and any("no 'Reason:' part" in note for note in result.answer_notes)


# ------------------------------------------------------------------------------------------------
# a scripted stub server for the failure paths


def completion(text: str, tokens: list[tuple[str, dict[str, float]]] | None = None) -> dict:
    """A chat completion answering ``text``; with ``tokens`` (token text, {alternative: logprob} with the
    written token first), also the per-token log-probabilities an endpoint returns for ``logprobs``."""
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if tokens is not None:
        assert "".join(token for token, _ in tokens) == text
        choice["logprobs"] = {"content": [
            {"token": token, "logprob": top[token], "bytes": None,
             "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()]}
            for token, top in tokens]}
    return {"id": "stub", "object": "chat.completion", "created": 0, "model": "stub-model", "choices": [choice]}


def stream_chunks(payload: dict) -> list[dict]:
    """The completion as the chunks of a streamed answer: one per token, or per word without tokens."""
    choice = payload["choices"][0]
    logprobs = (choice.get("logprobs") or {}).get("content")
    if logprobs:
        pieces = [(entry["token"], {"content": [entry]}) for entry in logprobs]
    else:
        pieces = [(word, None) for word in re.findall(r"\s*\S+", choice["message"]["content"])]
    chunks = [{"index": 0, "delta": {"role": "assistant", "content": text}, "logprobs": lp, "finish_reason": None}
              for text, lp in pieces]
    chunks.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"})
    return [{"id": "stub", "object": "chat.completion.chunk", "created": 0, "model": "stub-model", "choices": [c]}
            for c in chunks]


class StubServer:
    """Answers each POST with the next scripted (status, body, headers, delay); records the requests."""

    def __init__(self):
        self.script: list[tuple[int, dict, dict, float]] = []
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                status, payload, headers, delay = stub.script.pop(0) if stub.script else (
                    500, {"error": {"message": "stub script exhausted"}}, {}, 0.0)
                time.sleep(delay)
                if status == 200 and body.get("stream") and "choices" in payload:
                    self.send_stream(stream_chunks(payload))
                    return
                send_body(self, status, json.dumps(payload).encode(), "application/json", headers)

            def send_stream(self, chunks: list[dict]) -> None:
                """Server-sent events, as OpenAI streams (HTTP/1.0: the closed connection ends the body)."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args):
                pass

        self.loopback = LoopbackServer(Handler)
        self.base_url = self.loopback.base_url

    def then(self, status: int, payload: dict, headers: dict | None = None, delay: float = 0.0) -> "StubServer":
        self.script.append((status, payload, headers or {}, delay))
        return self

    def close(self):
        self.loopback.close()


@pytest.fixture()
def stub():
    server = StubServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(openai_compat, "BACKOFF_BASE_S", 0.01)


def stub_backend(stub: StubServer, **overrides) -> OpenAIBackend:
    values = dict(backend="openai", model="stub-model", openai_base_url=stub.base_url, api_key_env=KEY_VARIABLE,
                  request_timeout=5.0, max_retries=2)
    values.update(overrides)
    return OpenAIBackend(Settings(**values))


def test_request_carries_the_image_as_a_data_url_and_the_key_from_the_environment(stub, monkeypatch, images):
    monkeypatch.setenv(KEY_VARIABLE, "sk-test-123")
    stub.then(200, completion("Predicted emotion: awe. Reason: a wide sky."))
    path = images["astronaut"]
    text = stub_backend(stub).generate(user_message("Which emotion?", image=str(path)), max_new_tokens=16,
                                       temperature=0.2, seed=7)
    assert text == "Predicted emotion: awe. Reason: a wide sky."
    (request,) = stub.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test-123"
    body = request["body"]
    assert (body["model"], body["max_tokens"], body["temperature"], body["seed"]) == ("stub-model", 16, 0.2, 7)
    image_part, text_part = body["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "Which emotion?"}
    prefix, encoded = image_part["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/jpeg;base64" and base64.b64decode(encoded) == path.read_bytes()


def test_429_is_retried_after_the_servers_retry_after(stub):
    stub.then(429, {"error": {"message": "slow down"}}, {"Retry-After": "0.2"}).then(200, completion("ok"))
    started = time.monotonic()
    assert stub_backend(stub).generate(user_message("hi"), max_new_tokens=4) == "ok"
    assert len(stub.requests) == 2 and time.monotonic() - started >= 0.2


def test_5xx_is_retried_a_bounded_number_of_times(stub):
    stub.then(500, {"error": {"message": "boom"}}).then(503, {"error": {"message": "busy"}}).then(200, completion("ok"))
    assert stub_backend(stub, max_retries=2).generate(user_message("hi"), max_new_tokens=4) == "ok"
    assert len(stub.requests) == 3

    stub.requests.clear()
    for _ in range(3):
        stub.then(503, {"error": {"message": "overloaded"}})
    with pytest.raises(BackendError, match=r"answered 503 \(overloaded\) 2 times"):
        stub_backend(stub, max_retries=1).generate(user_message("hi"), max_new_tokens=4)
    assert len(stub.requests) == 2


@pytest.mark.parametrize("status, message", [
    (400, r"rejected the request \(400: bad field\)"),
    (401, f"refused the API key.*{KEY_VARIABLE}"),
    (404, "no such model.*stub-model"),
    (422, r"rejected the request \(422"),
])
def test_4xx_is_not_retried_and_says_what_to_fix(stub, status, message):
    stub.then(status, {"error": {"message": "bad field"}}).then(200, completion("should not be asked"))
    with pytest.raises(BackendError, match=message):
        stub_backend(stub).generate(user_message("hi"), max_new_tokens=4)
    assert len(stub.requests) == 1


def test_newer_models_get_max_completion_tokens(stub):
    stub.then(400, {"error": {"message": "Unsupported parameter: 'max_tokens'; use 'max_completion_tokens'."}})
    stub.then(200, completion("ok")).then(200, completion("ok again"))
    backend = stub_backend(stub)
    assert backend.generate(user_message("hi"), max_new_tokens=5) == "ok"
    assert backend.generate(user_message("hi"), max_new_tokens=5) == "ok again"
    assert [("max_tokens" in r["body"], r["body"].get("max_completion_tokens")) for r in stub.requests] == [
        (True, None), (False, 5), (False, 5)]


def test_a_slow_server_times_out_after_bounded_retries(stub):
    stub.then(200, completion("late"), delay=1.5).then(200, completion("late"), delay=1.5)
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"no answer .* within 0.3 s \(2 attempts\)"):
        stub_backend(stub, request_timeout=0.3, max_retries=1).generate(user_message("hi"), max_new_tokens=4)
    assert len(stub.requests) == 2 and time.monotonic() - started < 3


def test_a_server_that_is_down_is_a_clear_error():
    port = free_port()  # nothing listens there
    backend = OpenAIBackend(Settings(backend="openai", model="m", openai_base_url=f"http://127.0.0.1:{port}/v1",
                                     max_retries=1, request_timeout=2))
    with pytest.raises(BackendError, match=f"cannot reach .*127.0.0.1:{port}.*2 attempts"):
        backend.generate(user_message("hi"), max_new_tokens=4)


def test_missing_key_or_model_fails_before_any_request(monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    with pytest.raises(BackendError, match=f"no API key: set the environment variable {KEY_VARIABLE}"):
        OpenAIBackend(Settings(backend="openai", model="gpt-4o-mini", api_key_env=KEY_VARIABLE)).load()
    with pytest.raises(BackendError, match="EMO_MODEL"):
        OpenAIBackend(Settings(backend="openai", openai_base_url="http://127.0.0.1:9/v1")).load()


def test_media_the_backend_cannot_send(stub, tmp_path):
    backend = stub_backend(stub)
    with pytest.raises(CapabilityError, match="does not send audio"):
        backend.generate(user_message("hi", audio=str(tmp_path / "a.wav")), max_new_tokens=4)
    with pytest.raises(CapabilityError, match="cannot score"):
        backend.score(user_message("hi"), ["joy"])
    assert stub.requests == []


def test_a_video_is_sent_as_frames(stub, tmp_path):
    import numpy as np
    from moviepy import ImageSequenceClip

    path = tmp_path / "clip.mp4"
    frames = [np.full((32, 32, 3), value, dtype=np.uint8) for value in range(0, 250, 25)]
    ImageSequenceClip(frames, fps=10).write_videofile(str(path), codec="libx264", audio=False, logger=None)
    stub.then(200, completion("ok"))
    stub_backend(stub).generate(user_message("Feeling?", video=str(path)), max_new_tokens=4)
    parts = stub.requests[0]["body"]["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * openai_compat.FRAMES_PER_VIDEO + ["text"]


# ------------------------------------------------------------------------------------------------
# token log-probabilities, and label and reason that agree (the image task through the stub)

EMOTION6 = list(get_class_set("emotion6").labels)  # anger, disgust, fear, joy, sadness, surprise


def tokens_of(*pieces) -> list[tuple[str, dict[str, float]]]:
    """Tokens for ``completion``: a plain string is written with log-probability -0.01 and no rival."""
    return [(piece, {piece: -0.01}) if isinstance(piece, str) else piece for piece in pieces]


def prompt_text(request: dict) -> str:
    return next(part["text"] for part in request["body"]["messages"][0]["content"] if part["type"] == "text")


def test_the_stream_hands_over_token_logprobs_and_the_request_asks_for_them(stub):
    tokens = tokens_of("Predicted", " emotion", ":", (" joy", {" joy": -0.3, " sadness": -1.6}), ".")
    stub.then(200, completion("Predicted emotion: joy.", tokens))
    choices = []
    pieces = list(stub_backend(stub).generate_stream(user_message("hi"), max_new_tokens=8, token_choices=choices))
    assert pieces == ["Predicted", " emotion", ":", " joy", "."]
    assert [choice.text for choice in choices] == pieces
    assert choices[3].logprob == -0.3 and choices[3].alternatives == {" joy": -0.3, " sadness": -1.6}
    body = stub.requests[0]["body"]
    assert body["stream"] is True and body["logprobs"] is True and body["top_logprobs"] == openai_compat.TOP_LOGPROBS


def test_a_server_that_refuses_logprobs_is_asked_again_without_them(stub):
    stub.then(400, {"error": {"message": "logprobs is not supported for this model"}})
    stub.then(200, completion("ok")).then(200, completion("again"))
    backend = stub_backend(stub)
    choices = []
    assert backend.generate(user_message("hi"), max_new_tokens=4, token_choices=choices) == "ok"
    assert backend.generate(user_message("hi"), max_new_tokens=4) == "again"
    assert [request["body"].get("logprobs") for request in stub.requests] == [True, None, None]
    assert choices == []


def test_a_chat_endpoint_is_not_asked_to_continue_an_answer(stub):
    backend = stub_backend(stub)
    assert not backend.supports("continue")
    with pytest.raises(CapabilityError, match="cannot continue"):
        backend.generate(user_message("hi"), answer_prefix="Predicted emotion: joy. Reason:")
    assert stub.requests == []


def test_label_and_reason_come_from_one_answer(stub, images, settings):
    # asked separately (label, then reason), these two answers would contradict each other
    stub.then(200, completion("Predicted emotion: joy. Reason: everyone in the picture is smiling."))
    stub.then(200, completion("Predicted emotion: sadness. Reason: Predicted emotion: sadness, a grey sky."))
    result = analyze_image(images["astronaut"], "emotion6", backend=stub_backend(stub), settings=settings)
    assert len(stub.requests) == 1 and prompt_text(stub.requests[0]) == prompts.render("reasoning", options=EMOTION6)
    assert (result.label, result.reason) == ("joy", "everyone in the picture is smiling.")
    assert result.answer == "Predicted emotion: joy. Reason: everyone in the picture is smiling."
    # the endpoint sent no token probabilities: a parsed answer, not a distribution with a 100% bar
    assert result.distribution == {} and result.confidence is None and not result.has_probabilities
    assert result.distribution_kind == "parsed answer" and result.basis == "model answer (exact)"


@pytest.mark.parametrize("text, label, reason, note", [
    ("Predicted emotion: joy. Reason: Predicted emotion: sadness. Reason: a grey sky.", "joy", "",
     "another answer naming sadness"),
    ("Predicted emotion: joy. Reason: they smile. Predicted emotion: sadness.", "joy", "they smile.",
     "another answer naming sadness"),
    ("Joy, since everybody smiles at sadness being over.", None, "", "no 'Reason:' part"),
    ("Joy, since everybody is grinning.", "joy", "", "no 'Reason:' part"),
    ("Predicted emotion: sadness or joy. Reason: hard to say.", None, "hard to say.", "names no single class"),
])
def test_a_contradicting_or_formatless_answer_never_becomes_the_reason(stub, images, settings, text, label, reason,
                                                                       note):
    stub.then(200, completion(text))
    result = analyze_image(images["astronaut"], "emotion6", backend=stub_backend(stub), settings=settings)
    assert (result.label, result.reason) == (label, reason)
    assert any(note in answer_note for answer_note in result.answer_notes), result.answer_notes
    assert result.answer == f"Predicted emotion: {label or 'unparsed'}." + (f" Reason: {reason}" if reason else "")
    assert result.raw_text == text  # kept for the record, never shown as the reason


def test_token_logprobs_give_a_real_distribution(stub, images, settings):
    at_label = {" joy": -0.4, " sadness": -1.5, " surprise": -2.6, " s": -3.0, " the": -3.2, "Joy": -4.0}
    tokens = tokens_of("Predicted", " emotion", ":", (" joy", at_label), ".", " Reason", ":", " smiles", ".")
    stub.then(200, completion("Predicted emotion: joy. Reason: smiles.", tokens))
    result = analyze_image(images["astronaut"], "emotion6", backend=stub_backend(stub), settings=settings)
    # by hand: " joy" and "Joy" begin joy; " s" begins both sadness and surprise, so it counts for neither
    joy, sadness, surprise = math.exp(-0.4) + math.exp(-4.0), math.exp(-1.5), math.exp(-2.6)
    total = joy + sadness + surprise
    expected = {"anger": 0.0, "disgust": 0.0, "fear": 0.0, "joy": joy / total, "sadness": sadness / total,
                "surprise": surprise / total}
    assert result.distribution_kind == "first-token probabilities" and result.has_probabilities
    assert result.distribution == pytest.approx(expected)
    assert result.confidence == pytest.approx(joy / total, abs=1e-4)
    assert (result.label, result.reason) == ("joy", "smiles.")
    (note,) = result.answer_notes
    assert f"{total:.0%} of the probability" in note and f"{math.exp(-3.0):.0%} on tokens that begin several" in note
    assert "(shown as 0): anger, disgust, fear" in note


def test_a_written_label_the_token_probabilities_disfavour_is_said_plainly(stub, images, settings):
    tokens = tokens_of("Predicted", " emotion", ":", (" joy", {" joy": -1.2, " sadness": -0.5}), ".", " Reason", ":",
                       " smiles", ".")
    stub.then(200, completion("Predicted emotion: joy. Reason: smiles.", tokens))
    result = analyze_image(images["astronaut"], "emotion6", backend=stub_backend(stub), settings=settings)
    assert result.label == "joy" and max(result.distribution, key=result.distribution.get) == "sadness"
    assert any("wrote joy, but its first-token probabilities favour sadness" in note for note in result.answer_notes)


class ScoringEndpoint(OpenAIBackend):
    """A test double: an endpoint that can also score (fixed log-likelihoods) but not continue an answer."""

    capabilities = OpenAIBackend.capabilities | {"score"}

    def __init__(self, settings, log_likelihoods):
        super().__init__(settings)
        self.log_likelihoods = log_likelihoods

    def score(self, messages, candidates):
        return {candidate: self.log_likelihoods[candidate] for candidate in candidates}


def test_a_written_label_that_disagrees_with_the_scores_is_said_plainly(stub, images, settings):
    log_likelihoods = {"anger": -5.0, "disgust": -5.0, "fear": -4.0, "joy": -2.0, "sadness": -0.5, "surprise": -3.0}
    stub.then(200, completion("Predicted emotion: joy. Reason: they smile."))
    backend = ScoringEndpoint(stub_backend(stub).settings, log_likelihoods)
    result = analyze_image(images["astronaut"], "emotion6", backend=backend, settings=settings)
    total = sum(math.exp(value) for value in log_likelihoods.values())
    assert result.distribution == pytest.approx({label: math.exp(v) / total for label, v in log_likelihoods.items()})
    # label and reason agree (one answer); the scores' different favourite is said, not hidden
    assert (result.label, result.reason, result.distribution_kind) == ("joy", "they smile.", "model scores")
    favoured = f"({math.exp(-0.5) / total:.0%} against {math.exp(-2.0) / total:.0%})"
    assert f"written answer is joy, but its scores favour sadness {favoured}" in result.answer_notes[0]
    assert len(stub.requests) == 1


def test_the_reason_streams(stub, images, settings):
    from emo_core import analyze_image_stream

    stub.then(200, completion("Predicted emotion: joy. Reason: everyone in the picture smiles at the camera."))
    seen = [(result.label, result.reason, result.complete)
            for result in analyze_image_stream(images["astronaut"], "emotion6", backend=stub_backend(stub),
                                               settings=settings)]
    reasons = [reason for _, reason, _ in seen]
    assert len(set(reasons)) >= 5  # word by word, not all at once
    assert all(later.startswith(earlier) for earlier, later in zip(reasons, reasons[1:]))
    assert seen[-1] == ("joy", "everyone in the picture smiles at the camera.", True)
    assert all(label in (None, "joy") for label, _, _ in seen) and not any(done for *_, done in seen[:-1])


def test_a_batch_asks_for_labels_only(stub, images, settings):
    stub.then(200, completion("Predicted emotion: joy.")).then(200, completion("Predict emotion: fear"))
    rows = analyze_images([images["astronaut"], images["cat"]], "emotion6", backend=stub_backend(stub),
                          settings=settings)
    assert [row.result.label for row in rows] == ["joy", "fear"]
    assert [prompt_text(request) for request in stub.requests] == [prompts.render("categorical", options=EMOTION6)] * 2
    assert all(request["body"]["max_tokens"] <= 32 for request in stub.requests)
    table = list(csv.DictReader(io.StringIO(rows_to_csv(rows, "emotion6"))))
    assert [row["confidence"] for row in table] == ["", ""]  # a parsed label has no probability to print


@pytest.mark.parametrize("task", ["emotion", "reason"])
def test_video_tasks_ask_the_endpoint_once(stub, clips, settings, task):
    answer = "Predicted emotion: happy. Reason: the voice is bright." if task == "reason" else "Predicted emotion: happy."
    stub.then(200, completion(answer)).then(200, completion("Predicted emotion: sad. Reason: unasked."))
    result = analyze_video(clips["speech"], "mer2023", backend=stub_backend(stub), settings=settings, task=task)
    (request,) = stub.requests
    assert f"[{task}]" in prompt_text(request)
    assert request["body"]["max_tokens"] == (32 if task == "emotion" else 200)
    assert result.label == "happy" and result.distribution == {} and result.confidence is None
    assert result.reason == ("the voice is bright." if task == "reason" else "")
    assert result.reason_by_model == (task == "reason")
