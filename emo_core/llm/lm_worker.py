"""``WorkerLM``: the small language model in a process of its own, streamed back over a pipe.

Why a process: in the app's process, after the face, expression and audio models have run, llama.cpp
decoded the same tokens about half as fast (measured on this machine's two cores, raw ``llama_decode``:
50-60 tokens/s alone, 22-44 with mediapipe + torch + CTranslate2 + onnxruntime loaded and run once;
the same model in a child of that very process: 56-80). The cause was not pinned down (no thread of
the other runtimes used CPU while llama.cpp decoded; two OpenMP runtimes share the process); a child
process that imports llama.cpp and nothing else sidesteps it.

``WorkerLM`` has ``SmallLM``'s interface (``load``, ``stream``, ``complete``, ``stats``, ``close``).
The child is ``python -m emo_core.llm.lm_worker``; they speak JSON lines over its stdin/stdout
(the child moves anything else printed to fd 1 onto stderr). A generation that the caller stops early
is cancelled in the child before the next one starts. If the child dies, the running call raises
``BackendError`` and the next ``load``/``stream`` starts a new child; when the parent exits, the
child reads the end of its stdin and exits too.

    lm = WorkerLM()                 # same arguments as SmallLM
    print(lm.complete("Once upon a time", max_tokens=20), lm.stats)
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Iterator

from ..errors import BackendError
from .small_lm import GenerationStats

START_TIMEOUT_SECONDS = 120.0  # the first start may assemble and derive the model file (about a minute)
REPLY_TIMEOUT_SECONDS = 120.0  # longest wait for the next message of a generation
# Pieces are sent in bunches at most this often: every message wakes threads of the app's process, and
# on two cores a wake-up can take a core from one of llama.cpp's two threads, which wait for each other
# (a guess from how they synchronise; the bunching did not measurably change the speed either way).
SEND_INTERVAL_SECONDS = 0.04
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds emo_core/
_workers: "weakref.WeakSet[WorkerLM]" = weakref.WeakSet()
_ERROR_TYPES = {"ValueError": ValueError, "TypeError": TypeError}  # raised as they are; the rest as BackendError


class WorkerLM:
    """A ``SmallLM`` running in a child process; one generation at a time, like ``SmallLM``."""

    def __init__(self, model_path: str | Path | None = None, *, start_timeout: float = START_TIMEOUT_SECONDS,
                 reply_timeout: float = REPLY_TIMEOUT_SECONDS, **options) -> None:
        """``options``: ``SmallLM``'s keyword arguments (cache_dir, n_ctx, n_threads, n_threads_batch,
        n_batch, embedding, assemble), checked here, in the caller's process, by ``SmallLM`` itself."""
        from .small_lm import SmallLM

        SmallLM(model_path, **options)
        self.config = {name: str(value) if isinstance(value, Path) else value
                       for name, value in dict(options, model_path=model_path).items()}
        self.start_timeout = start_timeout
        self.reply_timeout = reply_timeout
        self._process: subprocess.Popen | None = None
        self._replies: queue.Queue | None = None
        self._lock = threading.Lock()  # one conversation with the child at a time
        self._load_seconds = 0.0
        self._start_seconds = 0.0
        self._stats: GenerationStats | None = None
        _workers.add(self)

    def __repr__(self) -> str:
        state = (f"pid {self._process.pid}, loaded in {self._load_seconds:.2f} s" if self.loaded else "not started")
        return f"WorkerLM({self.config['model_path'] or 'bundled Gemma 3 270M'}, {state})"

    @property
    def loaded(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.loaded else None

    @property
    def load_seconds(self) -> float:
        """Seconds the child took to load the model (as ``SmallLM.load_seconds``)."""
        return self._load_seconds

    @property
    def start_seconds(self) -> float:
        """Seconds from starting the child until it was ready: interpreter, imports and model load."""
        return self._start_seconds

    @property
    def stats(self) -> GenerationStats | None:
        return self._stats

    def load(self) -> "WorkerLM":
        """Start the child and wait until its model is loaded; raises ``BackendError`` with the child's reason."""
        with self._lock:
            self._ensure_started()
        return self

    def _ensure_started(self) -> None:
        if self.loaded:
            return
        self._stop_process()  # a child that died leaves its pipes behind
        started = time.perf_counter()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "emo_core.llm.lm_worker", json.dumps(self.config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env, text=True, bufsize=1,
        )
        replies: queue.Queue = queue.Queue()
        threading.Thread(target=_read_lines, args=(process.stdout, replies), daemon=True,
                         name=f"lm-worker-{process.pid}").start()
        self._process, self._replies = process, replies
        reply = self._next_reply(self.start_timeout, "to load the model")
        if "error" in reply:
            self._stop_process()
            raise BackendError(reply["error"])
        self._load_seconds = float(reply["ready"]["load_seconds"])
        self._start_seconds = time.perf_counter() - started

    def stream(self, prompt: str, **options) -> Iterator[str]:
        """As ``SmallLM.stream``, with its keyword options (checked there, in the child): errors in them,
        in the prompt's length or in the model surface here, at the call; the pieces follow as the child
        sends them."""
        pieces = self._generate(prompt, dict(options, stop=list(options.get("stop", ()))))
        next(pieces)  # runs up to the child's "started" (or raises its error)
        return pieces

    def _generate(self, prompt: str, options: dict) -> Iterator[str]:
        with self._lock:
            self._ensure_started()
            self._send({"op": "stream", "prompt": prompt, "options": options})
            reply = self._next_reply(self.reply_timeout, "to start generating")
            if "error" in reply:
                raise _ERROR_TYPES.get(reply.get("kind"), BackendError)(reply["error"])
            finished = False
            try:
                yield ""  # the handshake is done; ``stream`` hands the generator to the caller from here
                while True:
                    reply = self._next_reply(self.reply_timeout, "for the next token")
                    if "piece" in reply:
                        yield reply["piece"]
                    elif "done" in reply:
                        self._stats = GenerationStats(**reply["done"])
                        finished = True
                        return
                    else:
                        raise BackendError(reply.get("error", f"unexpected message from the model process: {reply}"))
            finally:
                if not finished and self.loaded:
                    self._cancel_and_drain()

    def _cancel_and_drain(self) -> None:
        """The caller stopped early: tell the child, and read up to its "done" so the next call starts clean."""
        try:
            self._send({"op": "cancel"})
            while True:
                reply = self._next_reply(self.reply_timeout, "to stop generating")
                if "done" in reply:
                    self._stats = GenerationStats(**reply["done"])
                    return
                if "error" in reply:
                    return
        except BackendError:
            self._stop_process()  # it did not answer: the next call starts a new one

    def complete(self, prompt: str, **options) -> str:
        return "".join(self.stream(prompt, **options))

    def close(self) -> None:
        """Stop the child (the next call starts a new one)."""
        with self._lock:
            self._stop_process()

    def _send(self, message: dict) -> None:
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):  # ValueError: the pipe was already closed
            raise BackendError(self._death_message()) from None

    def _next_reply(self, timeout: float, waiting_for: str) -> dict:
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            self._stop_process()
            raise BackendError(f"the language model process did not answer within {timeout:.0f} s "
                               f"({waiting_for}); it was stopped and will restart on the next request") from None
        if line is None:  # the reader saw the end of the child's stdout
            raise BackendError(self._death_message())
        return json.loads(line)

    def _death_message(self) -> str:
        code = self._process.wait(timeout=5) if self._process is not None else None
        self._stop_process()
        return (f"the language model process stopped (exit code {code}); "
                "it will be started again on the next request")

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                process.stdin.write(json.dumps({"op": "close"}) + "\n")
                process.stdin.flush()
                process.wait(timeout=2)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
        for pipe in (process.stdin, process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _read_lines(stream, replies: queue.Queue) -> None:
    for line in stream:
        if line.strip():
            replies.put(line)
    replies.put(None)


@atexit.register
def _stop_all() -> None:
    for worker in list(_workers):
        worker.close()


# ---------------------------------------------------------------------------------------------
# the child


def serve(config: dict) -> int:
    """The child's loop: load the model, then answer requests until "close" or the end of stdin."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints (from C libraries too) go to stderr, not into the protocol
    sys.stdout = sys.stderr

    def send(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")

    from .small_lm import SmallLM

    lm = SmallLM(config.pop("model_path"), **config)
    try:
        lm.load()
    except BackendError as exc:
        send({"error": str(exc)})
        return 1
    send({"ready": {"load_seconds": lm.load_seconds}})

    requests: queue.Queue = queue.Queue()
    cancel = threading.Event()

    def read_requests() -> None:
        for line in sys.stdin:
            message = json.loads(line)
            if message["op"] == "cancel":
                cancel.set()
            else:
                requests.put(message)
        cancel.set()
        requests.put({"op": "close"})  # the parent is gone

    threading.Thread(target=read_requests, daemon=True).start()
    while True:
        message = requests.get()
        if message["op"] == "close":
            lm.close()
            return 0
        if message["op"] == "stream":
            cancel.clear()  # a cancel that came after the previous generation had ended
            _answer_stream(lm, message, cancel, send)


def _answer_stream(lm, message: dict, cancel: threading.Event, send) -> None:
    from dataclasses import asdict

    try:
        pieces = lm.stream(message["prompt"], **message["options"])
    except (ValueError, TypeError, BackendError) as exc:
        send({"error": str(exc), "kind": type(exc).__name__})
        return
    send({"started": True})
    held, last_sent = [], time.perf_counter()
    try:
        for piece in pieces:
            if cancel.is_set():
                break
            held.append(piece)
            if time.perf_counter() - last_sent >= SEND_INTERVAL_SECONDS:
                send({"piece": "".join(held)})
                held, last_sent = [], time.perf_counter()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it as BackendError
        pieces.close()
        send({"error": f"generation failed: {exc}"})
        return
    pieces.close()
    if held:
        send({"piece": "".join(held)})
    send({"done": asdict(lm.stats)})


if __name__ == "__main__":
    sys.exit(serve(json.loads(sys.argv[1])))
