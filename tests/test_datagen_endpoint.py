"""The generator against endpoints that misbehave (a scripted local stub), one that is down, a real local
OpenAI-compatible server (``transformers serve`` on a tiny model), and a run killed with SIGKILL.

    .venv/bin/python -m pytest -q tests/test_datagen_endpoint.py

Only 127.0.0.1 is used.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from emo_core.datagen import generate
from emo_core.datagen import llm_client
from tests.chat_stub import ChatStub, Reply, StubRequest, good_answer
from tests.datagen_fixtures import class_folders, read_jsonl, stub_settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(llm_client, "BACKOFF_BASE_S", 0.01)


_BUCKETS: dict[str, int] = {}


def bucket(request: StubRequest) -> int:
    """The behaviour of an image's requests: images take the six behaviours in turn, in the order the
    stub first sees them, and keep theirs on every attempt and rerun."""
    return _BUCKETS.setdefault(request.context, len(_BUCKETS) % 6)


TIMEOUT_S = 0.6
RETRY_AFTER_S = 0.4


def misbehaving(request: StubRequest) -> Reply:
    """Per context: 0 answers garbage text; 1 a 429 with Retry-After, then an answer; 2 two 500s, then an
    answer; 3 a timeout, then an answer; 4 an HTML page, then an answer; 5 always 500."""
    kind, attempt = bucket(request), request.repeat
    if kind == 0:
        return Reply(text="I am sorry, I cannot see images.")
    if kind == 1 and attempt == 0:
        return Reply(429, "slow down", headers={"Retry-After": str(RETRY_AFTER_S)})
    if kind == 2 and attempt < 2:
        return Reply(500, "boom")
    if kind == 3 and attempt == 0:
        return Reply(text=good_answer(request), delay=TIMEOUT_S * 2)
    if kind == 4 and attempt == 0:
        return Reply(raw_body=b"<html><body>502 Bad Gateway</body></html>")
    if kind == 5:
        return Reply(500, "always down")
    return Reply(text=good_answer(request))


# failed attempts before an answer, per bucket (bucket 5 never answers: 3 attempts with max_retries 2)
FAILED_ATTEMPTS = {0: 0, 1: 1, 2: 2, 3: 1, 4: 1, 5: 3}


def test_every_image_ends_as_samples_or_recorded_rejections_and_retries_are_counted(tmp_path):
    root = class_folders(tmp_path / "in", {"awe": 5, "fear": 5, "sadness": 4})
    with ChatStub(misbehaving) as stub:
        settings = stub_settings(stub.base_url, datagen_timeout=TIMEOUT_S, datagen_max_retries=2)
        report = generate(root, tmp_path / "run", "mikels8", types=["categorical", "conversation", "reasoning"],
                          settings=settings)
        contexts = {}
        for request in stub.requests:
            contexts.setdefault((request.context, request.sample_type), []).append(request)
        kinds = [bucket(requests[0]) for requests in contexts.values()]
        assert set(kinds) == set(range(6)), "the images should cover every behaviour"

        samples = read_jsonl(tmp_path / "run" / "samples.jsonl")
        rejected = read_jsonl(tmp_path / "run" / "rejected.jsonl")
        llm_ids = {s["id"] for s in samples if s["type"] != "categorical"} | {r["id"] for r in rejected}
        assert len(llm_ids) == 28 and report.planned == 42  # every LLM sample ended somewhere ...
        assert sum(s["type"] == "categorical" for s in samples) == 14
        assert len(samples) + len(rejected) == 42  # ... exactly once
        reasons = Counter(r["stage"] + ": " + r["reason"].split(" (")[0].split(";")[0] for r in rejected)
        assert reasons == {"answer: text before the first 'Question:'": kinds.count(0),
                           "call: answered 500": kinds.count(5)}
        garbage = next(r for r in rejected if r["stage"] == "answer")
        assert garbage["raw_text"] == "I am sorry, I cannot see images." and garbage["retryable"] is False
        always_down = next(r for r in rejected if r["stage"] == "call")
        assert always_down["retryable"] is True and always_down["attempts"] == 3

        ledger = json.loads((tmp_path / "run" / "ledger.json").read_text())
        expected_failed = sum(FAILED_ATTEMPTS[kind] for kind in kinds)
        expected_retries = sum(min(FAILED_ATTEMPTS[kind], 2) for kind in kinds)
        totals = ledger["totals"]
        assert totals["calls"] == len(stub.requests) == len(contexts) + expected_retries
        assert (totals["retries"], totals["failed_calls"]) == (expected_retries, expected_failed)
        assert ledger["per_type"]["conversation"]["calls"] + ledger["per_type"]["reasoning"]["calls"] == totals["calls"]
        assert ledger["invocations"][0]["lowest_concurrency"] < 4  # the 429 and the timeouts slowed it down
        assert report.status == "stopped" and f"{kinds.count(5)} samples could not be made" in report.stop_reason

        # a rerun asks again only for the samples whose requests failed (not for rejected answers)
        before = len(stub.requests)
        again = generate(root, tmp_path / "run", "mikels8", types=["categorical", "conversation", "reasoning"],
                         settings=settings)
        assert len(stub.requests) - before == 3 * kinds.count(5)
        assert again.written == 0 and again.rejected == kinds.count(5)
        attempts = sorted(r["attempt"] for r in read_jsonl(tmp_path / "run" / "rejected.jsonl") if r["stage"] == "call")
        assert attempts == [0] * kinds.count(5) + [1] * kinds.count(5)


def test_the_retry_after_a_429_waits_as_long_as_the_server_asks(tmp_path):
    arrivals: dict[int, float] = {}

    def plan(request: StubRequest) -> Reply:
        arrivals[request.repeat] = time.monotonic()
        if request.repeat == 0:
            return Reply(429, "slow down", headers={"Retry-After": "0.5"})
        return Reply(text=good_answer(request))

    root = class_folders(tmp_path / "in", {"awe": 1})
    with ChatStub(plan) as stub:
        report = generate(root, tmp_path / "run", "mikels8", types=["reasoning"], settings=stub_settings(stub.base_url))
    assert report.status == "complete" and arrivals[1] - arrivals[0] >= 0.5


def test_an_endpoint_that_is_down_stops_the_run_and_a_rerun_finishes_it(tmp_path):
    root = class_folders(tmp_path / "in", {"awe": 3})
    with socket.socket() as held:  # bound but not listening: refused, and no other program can take the port
        held.bind(("127.0.0.1", 0))
        down = stub_settings(f"http://127.0.0.1:{held.getsockname()[1]}/v1", datagen_max_retries=1)
        report = generate(root, tmp_path / "run", "mikels8", types=["categorical", "reasoning"], settings=down)
    assert report.status == "stopped" and report.stop_reason.startswith("cannot reach the endpoint")
    assert "127.0.0.1" not in report.stop_reason  # the endpoint's address stays out of stored messages
    assert report.written == 3 and report.pending == 3  # the categorical samples are kept
    with ChatStub() as stub:
        report = generate(root, tmp_path / "run", "mikels8", types=["categorical", "reasoning"],
                          settings=stub_settings(stub.base_url))
        assert (report.status, report.written, report.already_done, stub.request_count) == ("complete", 3, 3, 3)


def test_a_refused_key_stops_at_once(tmp_path):
    root = class_folders(tmp_path / "in", {"awe": 6, "fear": 6})
    with ChatStub(lambda request: Reply(401, "invalid key")) as stub:
        report = generate(root, tmp_path / "run", "mikels8", types=["reasoning"],
                          settings=stub_settings(stub.base_url, datagen_concurrency=2))
        assert report.status == "stopped" and "refused the API key" in report.stop_reason
        assert "EMOLENS_TEST_DATAGEN_KEY" in report.stop_reason
        assert stub.request_count <= 4  # the requests already on their way, not one per image


# -- SIGKILL ---------------------------------------------------------------------------------------

def _command(root: Path, out: Path, base_url: str) -> list[str]:
    return [sys.executable, "-m", "emo_core.datagen", "generate", str(root), "--out", str(out), "--class-set",
            "mikels8", "--base-url", base_url, "--model", "stub-model", "--api-key-env", "EMOLENS_TEST_DATAGEN_KEY",
            "--concurrency", "3", "--measure", "low-level", "--no-progress"]


def _by_id(path: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == len({s["id"] for s in lines}), "a sample was written twice"
    return {s["id"]: s for s in lines}


def test_a_run_killed_part_way_and_rerun_gives_the_samples_of_an_uninterrupted_run(tmp_path):
    root = class_folders(tmp_path / "in", {"awe": 5, "fear": 5})
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with ChatStub(lambda request: Reply(text=good_answer(request), delay=0.3)) as stub:
        whole = subprocess.run(_command(root, tmp_path / "whole", stub.base_url), env=env, cwd=REPO,
                               capture_output=True, text=True, timeout=300)
        assert whole.returncode == 0, whole.stderr
        uninterrupted = _by_id(tmp_path / "whole" / "samples.jsonl")
        assert len(uninterrupted) == 30

        killed = tmp_path / "killed"
        process = subprocess.Popen(_command(root, killed, stub.base_url), env=env, cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = killed / "samples.jsonl"
        deadline = time.monotonic() + 120
        while not (samples.exists() and len(samples.read_text().splitlines()) >= 15):
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        partial = _by_id(samples)
        assert 15 <= len(partial) < 30
        with open(samples, "a") as handle:  # what a kill in the middle of a write leaves
            handle.write('{"id": "half-writ')

        requests_before = stub.request_count
        rerun = subprocess.run(_command(root, killed, stub.base_url), env=env, cwd=REPO, capture_output=True,
                               text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        resumed = _by_id(samples)
        assert sorted(resumed) == sorted(uninterrupted)
        for sample_id, sample in resumed.items():
            assert sample["conversations"] == uninterrupted[sample_id]["conversations"]
            assert sample["provenance"]["run_id"] == resumed[next(iter(partial))]["provenance"]["run_id"]
        llm_done_before = sum(s["type"] != "categorical" for s in partial.values())
        assert stub.request_count - requests_before == 20 - llm_done_before  # only for what was not done

        requests_before = stub.request_count
        last = subprocess.run(_command(root, killed, stub.base_url), env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=300)
        assert last.returncode == 0 and "0 samples written" in last.stdout and "30 already done" in last.stdout
        assert stub.request_count == requests_before  # no call for work already done
        run = json.loads((killed / "run.json").read_text())
        assert len(run["invocations"]) == 3 and run["invocations"][0]["finished"] is None  # the killed one


# -- a real local server ----------------------------------------------------------------------------

def test_against_a_real_openai_compatible_server(served_model, tmp_path):
    base_url, model = served_model
    root = class_folders(tmp_path / "in", {"awe": 1, "sadness": 1})
    settings = stub_settings(base_url, datagen_model=model, datagen_max_tokens=24, datagen_concurrency=2,
                             datagen_timeout=120, datagen_temperature=0.0)
    report = generate(root, tmp_path / "run", "mikels8", types=["conversation", "reasoning"], settings=settings)
    samples = read_jsonl(tmp_path / "run" / "samples.jsonl")
    rejected = read_jsonl(tmp_path / "run" / "rejected.jsonl")
    # a random tiny model writes no Question/Answer turns: its answers are rejected, with their text kept
    assert len(samples) + len(rejected) == 4 == report.planned
    for record in rejected:
        assert record["stage"] == "answer" and record["raw_text"] and record["reason"]
        assert record["tokens"]["input"] is None or record["tokens"]["input"] > 100  # the prompt with its examples
    ledger = json.loads((tmp_path / "run" / "ledger.json").read_text())["totals"]
    assert ledger["calls"] == 4 and ledger["failed_calls"] == 0
    assert ledger["tokens_out"] > 0 or ledger["usage_missing"] == 4


def test_ctrl_c_stops_cleanly_and_a_rerun_continues(tmp_path):
    root = class_folders(tmp_path / "in", {"awe": 6, "fear": 6})
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with ChatStub(lambda request: Reply(text=good_answer(request), delay=0.3)) as stub:
        out = tmp_path / "run"
        process = subprocess.Popen(_command(root, out, stub.base_url), env=env, cwd=REPO, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while stub.request_count < 4:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=60)
        assert process.returncode == 3 and "stopped: interrupted (Ctrl-C)" in stdout
        interrupted = _by_id(out / "samples.jsonl")
        assert len(interrupted) < 36
        assert json.loads((out / "run.json").read_text())["invocations"][0]["status"] == "stopped"
        rerun = subprocess.run(_command(root, out, stub.base_url), env=env, cwd=REPO, capture_output=True, text=True,
                               timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert len(_by_id(out / "samples.jsonl")) == 36
