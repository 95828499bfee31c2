"""A stuck or dying language-model worker never hangs a request, and it sees none of the app's secrets.

    .venv/bin/python -m pytest -q tests/test_lm_worker_safety.py

The real bundled model (the file the set-up step put in the user cache; assembled there if missing)
runs in a real ``WorkerLM`` child, which the tests stop with SIGSTOP: alive, but silent. The default
deadlines of ``Settings`` are used, so what is asserted is what the app does. Children that misbehave
in other ways (close their output but live on, ignore "close", never read their requests) are small
Python scripts that speak just enough of the protocol.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import emo_core
from emo_core.errors import BackendError
from emo_core.llm import lm_worker
from emo_core.llm.gguf_variant import ensure_reason_model
from emo_core.llm.lm_worker import WorkerLM
from emo_core.llm.reason_writer import write_reason
from emo_core.settings import Settings

DEFAULTS = Settings()
TOKEN_DEADLINE = DEFAULTS.llm_token_deadline
# Killing and reaping a child, and the scheduling of this test's threads on a busy 2-core machine.
MARGIN = 3.0
HAPPY_FACE_CUES = ["one face, expression happy (0.96)", "bright (brightness 0.70)", "colourful (colorfulness 65)",
                   "objects: dog, frisbee"]
FALLBACK = "Template reason from the measured cues."
COUNTING_PROMPT = "1, 2, 3, 4, 5, 6,"


@pytest.fixture(scope="module")
def model_path() -> Path:
    return ensure_reason_model()


@pytest.fixture()
def worker(model_path):
    model = WorkerLM(model_path, n_ctx=1024, start_deadline=DEFAULTS.llm_start_deadline,
                     restart_deadline=DEFAULTS.llm_restart_deadline,
                     first_token_deadline=DEFAULTS.llm_first_token_deadline, token_deadline=TOKEN_DEADLINE)
    yield model.load()
    model.close()


def _gone(pid: int) -> bool:
    """Exited and reaped: no /proc entry at all (a zombie, exited but not reaped, still has one)."""
    return not Path(f"/proc/{pid}").exists()


class StopOnFirstPiece:
    """Hands ``write_reason`` the worker's pieces, and stops the worker (SIGSTOP) the moment the first
    piece arrives: the child is alive but silent half-way through a reason."""

    def __init__(self, worker: WorkerLM):
        self.worker, self.stopped_pid, self.stopped_at = worker, None, None

    @property
    def stats(self):
        return self.worker.stats

    def stream(self, prompt, **options):
        pieces = self.worker.stream(prompt, **options)

        def stopping():
            for piece in pieces:
                if self.stopped_pid is None:
                    self.stopped_pid = self.worker.pid
                    os.kill(self.stopped_pid, signal.SIGSTOP)
                    self.stopped_at = time.perf_counter()
                yield piece

        return stopping()


# ---------------------------------------------------------------------------------------------
# a real worker stopped with SIGSTOP

def test_a_worker_stopped_mid_generation_is_killed_within_the_token_deadline(worker):
    first_pid = worker.pid
    stream = worker.stream(COUNTING_PROMPT, max_tokens=200, temperature=0.0)  # seconds of counting
    next(stream)  # the first piece (maybe only a space) has arrived: the child is generating
    os.kill(first_pid, signal.SIGSTOP)
    stopped = time.perf_counter()
    with pytest.raises(BackendError, match=rf"stopped answering \(no sign of life for {TOKEN_DEADLINE:g} s\)"):
        list(stream)
    assert time.perf_counter() - stopped < TOKEN_DEADLINE + MARGIN
    assert not worker.loaded and _gone(first_pid)
    assert worker.complete(COUNTING_PROMPT, max_tokens=6, temperature=0.0).startswith(" 7, 8")
    assert worker.pid not in (None, first_pid)


def test_closing_while_a_stream_holds_the_worker_returns_at_once_and_ends_that_stream(worker):
    first_pid = worker.pid
    stream = worker.stream(COUNTING_PROMPT, max_tokens=1000, temperature=0.0)  # long enough to outlast close() on a fast machine
    next(stream)  # the stream now holds the worker, and its caller reads no further for now
    started = time.perf_counter()
    worker.close()  # e.g. the app exiting
    assert time.perf_counter() - started < lm_worker.CLOSE_SECONDS + MARGIN
    with pytest.raises(BackendError, match="process stopped"):
        list(stream)
    assert _gone(first_pid)
    assert worker.complete(COUNTING_PROMPT, max_tokens=6, temperature=0.0).startswith(" 7, 8")


def test_a_reason_whose_worker_stops_half_way_ends_as_the_template_with_a_note(worker):
    stopper = StopOnFirstPiece(worker)
    stream = write_reason("amusement", HAPPY_FACE_CUES, modality="image", fallback=FALLBACK, lm=stopper)
    updates = list(stream)  # raises nothing: the stall becomes the template
    ended = time.perf_counter()
    result = stream.result
    assert stopper.stopped_pid is not None, "the model wrote no piece before it was to be stopped"
    assert ended - stopper.stopped_at < TOKEN_DEADLINE + MARGIN
    assert updates[-1] == FALLBACK and result.text == FALLBACK and not result.by_model
    assert "stopped answering" in result.problem and "new one starts with the next request" in result.problem
    assert result.attempts == 1  # no second try: it would wait for the restart
    assert result.stats is None  # the broken generation has no figures, and the last one's are not these
    shown_by_model = updates[:-1]
    assert all(FALLBACK not in update for update in shown_by_model)
    if shown_by_model:  # a preview was shown: it is the model's text, kept for inspection
        assert result.model_text.strip().startswith(shown_by_model[-1])
    assert _gone(stopper.stopped_pid)

    again = write_reason("amusement", HAPPY_FACE_CUES, modality="image", fallback=FALLBACK, lm=worker, stream=False)
    assert again.by_model, again.problem
    assert worker.pid not in (None, stopper.stopped_pid)


def test_a_worker_stopped_before_the_request_gives_the_template_within_the_deadline(worker):
    first_pid = worker.pid
    os.kill(first_pid, signal.SIGSTOP)
    started = time.perf_counter()
    result = write_reason("amusement", HAPPY_FACE_CUES, modality="image", fallback=FALLBACK, lm=worker, stream=False)
    assert time.perf_counter() - started < TOKEN_DEADLINE + MARGIN
    assert result.text == FALLBACK and not result.by_model and "stopped answering" in result.problem
    assert _gone(first_pid)
    again = write_reason("amusement", HAPPY_FACE_CUES, modality="image", fallback=FALLBACK, lm=worker, stream=False)
    assert again.by_model, again.problem
    assert worker.pid not in (None, first_pid)


def test_a_worker_stopped_while_it_reads_the_prompt_is_killed_within_the_token_deadline(worker):
    first_pid = worker.pid
    # The child has the request and reads its ~800 tokens (seconds): no token yet, only heartbeats.
    stream = worker.stream("Count the words: " + "word " * 800, max_tokens=50)
    os.kill(first_pid, signal.SIGSTOP)
    stopped = time.perf_counter()
    with pytest.raises(BackendError, match=rf"stopped answering \(no sign of life for {TOKEN_DEADLINE:g} s\)"):
        next(stream)
    assert time.perf_counter() - stopped < TOKEN_DEADLINE + MARGIN and _gone(first_pid)
    assert worker.complete(COUNTING_PROMPT, max_tokens=6, temperature=0.0).startswith(" 7, 8")


def test_a_slow_but_working_prompt_read_ends_at_the_first_token_deadline_without_a_restart(model_path):
    long_prompt = "Count the words: " + "word " * 1900  # seconds of reading on any CPU of today
    model = WorkerLM(model_path, n_ctx=2048, first_token_deadline=0.5, token_deadline=TOKEN_DEADLINE).load()
    try:
        pid = model.pid
        started = time.perf_counter()
        with pytest.raises(BackendError, match=r"too slow \(no first token after 0.5 s"):
            model.complete(long_prompt, max_tokens=4, temperature=0.0)
        assert time.perf_counter() - started < 0.5 + TOKEN_DEADLINE + MARGIN
        assert model.pid == pid  # alive and working: told to stop reading, not killed
        assert model.stats.finish_reason == "closed" and model.stats.completion_tokens == 0
        model.first_token_deadline = DEFAULTS.llm_first_token_deadline
        assert model.complete(COUNTING_PROMPT, max_tokens=6, temperature=0.0).startswith(" 7, 8")
        assert model.pid == pid
    finally:
        model.close()


# ---------------------------------------------------------------------------------------------
# children that misbehave otherwise: no path may block, none may raise anything but BackendError

READY = "import json, os, signal, sys, time\nprint(json.dumps({'ready': {'load_seconds': 0.0}}), flush=True)\n"
CHILD_SCRIPTS = {
    # Says it is ready, then closes its output but lives on, deaf to SIGTERM.
    "closes_output": READY + "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nos.close(1)\ntime.sleep(600)\n",
    # Says it is ready, then never reads a request (so never a "close" either).
    "deaf": READY + "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n",
    # Starts a generation, maybe sends a piece, then beats its heart without a step forward: a stuck llama.cpp.
    "stuck_steps": READY + "sys.stdin.readline()\nprint(json.dumps({'started': True}), flush=True)\n"
                   "if FIRST_PIECE:\n    print(json.dumps({'piece': ' 7'}), flush=True)\n"
                   "while True:\n    print(json.dumps({'progress': 3}), flush=True)\n    time.sleep(0.2)\n",
    # Takes 1.5 s to be ready, then waits for "close" (or the end of its input).
    "slow_start": "import time\ntime.sleep(1.5)\n" + READY
                  + "for line in sys.stdin:\n    if 'close' in line:\n        break\n",
}


class ScriptedWorker(WorkerLM):
    """A ``WorkerLM`` whose child is one of ``CHILD_SCRIPTS``."""

    def __init__(self, script: str, **deadlines):
        super().__init__(Path("unused.gguf"), **deadlines)
        self.script = script

    def _child_command(self) -> list[str]:
        return [sys.executable, "-c", textwrap.dedent(self.script)]


def test_a_child_that_closes_its_output_but_lives_on_is_killed_without_timeout_errors():
    model = ScriptedWorker(CHILD_SCRIPTS["closes_output"]).load()
    pid = model.pid
    started = time.perf_counter()
    with pytest.raises(BackendError, match="closed its output and was killed") as error:
        model.complete("Hello", max_tokens=4)
    assert not isinstance(error.value.__context__, subprocess.TimeoutExpired)
    assert time.perf_counter() - started < lm_worker.REAP_SECONDS * 2 + MARGIN
    assert _gone(pid) and not model.loaded


def test_closing_a_child_that_ignores_close_kills_it_in_bounded_time():
    model = ScriptedWorker(CHILD_SCRIPTS["deaf"]).load()
    pid = model.pid
    started = time.perf_counter()
    model.close()
    assert time.perf_counter() - started < lm_worker.CLOSE_SECONDS + lm_worker.REAP_SECONDS + MARGIN
    assert _gone(pid)


def test_a_request_to_a_child_that_reads_nothing_does_not_block_on_the_full_pipe():
    model = ScriptedWorker(CHILD_SCRIPTS["deaf"], token_deadline=1.0).load()
    pid = model.pid
    started = time.perf_counter()
    with pytest.raises(BackendError, match="it read no request for 1 s"):
        model.stream("word " * 400_000, max_tokens=4)  # 2 MB: far more than a pipe holds
    assert time.perf_counter() - started < 1.0 + MARGIN
    assert _gone(pid)


@pytest.mark.parametrize("first_piece", [False, True], ids=["before-its-first-token", "after-its-first-token"])
def test_a_child_whose_steps_stand_still_is_killed_though_its_heartbeat_goes_on(first_piece):
    script = CHILD_SCRIPTS["stuck_steps"].replace("FIRST_PIECE", str(first_piece))
    model = ScriptedWorker(script, first_token_deadline=1.0, token_deadline=1.0).load()
    pid = model.pid
    started = time.perf_counter()
    stream = model.stream("Hello", max_tokens=4)
    # Before the first token it is told to stop (too slow), does not, and is killed; after, it is killed.
    with pytest.raises(BackendError, match="no progress for 1 s" if first_piece else "too slow"):
        list(stream)
    assert time.perf_counter() - started < 1.0 + 1.0 + MARGIN
    assert _gone(pid) and not model.loaded


def test_only_the_first_start_gets_the_long_start_deadline():
    model = ScriptedWorker(CHILD_SCRIPTS["slow_start"], start_deadline=20.0, restart_deadline=0.5).load()
    first_pid = model.pid
    os.kill(first_pid, signal.SIGKILL)  # it died: the next call starts another, with the model file in place
    deadline = time.monotonic() + 5
    while model.loaded and time.monotonic() < deadline:  # the kill takes effect a moment later
        time.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(BackendError, match=r"not ready 0.5 s after its start"):
        model.load()
    assert time.perf_counter() - started < 0.5 + MARGIN
    assert not model.loaded


def test_deadlines_are_validated_and_come_from_the_settings(tmp_path):
    from emo_core.llm.small_lm import get_small_lm

    for bad in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="token_deadline"):
            WorkerLM(tmp_path / "x.gguf", token_deadline=bad)
        with pytest.raises(ValueError, match="llm_token_deadline"):
            Settings(llm_token_deadline=bad)
    with pytest.raises(ValueError, match="llm_first_token_deadline"):
        Settings.from_env({"EMO_LLM_FIRST_TOKEN_DEADLINE": "nan"})
    settings = Settings.from_env({"EMO_LLM_TOKEN_DEADLINE": "2.5", "EMO_LLM_START_DEADLINE": "90",
                                  "EMO_LLM_RESTART_DEADLINE": "12", "EMO_LLM_FIRST_TOKEN_DEADLINE": "20"})
    model = get_small_lm(settings, cache_dir=tmp_path)  # created, not started
    assert (model.start_deadline, model.restart_deadline, model.first_token_deadline, model.token_deadline) == \
        (90.0, 12.0, 20.0, 2.5)
    assert get_small_lm(settings, cache_dir=tmp_path) is model
    assert get_small_lm(Settings(), cache_dir=tmp_path).token_deadline == 5.0


# ---------------------------------------------------------------------------------------------
# the child's environment

KEPT_OUT = {"OPENAI_API_KEY": "sk-test-not-a-key", "HF_TOKEN": "hf_test_not_a_token", "EMO_API_KEY": "not-a-key",
            "EMO_DATA_DIR": "somewhere", "AWS_SECRET_ACCESS_KEY": "not-a-secret", "GRADIO_ANALYTICS_ENABLED": "False"}
PASSED = {"LANG": "C.UTF-8", "LC_MESSAGES": "C.UTF-8", "OMP_NUM_THREADS": "2", "PYTHONHASHSEED": "123"}
# What the child may see (written out here as the specification, not imported from the code).
ALLOWED_NAMES = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP", "LD_LIBRARY_PATH",
                 "PYTHONHASHSEED", "PYTHONPATH", "PYTHONUTF8", "PYTHONIOENCODING"}
ALLOWED_PREFIXES = ("LC_", "OMP_", "GOMP_", "KMP_", "GGML_", "LLAMA_")


def test_the_child_gets_only_the_environment_it_needs_and_finds_emo_core_without_pythonpath(model_path, monkeypatch):
    for name, value in {**KEPT_OUT, **PASSED}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    model = WorkerLM(model_path, n_ctx=256).load()
    try:
        raw = Path(f"/proc/{model.pid}/environ").read_bytes()
        child_env = dict(entry.split("=", 1) for entry in raw.decode().split("\0") if entry)
        assert not set(KEPT_OUT) & set(child_env)
        assert not any(value in raw.decode() for value in ("sk-test-not-a-key", "hf_test_not_a_token"))
        for name, value in PASSED.items():
            assert child_env[name] == value
        assert child_env["PATH"] == os.environ["PATH"]
        unexpected = {name for name in child_env if name not in ALLOWED_NAMES and not name.startswith(ALLOWED_PREFIXES)}
        assert not unexpected
        assert "PYTHONPATH" not in child_env
        # It imported emo_core from the folder that holds this process's emo_core, its working folder.
        assert Path(os.readlink(f"/proc/{model.pid}/cwd")) == Path(emo_core.__file__).resolve().parents[1]
        assert model.complete(COUNTING_PROMPT, max_tokens=6, temperature=0.0).startswith(" 7, 8")
    finally:
        model.close()
