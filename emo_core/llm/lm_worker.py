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
is cancelled in the child before the next one starts. When the parent exits, the child reads the end
of its stdin and exits too.

A child that dies, or that lives but stops answering, never holds a request for long: every wait has
a deadline (the first start, a restart, and while it generates, a heartbeat every second), a child
past one is killed (SIGKILL, which also ends a stopped process) and reaped without blocking, the
running call raises ``BackendError``, and the next ``load``/``stream`` starts a new child. A child
that is alive and reading a long prompt, but slowly, is not killed: past the first-token deadline it
is told to stop, and keeps what it read cached. The child gets only the environment variables it
needs (``child_environment``): no API keys or tokens of the app.

    lm = WorkerLM()                 # same arguments as SmallLM
    print(lm.complete("Once upon a time", max_tokens=20), lm.stats)
"""

from __future__ import annotations

import atexit
import json
import math
import os
import queue
import select
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Iterator, Mapping

from ..errors import BackendError
from .small_lm import GenerationStats

# Deadlines (seconds); the app sets them from ``Settings.llm_*_deadline``.
START_DEADLINE = 120.0  # the first start may assemble and derive the model file (about a minute)
RESTART_DEADLINE = 30.0  # later starts find the file in place: interpreter, imports, load (a few s)
# Reading a whole few-shot prompt with nothing cached (after a restart): the image one (495 tokens)
# took 4.8-5.6 s to the first token on this machine's two cores at a load average of ~4.5, and a fresh
# worker gave no first token of the video one within 30 s while several test suites ran beside it.
# This caps a slow read (the child then stops reading and keeps what it read cached), and is the
# longest one step of llama.cpp may take (more: it is stuck, the child is killed). A stopped or frozen
# child is found sooner, by its silence (TOKEN_DEADLINE).
FIRST_TOKEN_DEADLINE = 60.0
# The longest silence of a working child: from a request to its "started" (milliseconds), and between
# two heartbeats (every HEARTBEAT_SECONDS, from a thread that runs while llama.cpp computes). The
# heartbeat, not each token, is what is timed: on two cores shared with other work a single step of
# llama.cpp can take seconds (64-token batches of the prompt: 0.6 s on average, at most 1.65 s in the
# run above; a fresh worker once gave no token for 5 s on a 9-token prompt while test suites ran
# beside it), and a busy worker must not be killed for that.
TOKEN_DEADLINE = 5.0
CLOSE_SECONDS = 2.0  # a polite "close" gets this long before SIGKILL
REAP_SECONDS = 2.0  # how long to wait for a killed or exiting child to be reaped
# Pieces are sent in bunches at most this often: every message wakes threads of the app's process, and
# on two cores a wake-up can take a core from one of llama.cpp's two threads, which wait for each other
# (a guess from how they synchronise; the bunching did not measurably change the speed either way).
SEND_INTERVAL_SECONDS = 0.04
# While it generates, the child reports how far it got this often, from a thread of its own (``_Channel``).
HEARTBEAT_SECONDS = 1.0
# What the child may see of the app's environment: the locale, where temporary files go, the paths the
# interpreter and llama.cpp's library need, and the thread settings of OpenMP/llama.cpp. Everything
# else (API keys, tokens, the app's EMO_* settings, which arrive as the JSON config) stays out.
CHILD_ENV_NAMES = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP", "LD_LIBRARY_PATH",
                             "PYTHONHASHSEED", "PYTHONPATH", "PYTHONUTF8", "PYTHONIOENCODING"})
CHILD_ENV_PREFIXES = ("LC_", "OMP_", "GOMP_", "KMP_", "GGML_", "LLAMA_")
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds emo_core/
_workers: "weakref.WeakSet[WorkerLM]" = weakref.WeakSet()
_ERROR_TYPES = {"ValueError": ValueError, "TypeError": TypeError}  # raised as they are; the rest as BackendError


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed part of ``environ`` (default: this process's) that the child is started with.
    ``PYTHONPATH`` passes through unchanged when the user set it (a dependency installed there must be
    found by the child as by the app); emo_core itself is found without it (see ``_start``)."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in environ.items()
            if name in CHILD_ENV_NAMES or name.startswith(CHILD_ENV_PREFIXES)}


class WorkerLM:
    """A ``SmallLM`` running in a child process; one generation at a time, like ``SmallLM``."""

    def __init__(self, model_path: str | Path | None = None, *, start_deadline: float = START_DEADLINE,
                 restart_deadline: float = RESTART_DEADLINE, first_token_deadline: float = FIRST_TOKEN_DEADLINE,
                 token_deadline: float = TOKEN_DEADLINE, **options) -> None:
        """``options``: ``SmallLM``'s keyword arguments (cache_dir, n_ctx, n_threads, n_threads_batch,
        n_batch, embedding, assemble), checked here, in the caller's process, by ``SmallLM`` itself.
        Deadlines, in seconds: ``start_deadline`` for the first start (model file assembly included),
        ``restart_deadline`` for later ones, ``first_token_deadline`` from a request to its first
        token (and for any one step of llama.cpp), ``token_deadline`` for the child's silence while it
        generates (see ``_next_message``)."""
        from .gguf_files import default_cache_dir
        from .small_lm import SmallLM

        SmallLM(model_path, **options)
        deadlines = dict(start_deadline=start_deadline, restart_deadline=restart_deadline,
                         first_token_deadline=first_token_deadline, token_deadline=token_deadline)
        for name, seconds in deadlines.items():
            if not 0 < seconds < math.inf:  # also refuses nan; an infinite wait is what deadlines prevent
                raise ValueError(f"{name} must be a positive, finite number of seconds, got {seconds!r}")
        # The child runs in another folder (see ``_start``): it gets absolute paths, and the cache
        # folder this process would use (the child does not see XDG_CACHE_HOME).
        if model_path is None and options.get("cache_dir") is None:
            options["cache_dir"] = default_cache_dir()
        self.config = {name: str(Path(value).absolute()) if isinstance(value, (str, Path)) and name in
                       ("model_path", "cache_dir") else value
                       for name, value in dict(options, model_path=model_path).items()}
        self.start_deadline = start_deadline
        self.restart_deadline = restart_deadline
        self.first_token_deadline = first_token_deadline
        self.token_deadline = token_deadline
        self._process: subprocess.Popen | None = None
        self._replies: queue.Queue | None = None
        self._lock = threading.Lock()  # one conversation with the child at a time
        self._started_once = False
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
        self._stop_process(polite=False)  # a child that died leaves its pipes behind
        started = time.perf_counter()
        self._process, self._replies = self._start()
        seconds = self.restart_deadline if self._started_once else self.start_deadline
        reply = self._next_reply(seconds, f"not ready {seconds:g} s after its start")
        if "error" in reply:
            self._stop_process(polite=False)
            raise BackendError(reply["error"])
        self._started_once = True
        self._load_seconds = float(reply["ready"]["load_seconds"])
        self._start_seconds = time.perf_counter() - started

    def _child_command(self) -> list[str]:
        return [sys.executable, "-m", "emo_core.llm.lm_worker", json.dumps(self.config)]

    def _start(self) -> tuple[subprocess.Popen, queue.Queue]:
        # The child runs in the folder that holds this emo_core: ``python -m`` puts its working folder
        # first on sys.path, so the child imports the very emo_core this process runs, with no
        # PYTHONPATH to inject, whether emo_core is installed (editable or not) or only checked out, and
        # never another installed copy of it (a second checkout next to an editable install would
        # otherwise run one version in the app and another in the child). PYTHONSAFEPATH, which would
        # turn that off, is not passed on; paths in the config are absolute.
        try:
            process = subprocess.Popen(self._child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=None, env=child_environment(), cwd=_PACKAGE_ROOT, text=True, bufsize=1)
        except OSError as exc:  # no such interpreter, out of processes or memory
            raise BackendError(f"the language model process could not be started ({exc.strerror or exc})") from exc
        # Requests are written to the raw descriptor without blocking (``_write_line``): a child that
        # stopped reading must not hold this process on a full pipe.
        os.set_blocking(process.stdin.fileno(), False)
        replies: queue.Queue = queue.Queue()
        threading.Thread(target=_read_lines, args=(process.stdout, replies), daemon=True,
                         name=f"lm-worker-{process.pid}").start()
        return process, replies

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
            # The child answers "started" once it has tokenised the prompt: milliseconds.
            reply = self._next_reply(self.token_deadline, f"no reply {self.token_deadline:g} s after the request")
            if "error" in reply:
                raise _ERROR_TYPES.get(reply.get("kind"), BackendError)(reply["error"])
            watch, finished = _Watch(self.first_token_deadline), False
            try:
                yield ""  # the handshake is done; ``stream`` hands the generator to the caller from here
                while True:
                    reply = self._next_message(watch)
                    if "piece" in reply:
                        yield reply["piece"]
                    elif "done" in reply:
                        self._stats = GenerationStats(**reply["done"])
                        finished = True
                        return
                    else:
                        finished = "error" in reply  # the child has ended this generation itself
                        raise BackendError(reply.get("error", "the language model process sent an unexpected message"))
            finally:
                if not finished and self.loaded:
                    self._cancel_and_drain()

    def _next_message(self, watch: "_Watch") -> dict:
        """The next piece, "done" or "error" of a generation, with its deadlines:

        - silence (not even the child's heartbeat) for ``token_deadline``: the process is stopped or
          frozen; it is killed;
        - no first token within ``first_token_deadline`` (a long prompt read slowly on a busy machine):
          the generation ends, the child stays (the caller's clean-up tells it to stop reading);
        - heartbeats, but no step of llama.cpp (a batch of the prompt, a token) for
          ``first_token_deadline``: llama.cpp is stuck; the child is killed."""
        while True:
            now = time.monotonic()
            waits = {"silent": self.token_deadline}
            if watch.pieces_seen:
                waits["stuck"] = watch.moved_at + self.first_token_deadline - now
            else:  # a stuck llama.cpp does not stop when told, and is killed then (``_cancel_and_drain``)
                waits["slow"] = watch.first_token_by - now
            why = min(waits, key=waits.get)
            reply = self._reply_within(max(waits[why], 0.0))
            if reply is None:
                if why == "silent":
                    raise self._stalled(f"no sign of life for {self.token_deadline:g} s")
                if why == "slow":
                    raise BackendError(f"the language model was too slow (no first token after "
                                       f"{self.first_token_deadline:g} s of reading the prompt)")
                raise self._stalled(f"no progress for {self.first_token_deadline:g} s")
            if "piece" in reply or reply.get("progress", watch.steps) != watch.steps:
                watch.moved_at = time.monotonic()
                watch.steps = reply.get("progress", watch.steps)
            if "progress" in reply:
                continue
            watch.pieces_seen = watch.pieces_seen or "piece" in reply
            return reply

    def _cancel_and_drain(self) -> None:
        """The caller stopped early: tell the child, and read up to its "done" so the next call starts
        clean. The child stops at its next token or batch of the prompt; past ``token_deadline`` it is
        stopped instead."""
        try:
            self._send({"op": "cancel"})
            end = time.monotonic() + self.token_deadline
            while True:
                reply = self._next_reply(max(end - time.monotonic(), 0.0),
                                         f"no reply {self.token_deadline:g} s after the cancel")
                if "done" in reply:
                    self._stats = GenerationStats(**reply["done"])
                    return
                if "error" in reply:
                    return
        except BackendError:
            pass  # the child was stopped already: the next call starts a new one

    def complete(self, prompt: str, **options) -> str:
        return "".join(self.stream(prompt, **options))

    def close(self) -> None:
        """Stop the child (the next call starts a new one). Returns within seconds even while a stream
        holds the model (one not yet exhausted or closed, perhaps forgotten by its caller): its child is
        then killed, and that stream, if it is ever read again, ends with ``BackendError``."""
        if self._lock.acquire(timeout=CLOSE_SECONDS):
            try:
                self._stop_process(polite=True)
            finally:
                self._lock.release()
            return
        process = self._process  # the stream's thread owns the state; killing the process is safe from here
        if process is not None:
            try:
                process.kill()
            except OSError:
                pass

    def _stalled(self, what: str) -> BackendError:
        self._stop_process(polite=False)  # it does not answer, so it would not answer "close" either
        return BackendError(f"the language model stopped answering ({what}); "
                            "its process was stopped and a new one starts with the next request")

    def _send(self, message: dict) -> None:
        try:
            written = _write_line(self._process, message, self.token_deadline)
        except (OSError, ValueError):  # the child is gone (ValueError: the pipe was already closed)
            raise BackendError(self._death_message()) from None
        if not written:
            raise self._stalled(f"it read no request for {self.token_deadline:g} s")

    def _next_reply(self, seconds: float, stalled: str) -> dict:
        """The child's next message within ``seconds``; past that, the child is stopped and
        ``BackendError`` says ``stalled`` (what was missing)."""
        reply = self._reply_within(seconds)
        if reply is None:
            raise self._stalled(stalled)
        return reply

    def _reply_within(self, seconds: float) -> dict | None:
        """The child's next message, or None if none came within ``seconds``. ``BackendError`` if the child
        ended its output (or sent something that is not a message)."""
        try:
            line = self._replies.get(timeout=seconds)
        except queue.Empty:
            return None
        if line is None:  # the reader saw the end of the child's stdout
            raise BackendError(self._death_message())
        try:
            return json.loads(line)
        except ValueError:
            self._stop_process(polite=False)
            raise BackendError("the language model process sent something other than its messages; "
                               "it was stopped and a new one starts with the next request") from None

    def _death_message(self) -> str:
        """Why the child's pipe closed: its exit code. Never blocks for long and never raises: a child that
        closed its output but lives on is killed."""
        code = None
        if self._process is not None:
            try:
                code = self._process.wait(timeout=REAP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        self._stop_process(polite=False)
        ended = f"exit code {code}" if code is not None else "it closed its output and was killed"
        return f"the language model process stopped ({ended}); a new one starts with the next request"

    def _stop_process(self, *, polite: bool) -> None:
        """End the child: ``polite`` asks it to close first (``CLOSE_SECONDS``), then SIGKILL. Never raises;
        waits at most ``CLOSE_SECONDS + REAP_SECONDS``."""
        process, self._process = self._process, None
        if process is None:
            return
        if polite and process.poll() is None:
            try:
                if _write_line(process, {"op": "close"}, CLOSE_SECONDS):
                    process.wait(timeout=CLOSE_SECONDS)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        if process.poll() is None:
            try:
                process.kill()  # SIGKILL ends a stopped (SIGSTOP) process too
                process.wait(timeout=REAP_SECONDS)
            except (OSError, subprocess.TimeoutExpired):
                # Still not reaped (e.g. stuck in the kernel): it dies when that returns, and subprocess
                # reaps it at a later Popen call; nothing here waits for it.
                pass
        try:
            process.stdin.close()
        except (OSError, ValueError):
            pass
        # stdout is closed by its reader thread at the end of the stream (closing it here, under the
        # thread's feet, could raise in that thread).


class _Watch:
    """How far a generation got, for ``WorkerLM._next_message``'s deadlines."""

    def __init__(self, first_token_deadline: float):
        self.moved_at = time.monotonic()  # when the child last reported a step (or sent a piece)
        self.first_token_by = self.moved_at + first_token_deadline
        self.steps = 0
        self.pieces_seen = False


def _write_line(process: subprocess.Popen, message: dict, seconds: float) -> bool:
    """Write one JSON line to the child's stdin within ``seconds``; False if the pipe stayed full (the
    child stopped reading). Raises OSError/ValueError when the pipe is closed."""
    data = (json.dumps(message) + "\n").encode("utf-8")
    fd = process.stdin.fileno()
    deadline = time.monotonic() + seconds
    while data:
        try:
            data = data[os.write(fd, data):]
            continue
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
            return False
    return True


def _read_lines(stream, replies: queue.Queue) -> None:
    try:
        for line in stream:
            if line.strip():
                replies.put(line)
    except (OSError, ValueError):  # the pipe broke or was closed: the same as its end
        pass
    finally:
        replies.put(None)
        try:
            stream.close()
        except OSError:
            pass


@atexit.register
def _stop_all() -> None:
    for worker in list(_workers):
        worker.close()


# ---------------------------------------------------------------------------------------------
# the child


def serve(config: dict) -> int:
    """The child's loop: load the model, then answer requests until "close" or the end of stdin."""
    channel = _Channel(os.fdopen(os.dup(1), "w", buffering=1))
    os.dup2(2, 1)  # stray prints (from C libraries too) go to stderr, not into the protocol
    sys.stdout = sys.stderr

    from .small_lm import SmallLM

    lm = SmallLM(config.pop("model_path"), **config)
    try:
        lm.load()
    except BackendError as exc:
        channel.send({"error": str(exc)})
        return 1
    channel.send({"ready": {"load_seconds": lm.load_seconds}})

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

    def beat() -> None:
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            channel.beat()

    threading.Thread(target=read_requests, daemon=True).start()
    threading.Thread(target=beat, daemon=True).start()
    while True:
        message = requests.get()
        if message["op"] == "close":
            lm.close()
            return 0
        if message["op"] == "stream":
            cancel.clear()  # a cancel that came after the previous generation had ended
            _answer_stream(lm, message, cancel, channel)


class _Channel:
    """The child's end of the pipe: whole JSON lines, from the main thread and from the heartbeat.

    While a generation runs (from its "started" to its "done" or "error"), the heartbeat thread sends
    ``{"progress": steps}`` every ``HEARTBEAT_SECONDS``, steps being the prompt batches and tokens
    llama.cpp has finished. It runs while llama.cpp computes (which releases the GIL), so a silent
    child is a stopped or frozen process, and a child whose steps stand still is a stuck llama.cpp."""

    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()  # one line at a time; and no heartbeat after a generation's end
        self.steps: int | None = None  # None between generations

    def send(self, message: dict, *, starts: bool = False, ends: bool = False) -> None:
        with self._lock:
            if starts:
                self.steps = 0
            if ends:
                self.steps = None
            self._stream.write(json.dumps(message) + "\n")

    def beat(self) -> None:
        with self._lock:
            if self.steps is not None:
                self._stream.write(json.dumps({"progress": self.steps}) + "\n")


class _Cancelled(Exception):
    """Raised between two batches of the prompt (or two tokens) when the parent cancelled."""


def _answer_stream(lm, message: dict, cancel: threading.Event, channel: _Channel) -> None:
    from dataclasses import asdict

    def after_step() -> None:  # after each batch of the prompt and each token, in llama.cpp's loop
        channel.steps += 1
        if cancel.is_set():
            raise _Cancelled  # stop reading the prompt; what was read stays in llama.cpp's cache

    try:
        pieces = lm.stream(message["prompt"], **message["options"], on_progress=after_step)
    except (ValueError, TypeError, BackendError) as exc:
        channel.send({"error": str(exc), "kind": type(exc).__name__})
        return
    channel.send({"started": True}, starts=True)
    held, last_sent = [], time.perf_counter()
    try:
        for piece in pieces:
            if cancel.is_set():
                break
            held.append(piece)
            if time.perf_counter() - last_sent >= SEND_INTERVAL_SECONDS:
                channel.send({"piece": "".join(held)})
                held, last_sent = [], time.perf_counter()
    except _Cancelled:
        pass
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it as BackendError
        pieces.close()
        channel.send({"error": f"generation failed: {exc}"}, ends=True)
        return
    pieces.close()
    if held:
        channel.send({"piece": "".join(held)})
    channel.send({"done": asdict(lm.stats)}, ends=True)

if __name__ == "__main__":
    sys.exit(serve(json.loads(sys.argv[1])))
