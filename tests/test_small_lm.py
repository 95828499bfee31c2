"""The offline reason writer: GGUF assembly, ``SmallLM`` on llama.cpp, and ``write_reason``'s guards.

    .venv/bin/python -m pytest -q tests/test_small_lm.py

The real GGUF is assembled once per session into a temporary cache folder (about 2-8 s and 253 MB of
temporary disk): the assembly itself is under test, so the user's cache is never reused. Locking and
hash failures are tested on a fake chunk package of a few MB. The guard tests use stand-in models
that misbehave on purpose; the rest runs the real 270M model (greedy or seeded, so the texts are
the same on every run with the same llama.cpp build).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from emo_core.errors import BackendError
from emo_core.labels import CLASS_SETS
from emo_core.llm import gguf_files
from emo_core.llm.gguf_files import GEMMA3_270M_Q4KM, GGUFSpec, assemble_gguf, ensure_gguf, find_gguf
from emo_core.llm.reason_writer import (DEFAULT_ATTEMPTS, MAX_SENTENCES, RETRY_TEMPERATURE, build_prompt,
                                        write_reason)
from emo_core.llm import gguf_variant
from emo_core.llm.gguf_variant import (EMBEDDING_TENSOR, NOTICE_KEY, derive_variant, ensure_reason_model, notice_path,
                                       variant_path)
from emo_core.llm.lm_worker import WorkerLM
from emo_core.llm.small_lm import SmallLM

HAPPY_FACE_CUES = ["one face, expression happy (0.96)", "bright (brightness 0.70)", "colourful (colorfulness 65)",
                   "objects: dog, frisbee"]
ANGRY_VIDEO_CUES = ["face at the peak frame: frowns, furrowed brows", "facial expression angry (0.83)",
                    "voice: high-pitched, lively and loud voice, fast speech with few pauses",
                    'words: "I told you three times already."']  # the app's phrases (video_emotion._cue_phrases)
ALL_EMOTION_LABELS = {label for class_set in CLASS_SETS.values() for label in class_set.labels}
COUNTING_PROMPT = "1, 2, 3, 4, 5, 6,"
FALLBACK = "Template reason from the measured cues."


# ---------------------------------------------------------------------------------------------
# assembly

@pytest.fixture(scope="session")
def assembled(tmp_path_factory):
    """The real GGUF, assembled from the installed packages into an empty temporary cache folder."""
    report = assemble_gguf(tmp_path_factory.mktemp("llm-cache"))
    yield report
    report.path.unlink(missing_ok=True)  # 253 MB, and pytest keeps its last few temporary folders


@pytest.fixture(scope="session")
def derived(assembled):
    """The faster file the app runs (token embedding in Q4_0), derived from the assembled one (~30-50 s)."""
    report = derive_variant(assembled.path, "q4_0")
    yield report
    report.path.unlink(missing_ok=True)
    notice_path(report.path).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def inline_lm(derived) -> SmallLM:
    model = SmallLM(derived.path, n_ctx=1024)
    yield model.load()
    model.close()


@pytest.fixture(scope="session")
def worker_lm(derived) -> WorkerLM:
    model = WorkerLM(derived.path, n_ctx=1024)
    yield model.load()
    model.close()


@pytest.fixture(params=["inline", "worker"])
def lm(request):
    """Each behaviour test runs on both: the model in this process, and in a process of its own."""
    return request.getfixturevalue(f"{request.param}_lm")


def test_assembly_writes_the_pinned_file_once(assembled):
    assert assembled.assembled and assembled.path.name == GEMMA3_270M_Q4KM.filename
    assert assembled.path.stat().st_size == GEMMA3_270M_Q4KM.size
    assert not list(assembled.path.parent.glob("*.partial"))
    started = time.perf_counter()
    again = assemble_gguf(assembled.path.parent)
    assert not again.assembled and again.path == assembled.path
    assert time.perf_counter() - started < 1.0  # size check only, no re-hash of 253 MB
    assert ensure_gguf(assembled.path.parent, assemble=False) == assembled.path


@pytest.fixture()
def fake_spec(tmp_path, monkeypatch) -> tuple[GGUFSpec, bytes]:
    """A chunk package like the real one, with three chunks of 1 MB (random bytes), on sys.path."""
    package = tmp_path / "pkgs" / "fake_gguf_chunks"
    (package / "data").mkdir(parents=True)
    chunks = [bytes([index]) * 1_000_000 + hashlib.sha256(bytes([index])).digest() for index in range(3)]
    for index, chunk in enumerate(chunks):
        (package / "data" / f"part{index}").write_bytes(chunk)
    (package / "__init__.py").write_text(textwrap.dedent("""
        from pathlib import Path
        def chunk_paths():
            return [Path(__file__).parent / "data" / f"part{i}" for i in range(3)]
    """))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    whole = b"".join(chunks)
    spec = GGUFSpec("fake.gguf", len(whole), hashlib.sha256(whole).hexdigest(), "fake_gguf_chunks",
                    "fake-gguf-chunks==0", "test")
    return spec, whole


def test_concurrent_assembly_joins_once_and_leaves_no_partial_file(fake_spec, tmp_path):
    spec, whole = fake_spec
    cache = tmp_path / "cache"
    reports, errors = [], []

    def assemble():
        try:
            reports.append(assemble_gguf(cache, spec))
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=assemble) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(report.assembled for report in reports) == 1  # the others found the finished file
    assert (cache / "fake.gguf").read_bytes() == whole
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf", "fake.gguf.lock"]


def test_a_chunk_that_does_not_match_the_hash_leaves_no_file(fake_spec, tmp_path):
    spec, _ = fake_spec
    wrong = GGUFSpec(spec.filename, spec.size, "0" * 64, spec.package, spec.pip_name, spec.licence)
    cache = tmp_path / "cache"
    with pytest.raises(BackendError, match="does not match its pinned size/SHA-256"):
        assemble_gguf(cache, wrong)
    assert find_gguf(cache, wrong) is None
    assert [p.name for p in cache.iterdir()] == ["fake.gguf.lock"]  # the partial file was removed


def test_a_truncated_cache_file_is_not_used_and_gets_replaced(fake_spec, tmp_path):
    spec, whole = fake_spec
    (tmp_path / "fake.gguf").write_bytes(whole[:1000])  # e.g. a copy that was interrupted
    assert find_gguf(tmp_path, spec) is None
    with pytest.raises(BackendError, match="is missing"):
        ensure_gguf(tmp_path, spec, assemble=False)
    assert ensure_gguf(tmp_path, spec).read_bytes() == whole


def test_a_missing_package_says_what_to_install(tmp_path):
    spec = GGUFSpec("x.gguf", 1, "0" * 64, "no_such_chunk_package_here", "no-such-chunk-package==1", "test")
    with pytest.raises(BackendError, match="pip install no-such-chunk-package==1"):
        assemble_gguf(tmp_path, spec)


def test_cli_prints_the_path_and_assembles(fake_spec, tmp_path, monkeypatch, capsys):
    spec, whole = fake_spec
    monkeypatch.setattr(gguf_files, "GEMMA3_270M_Q4KM", spec)
    assert gguf_files.main(["--cache-dir", str(tmp_path), "--print-path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "fake.gguf")
    assert not (tmp_path / "fake.gguf").exists()
    assert gguf_files.main(["--cache-dir", str(tmp_path), "--embedding", "q8_0"]) == 0
    assert "assembled" in capsys.readouterr().out
    assert (tmp_path / "fake.gguf").read_bytes() == whole
    # The fake chunks are no GGUF: deriving the faster file fails with llama.cpp's reason, and no file is left.
    assert gguf_files.main(["--cache-dir", str(tmp_path)]) == 1
    assert "invalid magic characters" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.glob("fake*.gguf")) == ["fake.gguf"]


# ---------------------------------------------------------------------------------------------
# the faster variant

# llama.cpp's quantisation is deterministic: with llama-cpp-python pinned, so is the derived file
# (the Q4_0 embedding plus the notice key in its metadata).
Q4_0_VARIANT_SHA256 = "a2629da9db91ce0cc285557e12f3ea21c2fdbd5e3f60c413788dc1601da8b2b3"


def test_the_variant_changes_only_the_token_embedding(assembled, derived):
    from gguf import GGUFReader

    assert derived.derived and derived.path == variant_path(assembled.path.parent, "q4_0")
    shipped = {t.name: t for t in GGUFReader(str(assembled.path)).tensors}
    variant = {t.name: t for t in GGUFReader(str(derived.path)).tensors}
    assert shipped.keys() == variant.keys()
    for name, tensor in shipped.items():
        if name == EMBEDDING_TENSOR:
            assert (tensor.tensor_type.name, variant[name].tensor_type.name) == ("Q8_0", "Q4_0")
        else:  # copied byte for byte
            assert variant[name].tensor_type == tensor.tensor_type and bytes(variant[name].data) == bytes(tensor.data)
    assert derived.path.stat().st_size < assembled.path.stat().st_size - 80_000_000
    digest = hashlib.sha256(derived.path.read_bytes()).hexdigest()
    assert digest == Q4_0_VARIANT_SHA256
    again = derive_variant(assembled.path, "q4_0")
    assert not again.derived and again.seconds < 1.0
    assert ensure_reason_model(assembled.path.parent, "q4_0", assemble=False) == derived.path
    assert ensure_reason_model(assembled.path.parent, "q8_0", assemble=False) == assembled.path
    assert not list(assembled.path.parent.glob(".*.partial"))


def test_the_derived_file_carries_the_gemma_modification_notice(assembled, derived):
    from gguf import GGUFReader

    path = ensure_reason_model(assembled.path.parent, "q4_0", assemble=False)
    inside = GGUFReader(str(path)).fields[NOTICE_KEY].contents()
    beside = notice_path(path).read_text(encoding="utf-8")
    for text in (inside, beside):
        assert "Modified by EmoLens" in text and "token_embd.weight" in text and "Q8_0 to Q4_0" in text
        assert "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms" in text
    assert beside.startswith(path.name) and "GEMMA_TERMS.html" in beside
    assert NOTICE_KEY not in GGUFReader(str(assembled.path)).fields  # the shipped file is left as it is
    assert not notice_path(assembled.path).exists()


def test_a_derived_file_without_its_notice_is_derived_again(assembled, derived, tmp_path, monkeypatch):
    """A file derived before the notice existed (or cut off before it was written) is not used as it is."""
    os.link(assembled.path, tmp_path / assembled.path.name)  # the real files, without copying 400 MB
    os.link(derived.path, tmp_path / derived.path.name)
    calls = []

    def quantize(shipped, target, embedding):
        calls.append((shipped.name, target.name, embedding))
        target.unlink()  # as os.replace does: never write through the link into the session's file
        target.write_bytes(b"re-derived")
        notice_path(tmp_path / derived.path.name).write_text("notice", encoding="utf-8")

    monkeypatch.setattr(gguf_variant, "_quantize_checked", quantize)
    with pytest.raises(BackendError, match="has no modification notice"):
        ensure_reason_model(tmp_path, "q4_0", assemble=False)
    path = ensure_reason_model(tmp_path, "q4_0")
    assert calls == [(assembled.path.name, derived.path.name, "q4_0")] and path.read_bytes() == b"re-derived"
    assert ensure_reason_model(tmp_path, "q4_0", assemble=False) == path and len(calls) == 1
    assert derived.path.stat().st_size > 100_000_000  # the session's file is untouched


def test_unknown_embedding_types_are_refused(tmp_path):
    with pytest.raises(ValueError, match="choose q8_0, q4_0"):
        SmallLM(tmp_path / "x.gguf", embedding="q2_k")
    with pytest.raises(ValueError, match="choose q8_0, q4_0"):
        variant_path(tmp_path, "f16")


# ---------------------------------------------------------------------------------------------
# SmallLM and WorkerLM

def test_missing_gguf_is_a_clear_backend_error(tmp_path):
    with pytest.raises(BackendError, match="does not exist"):
        SmallLM(tmp_path / "absent.gguf").complete("Hello", max_tokens=4)
    with pytest.raises(BackendError, match=r"is missing; create it with `python -m emo_core.llm.gguf_files`"):
        SmallLM(cache_dir=tmp_path, assemble=False).load()


def test_missing_llama_cpp_is_a_clear_backend_error(assembled, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError
    with pytest.raises(BackendError, match="pip install llama-cpp-python"):
        SmallLM(assembled.path).load()


def test_loads_once_within_the_budget(lm):
    assert lm.loaded
    first = lm.load_seconds
    assert 0 < first < 5.0  # the target is <= 2 s; the margin is for a busy shared machine
    assert lm.load() is lm and lm.load_seconds == first


def _settled(model, prompt: str, **options) -> str:
    """The completion once the prompt is in the model's cache. llama-cpp-python reuses the cached part
    of a prompt, and evaluating the rest in another split of batches changes the arithmetic slightly
    (other matrix kernels), enough to flip a near-tie between two tokens; so a completion is only
    reproducible from the same cache state: here, this very prompt and completion already read."""
    model.complete(prompt, **options)
    return model.complete(prompt, **options)


def test_greedy_and_seeded_completions_are_deterministic(lm):
    prompt = build_prompt("amusement", HAPPY_FACE_CUES, "image")
    greedy = [_settled(lm, prompt, max_tokens=24, temperature=0.0, seed=7) for _ in range(2)]
    assert greedy[0].strip() and greedy[0] == greedy[1]
    seeded = [_settled(lm, prompt, max_tokens=24, temperature=0.9, seed=11) for _ in range(2)]
    assert seeded[0] == seeded[1]
    assert lm.stats.completion_tokens > 0 and lm.stats.prompt_tokens > 100


def test_stream_pieces_concatenate_to_the_completion(lm):
    pieces = list(lm.stream(COUNTING_PROMPT, max_tokens=20, temperature=0.0))
    stats = lm.stats
    assert len(pieces) >= 3  # streamed: the worker sends pieces in bunches every few tens of ms
    assert "".join(pieces) == lm.complete(COUNTING_PROMPT, max_tokens=20, temperature=0.0)
    assert stats.completion_tokens == 20 and stats.finish_reason == "length"
    assert stats.tokens_per_second > 0 and stats.seconds >= stats.first_token_seconds > 0


def test_stop_string_ends_the_generation_and_is_not_returned(lm):
    free = lm.complete(COUNTING_PROMPT, max_tokens=20, temperature=0.0)
    assert " 9" in free  # the model does count on, so the stop below has something to cut
    stopped = lm.complete(COUNTING_PROMPT, max_tokens=20, temperature=0.0, stop=[" 9"])
    assert " 9" not in stopped and free.startswith(stopped) and len(stopped) < len(free)
    assert lm.stats.finish_reason == "stop" and lm.stats.completion_tokens < 20


WEEKDAYS_PROMPT = "Monday, Tuesday, Wednesday, Thursday,"


def test_avoided_phrases_are_never_written(lm):
    free = lm.complete(WEEKDAYS_PROMPT, max_tokens=8, temperature=0.0)
    assert free.startswith(" Friday, Saturday")  # what the bans below must change
    # a one-token phrase can never be drawn; the next candidate takes its place
    without_friday = lm.complete(WEEKDAYS_PROMPT, max_tokens=8, temperature=0.0, avoid=[" Friday"])
    assert "Friday" not in without_friday and without_friday.strip()
    # a longer phrase bans only its last token, after the rest: "Friday" stays, ", Saturday" does not follow
    no_pair = lm.complete(WEEKDAYS_PROMPT, max_tokens=8, temperature=0.0, avoid=[" Friday, Saturday", " Sunday"])
    assert no_pair.startswith(" Friday") and not no_pair.startswith(" Friday, Saturday") and "Sunday" not in no_pair
    # seeded sampling too, and a ban that never comes up changes nothing
    assert "Friday" not in lm.complete(WEEKDAYS_PROMPT, max_tokens=8, temperature=0.9, seed=3, avoid=[" Friday"])
    assert lm.complete(WEEKDAYS_PROMPT, max_tokens=8, temperature=0.0, avoid=[" zebra crossing"]) == free
    with pytest.raises((TypeError, BackendError), match="list of phrases"):
        lm.complete(WEEKDAYS_PROMPT, max_tokens=4, avoid=" Friday")


def test_a_stream_closed_early_frees_the_model_for_the_next_call(lm):
    stream = lm.stream(COUNTING_PROMPT, max_tokens=40, temperature=0.0)
    next(stream), next(stream)
    stream.close()
    assert lm.stats.finish_reason == "closed" and lm.stats.completion_tokens < 40
    assert _answers_within(lm, 30), "the model stayed locked after the stream was closed"


def _answers_within(model: SmallLM, seconds: float) -> bool:
    # From another thread, so a lock that was never released fails the test instead of hanging it.
    done = threading.Event()
    threading.Thread(target=lambda: (model.complete("Hi", max_tokens=2), done.set()), daemon=True).start()
    return done.wait(seconds)


def test_concurrent_calls_are_serialised_and_give_the_sequential_answer(lm):
    prompt = build_prompt("angry", ANGRY_VIDEO_CUES, "video")
    expected = _settled(lm, prompt, max_tokens=16, temperature=0.0)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(lm.complete(prompt, max_tokens=16, temperature=0.0)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [expected, expected]


# ---------------------------------------------------------------------------------------------
# WorkerLM only

@pytest.mark.parametrize("options", [dict(temperature=0.0), dict(temperature=0.9, seed=5)], ids=["greedy", "seeded"])
def test_the_worker_writes_what_the_model_in_this_process_writes(derived, options):
    # Fresh models on both sides: each reads the prompt from an empty cache, in the same batches
    # (see ``_settled`` for why the cache's history matters).
    prompt = build_prompt("angry", ANGRY_VIDEO_CUES, "video")
    inline, worker = SmallLM(derived.path, n_ctx=1024), WorkerLM(derived.path, n_ctx=1024)
    try:
        assert worker.complete(prompt, max_tokens=24, **options) == inline.complete(prompt, max_tokens=24, **options)
        assert worker.stats.prompt_tokens == inline.stats.prompt_tokens
        assert worker.stats.completion_tokens == inline.stats.completion_tokens
    finally:
        inline.close()
        worker.close()


def test_a_worker_stream_dropped_before_its_first_piece_leaves_nothing_behind(worker_lm):
    stream = worker_lm.stream(COUNTING_PROMPT, max_tokens=40, temperature=0.0)
    del stream  # never iterated: the child is told to stop, and its unread pieces are not the next call's
    assert worker_lm.stats.finish_reason == "closed"
    assert worker_lm.complete("1, 2, 3,", max_tokens=6).startswith(" 4, 5")


def test_worker_errors_arrive_with_their_type_at_the_call(worker_lm):
    with pytest.raises(ValueError, match="max_tokens must be positive"):
        worker_lm.stream("Hi", max_tokens=0)
    with pytest.raises(TypeError, match="max_length"):
        worker_lm.stream("Hi", max_length=5)
    with pytest.raises(BackendError, match="exceeds the context of 1024 tokens"):
        worker_lm.stream("word " * 1100, max_tokens=8)
    assert worker_lm.complete(COUNTING_PROMPT, max_tokens=6).startswith(" 7, 8")


def test_a_worker_without_its_model_file_says_why(tmp_path):
    with pytest.raises(BackendError, match="does not exist"):
        WorkerLM(tmp_path / "absent.gguf").load()
    with pytest.raises(ValueError, match="n_ctx must be at least 64"):
        WorkerLM(tmp_path / "absent.gguf", n_ctx=8)  # checked in this process, before any child starts


def test_a_killed_worker_fails_the_running_call_and_restarts_for_the_next(derived):
    model = WorkerLM(derived.path, n_ctx=512).load()
    try:
        first_pid = model.pid
        stream = model.stream(COUNTING_PROMPT, max_tokens=200, temperature=0.0)
        next(stream)
        os.kill(first_pid, signal.SIGKILL)
        with pytest.raises(BackendError, match="process stopped"):
            list(stream)
        assert model.complete(COUNTING_PROMPT, max_tokens=6).startswith(" 7, 8")
        assert model.pid not in (None, first_pid)
    finally:
        model.close()
    assert model.pid is None


def test_the_worker_exits_with_its_parent(derived):
    parent = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            from emo_core.llm.lm_worker import WorkerLM
            model = WorkerLM({str(derived.path)!r}, n_ctx=256).load()
            print(model.pid, flush=True)
            import os; os._exit(0)  # no clean-up at all, as if the app were killed
        """)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    child = int(parent.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(child):
        time.sleep(0.1)
    assert not _running(child), "the model process outlived the app"


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return status != "Z"  # a zombie has exited; only its parent (gone) would reap it


# ---------------------------------------------------------------------------------------------
# write_reason

def _other_labels_named(text: str, *allowed: str) -> set[str]:
    words = set(text.lower().replace(".", " ").replace(",", " ").split())
    return {label for label in ALL_EMOTION_LABELS - set(allowed) if label in words}


def test_reason_for_a_happy_face_is_streamed_whole_sentences_on_the_label(lm):
    stream = write_reason("amusement", HAPPY_FACE_CUES, modality="image", fallback=FALLBACK, lm=lm)
    updates = list(stream)
    result = stream.result
    assert result.by_model, result.problem
    assert len(updates) >= 3 and updates[-1] == result.text  # shown live, the last item is final
    assert result.text.endswith((".", "!", "?")) and len(result.text.split()) >= 5
    assert result.text.count(". ") < MAX_SENTENCES
    assert "\n" not in result.model_text and "Cues:" not in result.model_text
    assert not _other_labels_named(result.text, "amusement", "happy")  # happy is a cue: may be quoted
    assert result.stats.completion_tokens > 5


def test_closing_a_reason_stream_early_stops_the_model(lm):
    stream = write_reason("amusement", HAPPY_FACE_CUES, modality="image", fallback=FALLBACK, lm=lm)
    first = next(iter(stream))
    assert first and first != FALLBACK
    stream.close()
    assert lm.stats.finish_reason == "closed"
    with pytest.raises(RuntimeError, match="not finished"):
        stream.result
    assert _answers_within(lm, 30), "the model stayed locked after the reason stream was closed"


def test_reason_for_a_video_clip(lm):
    result = write_reason("angry", ANGRY_VIDEO_CUES, modality="video", fallback=FALLBACK, lm=lm, stream=False)
    assert result.by_model, result.problem
    assert not _other_labels_named(result.text, "angry", "anger")
    assert result.text != FALLBACK and result.text.endswith((".", "!", "?"))


class ScriptedLM:
    """Stands in for ``SmallLM``: streams fixed texts (one per call, the last one repeated) word by word."""

    def __init__(self, *texts: str, finish_reason: str = "stop"):
        self.texts, self.calls, self.closed = list(texts), [], 0
        self.stats = type("Stats", (), {"finish_reason": finish_reason})()

    def stream(self, prompt: str, **options):
        self.calls.append(options)
        return self._pieces(self.texts[min(len(self.calls), len(self.texts)) - 1])

    def _pieces(self, text: str):
        try:
            for index, word in enumerate(text.split(" ")):
                yield (" " if index else "") + word
        finally:
            self.closed += 1


def _run(*texts: str, label: str = "sadness", cues=("no face found", "dark (brightness 0.12)"), modality="image"):
    model = ScriptedLM(*texts)
    stream = write_reason(label, list(cues), modality=modality, fallback=FALLBACK, lm=model)
    return list(stream), stream.result, model


def test_a_repetition_loop_falls_back_to_the_template_and_stops_the_model():
    updates, result, model = _run("The dark scene feels heavy and the dark scene feels heavy and the dark scene "
                                  "feels heavy and the dark scene feels heavy")
    assert not result.by_model and result.text == FALLBACK and updates[-1] == FALLBACK
    assert "repeated" in result.problem
    assert result.attempts == DEFAULT_ATTEMPTS and model.closed == DEFAULT_ATTEMPTS  # each try was stopped
    assert len(result.rejections) == DEFAULT_ATTEMPTS and all("repeated" in r for r in result.rejections)
    assert result.rejections[-1] == result.problem


def test_a_rejected_text_is_retried_with_another_seed_and_some_temperature():
    updates, result, model = _run("The dark scene feels heavy and the dark scene feels heavy again.",
                                  "The dark and empty room leaves a quiet feeling of sadness.")
    assert result.by_model and result.attempts == 2
    assert result.text == "The dark and empty room leaves a quiet feeling of sadness."
    first, second = model.calls
    assert second["seed"] == first["seed"] + 1 and second["temperature"] >= RETRY_TEMPERATURE
    assert updates[-1] == result.text
    assert len(result.rejections) == 1 and "repeated itself ('the dark scene feels')" in result.rejections[0]
    assert result.problem == ""


def test_another_emotion_falls_back_and_is_never_shown():
    updates, result, _ = _run("The dark room looks calm and joyful, with soft light everywhere.")
    assert not result.by_model and "'joyful'" in result.problem
    assert not any("joyful" in update for update in updates)
    assert updates[-1] == FALLBACK


def test_an_emotion_the_cues_report_may_be_quoted():
    _, result, model = _run("The angry face and the dark room together make the scene feel like sadness.",
                            cues=["one face, expression angry (0.51)", "dark (brightness 0.12)"])
    assert result.by_model and result.text == model.texts[0]


@pytest.mark.parametrize("cues, text, problem", [
    (["no face found", "dark (brightness 0.2)"], "The broad smile in a dark room shows sadness.", "no face was found"),
    (["one face, expression sad (0.7)", "dark (brightness 0.2)"], "With no face to read, the dark room is sad.",
     "a face was found"),
])
def test_a_reason_that_contradicts_the_face_cue_falls_back(cues, text, problem):
    _, result, _ = _run(text, cues=cues)
    assert not result.by_model and problem in result.problem


def test_a_phrase_copied_from_an_example_falls_back():
    # From the "fear" example; nothing in these cues mentions hands or a spider web.
    _, result, _ = _run("The frightened face with hands raised to it, in a dark setting beside a spider web.",
                        label="fear", cues=["one face, expression fear (0.6)", "dark (brightness 0.2)"])
    assert not result.by_model and "copied an example" in result.problem


def _video_cues(aus=(), expression="neutral", confidence=0.0, tone="", transcript="", face=True) -> list[str]:
    """The phrases the app builds for a clip (``video_emotion._cue_phrases``) from these measurements."""
    from types import SimpleNamespace

    from emo_core.labels import FER_LABELS
    from emo_core.tasks.video_emotion import _cue_phrases
    from emo_core.video.au_rules import describe

    rest = (1.0 - confidence) / (len(FER_LABELS) - 1)
    visual = SimpleNamespace(has_face=face, peak_expression={name: confidence if name == expression else rest
                                                              for name in FER_LABELS})
    return _cue_phrases(visual, SimpleNamespace(tone=tone, transcript=transcript),
                        describe(list(aus)) if face else "no face visible")


def _tone(pitch_hz, variability_st, energy_dbfs, words_per_second, pauses) -> str:
    from emo_core.audio.prosody import Prosody
    from emo_core.audio.tone import describe_tone

    return describe_tone(Prosody(speech_seconds=5.0, voiced_fraction=0.7, pitch_median_hz=pitch_hz,
                                 pitch_variability_st=variability_st, pitch_range_st=2 * variability_st,
                                 energy_dbfs=energy_dbfs, energy_variability_db=4.0,
                                 speaking_rate_wps=words_per_second, pause_count=pauses,
                                 pause_seconds=0.4 * pauses))


def test_the_examples_shared_phrasing_is_not_a_copy_but_their_details_are():
    cues = _video_cues(["AU04", "AU07"], "angry", 0.71, _tone(160, 4.0, -14, 3.6, 1), "Three times I asked you.")
    assert cues[0] == "face at the peak frame: frowns, furrowed brows, eyelids tightened"  # one phrase, no "; "
    # "show that the speaker is" ends the happy example: "show" and "speaker" are in several examples'
    # reasons and in none of their cues, so they are the examples' phrasing
    ok = "The tightened eyelids and the loud voice asking three times show that the speaker is angry."
    _, result, _ = _run(ok, label="angry", cues=cues, modality="video")
    assert result.by_model and result.text == ok and result.rejections == ()
    # the neutral example's details (a plain remark about a meeting time) were not measured here
    _, result, _ = _run("The frowns and a plain remark about a meeting time show anger.",
                        label="angry", cues=cues, modality="video")
    assert not result.by_model and "copied an example" in result.problem and "remark" in result.problem


ANGRY_CLIP = _video_cues(["AU04", "AU07", "AU23"], "angry", 0.77, _tone(215, 4.1, -14, 3.6, 1),
                         "I have asked you three times already.")
SILENT_SURPRISE = _video_cues(["AU01", "AU02", "AU05", "AU26"], "surprise", 0.88, "silent audio track (no speech)")
SAD_CLIP = _video_cues(["AU01", "AU15"], "sad", 0.69, _tone(95, 1.2, -38, 1.7, 5), "It still hurts.")


@pytest.mark.parametrize("label, cues, text, problem", [
    ("angry", ANGRY_CLIP, "The face stays still while the loud voice complains.", "called the face still"),
    ("angry", ANGRY_CLIP, "A calm face and a loud voice show anger.", "called the face still"),
    ("angry", ANGRY_CLIP, "The frowns and the loud voice show anger, although no words are spoken.",
     "nothing was said"),
    ("angry", ANGRY_CLIP, "The frowns show anger, but no sound can be heard.", "nothing was heard"),
    ("surprise", SILENT_SURPRISE, "Widened eyes and a loud, fast voice show surprise.", "described a voice"),
    ("angry", ANGRY_CLIP, "The frowns are there, but the speaker shows no particular emotion.", "no emotion"),
    ("sad", SAD_CLIP, "The lowered lip corners and the quiet voice do not look sad at all, the speaker is not sad.",
     "denied the label"),
    ("angry", ANGRY_CLIP, "A broad smile and a loud voice show anger.", "not measured (a smile)"),
    ("angry", ANGRY_CLIP, "Raised eyebrows and a loud voice show anger.", "not measured (raised brows)"),
    ("sad", SAD_CLIP, "The raised inner brows and the fast, lively voice make the speaker sound sad.",
     "called the voice fast, but it was measured slow"),
    ("surprise", SILENT_SURPRISE, "Widened eyes and a closed mouth show surprise.", "mouth was closed"),
    ("sad", SAD_CLIP, "The lowered lip corners and the high- pitched voice show sadness.",
     "called the voice high-pitched, but it was measured low-pitched"),
    ("surprise", SILENT_SURPRISE, "The eyes are wide and the face is not seen, which is surprise.",
     "said there is no face"),
])
def test_a_reason_that_contradicts_a_video_cue_falls_back(label, cues, text, problem):
    _, result, _ = _run(text, label=label, cues=cues, modality="video")
    assert not result.by_model and problem in result.problem, result.problem


@pytest.mark.parametrize("label, cues, text", [
    # the same claims, where the cues do report them
    ("neutral", _video_cues([], "neutral", 0.8, _tone(128, 1.6, -24, 2.6, 2), "We leave at eight."),
     "A relaxed face and an even voice stating a plan show no particular emotion."),
    ("happy", _video_cues(["AU06", "AU12"], "happy", 0.9, "no audio track"),
     "Raised cheeks and a broad smile show the speaker is happy, and no sound is heard."),
    ("surprise", SILENT_SURPRISE, "Raised eyebrows, widened eyes and an open mouth show surprise."),
    ("surprise", SILENT_SURPRISE, "Widened eyes and a dropped jaw show surprise, even though no speech was heard."),
    ("sad", SAD_CLIP, "The raised inner brows, the lowered lip corners and the slow, quiet voice saying it still "
     "hurts show sadness."),
    ("angry", ANGRY_CLIP, "The furrowed brows, tightened eyelids and pressed lips with a loud, fast voice show anger."),
])
def test_a_reason_that_the_cues_support_is_kept(label, cues, text):
    _, result, _ = _run(text, label=label, cues=cues, modality="video")
    assert result.by_model and result.text == text, result.problem


def test_every_facial_movement_the_cues_name_is_one_a_reason_may_name():
    # A reason that repeats the face cue in its own words is never "a movement that was not measured".
    import re

    from emo_core.video.au_rules import AU_MENTIONS, AU_TEXT

    named = {code for _, codes, _, _ in AU_MENTIONS for code in codes}
    assert named == set(AU_TEXT)
    for name, codes, pattern, bans in AU_MENTIONS:
        assert bans and all(re.search(pattern, ban) for ban in bans), name  # a ban is a mention the check catches
        for code in codes - {"AU45"}:  # "blinks" is no claim about a still state of the eyes
            assert re.search(pattern, AU_TEXT[code]), (name, AU_TEXT[code])


@pytest.mark.parametrize("label, cues", [
    ("angry", ANGRY_CLIP), ("surprise", SILENT_SURPRISE), ("sad", SAD_CLIP),
    ("neutral", ["no face visible", "voice: no audio track"]),
    ("happy", _video_cues(tone=_tone(235, 4.0, -16, 3.3, 1), transcript="We won!", face=False)),
    ("amusement", HAPPY_FACE_CUES),  # an image: no clip claims, the label ones still
])
def test_every_banned_phrase_but_the_examples_runs_is_a_text_the_guards_reject(label, cues):
    # The bans only spare the model a text that would be thrown away; they never ban what the guards
    # accept. (An example's 3-word runs are banned on purpose more widely than the 5-word copy check.)
    from emo_core.llm.reason_writer import _copy_runs, _Guard

    modality = "image" if cues is HAPPY_FACE_CUES else "video"
    guard = _Guard(label, cues, modality)
    carrier = "Here {} comes in."
    assert guard.check(carrier.format("it")) == ""  # the sentence around the phrase is no problem itself
    runs = {f" {run[0].upper()}{run[1:]}" for run in _copy_runs(modality, guard._unsupported)}
    runs |= {f" {run}" for run in _copy_runs(modality, guard._unsupported)}
    phrases = [phrase for phrase in guard.avoid_phrases() if phrase not in runs]
    assert len(phrases) > 100
    passed = [phrase for phrase in phrases if not guard.check(carrier.format(phrase.strip()))]
    assert passed == []


def test_the_video_examples_pass_the_guards_they_teach():
    # An example that contradicts its own cues would teach the model what the guards then reject.
    from emo_core.llm.reason_writer import _fewshot_template, _Guard

    blocks = [block.splitlines() for block in _fewshot_template("video").split("\n\n")[1:-1]]
    assert len(blocks) >= 6
    for cue_line, emotion_line, reason_line in blocks:
        cues = cue_line.removeprefix("Cues: ").split("; ")
        guard = _Guard(emotion_line.removeprefix("Emotion: "), cues, "video")
        reason = reason_line.removeprefix("Reason: ")
        guard.example_ngrams = frozenset()  # an example is not a copy of itself
        assert guard.check(reason) == "", (reason, guard.check(reason))


def test_the_decoder_is_told_what_the_guards_would_reject():
    model = ScriptedLM("The frowns and the loud voice asking three times show that the speaker is angry.")
    result = write_reason("angry", ANGRY_CLIP, modality="video", fallback=FALLBACK, lm=model, stream=False)
    assert result.by_model
    avoid = set(model.calls[0]["avoid"])
    for phrase in (" sad", " Joyful", " neutral",  # other emotions; "neutral" is not in these cues
                   " not angry", " No anger",  # the label denied
                   " no particular emotion",  # no emotion, for an emotion
                   " no sound", " no words",  # a voice and words were measured
                   " smile", " raised eyebrows",  # movements that were not
                   " slow", " quiet",  # the other levels of a measured voice
                   " a plain remark"):  # a run of an example's words with a detail no cue has
        assert phrase in avoid, phrase
    for phrase in (" angry", " anger", " furious", " loud", " fast", " frowns", " furrowed"):
        assert phrase not in avoid, phrase  # the label, its synonyms, and what was measured
    # with no face and no speech: a face may be mentioned ("no face"), a voice may not be described
    model = ScriptedLM("Nothing can be seen or heard, so the clip reads as neutral.")
    write_reason("neutral", ["no face visible", "voice: no audio track"], modality="video", fallback=FALLBACK,
                 lm=model, stream=False)
    avoid = set(model.calls[0]["avoid"])
    assert " no face" not in avoid and " no sound" not in avoid and " loud voice" in avoid
    assert " emotionless" not in avoid and " not neutral" in avoid  # "no emotion" is what neutral means
    # unconstrained: the model writes freely and only the guards act
    model = ScriptedLM("The frowns and the loud voice show anger.")
    write_reason("angry", ANGRY_CLIP, modality="video", fallback=FALLBACK, lm=model, stream=False, constrained=False)
    assert "avoid" not in model.calls[0]


@pytest.mark.parametrize("text, echoed", [
    ('The loud, fast voice; words: "Three times I asked you."', True),
    ("The frowns and the angry (0.71) expression show anger.", True),
    ('The loud voice saying "Three times I asked you." sounds angry.', False),
])
def test_a_reason_that_repeats_the_cue_list_falls_back(text, echoed):
    cues = _video_cues(["AU04"], "angry", 0.71, _tone(160, 4.0, -14, 3.6, 1), "Three times I asked you.")
    _, result, _ = _run(text, label="angry", cues=cues, modality="video")
    assert result.by_model is not echoed
    assert ("repeated the cue list" in result.problem) is echoed


NO_SPEECH = "no speech detected (non-speech sound at -28 dBFS)"
# (label, cues built by the app's phrase builder): every video label, the five cue mixes the app meets
# (face, voice and words; no face; no audio track; a silent or non-speech track; a face read as another
# expression) and a transcript long enough to be cut. Other clips than benchmarks/bench_reasons.py's.
APP_VIDEO_CASES = [
    ("neutral", _video_cues([], "neutral", 0.70, _tone(125, 1.7, -25, 2.5, 2),
                            "I will send you the report by Friday afternoon.")),
    ("angry", _video_cues(["AU04", "AU07"], "angry", 0.82, _tone(220, 4.4, -13, 3.7, 0),
                          "Don't you dare walk away while I'm talking to you!")),
    ("happy", _video_cues(tone=_tone(235, 4.0, -16, 3.3, 1), transcript="This is the best birthday present I have "
                          "ever had.", face=False)),
    ("sad", _video_cues(["AU01", "AU15", "AU17"], "sad", 0.74, "no audio track")),
    ("worried", _video_cues(["AU01", "AU04"], "fear", 0.41, _tone(200, 3.1, -27, 3.2, 5),
                            "I haven't heard from her since this morning and she always calls.")),
    ("surprise", _video_cues(["AU01", "AU02", "AU05", "AU26"], "surprise", 0.90, "silent audio track (no speech)")),
    ("fear", _video_cues(["AU01", "AU04", "AU05", "AU20"], "fear", 0.66, NO_SPEECH)),
    ("contempt", _video_cues(["AU10"], "disgust", 0.39, _tone(120, 1.9, -22, 2.3, 1),
                             "Nice try, but that is not even close to good enough.")),
    ("doubt", _video_cues(["AU04", "AU17"], "neutral", 0.50, _tone(145, 2.2, -24, 2.0, 4),
                          "Are you really sure about that? It doesn't sound right to me.")),
    ("disgust", _video_cues(["AU09", "AU10"], "disgust", 0.70, _tone(130, 2.8, -20, 2.9, 1),
                            "Ugh, there's something rotten in the fridge again.")),
    ("happy", _video_cues(["AU06", "AU12", "AU25"], "happy", 0.88, _tone(210, 3.9, -17, 3.4, 2),
                          "So we drove all the way up the coast, and when we finally got there the whole family "
                          "was waiting on the porch with a cake, my grandmother was crying, my little cousins "
                          "were screaming, and I honestly could not stop laughing for the rest of the night.")),
    ("angry", _video_cues(tone=_tone(190, 4.2, -15, 3.8, 1), transcript="Stop calling me about this, I already "
                          "told you no.", face=False)),
]
# Measured: the model wrote all 12 of these reasons, all on the first try (before the examples were
# written in the app's phrases and the decoder was told what the guards reject: 11 by the model, 6 on
# the first try, under weaker guards). The floors leave room for two more misses: a changed prompt cache
# can flip a near-tie between two tokens.
MODEL_SHARE_FLOOR = 10 / 12
FIRST_TRY_FLOOR = 10 / 12


def test_share_of_reasons_the_model_writes_on_the_apps_cue_phrases(worker_lm, capsys):
    from emo_core.labels import SYNONYM_GROUPS

    results = [write_reason(label, cues, modality="video", fallback=FALLBACK, lm=worker_lm, stream=False)
               for label, cues in APP_VIDEO_CASES]
    by_model = sum(r.by_model for r in results)
    first_try = sum(r.by_model and r.attempts == 1 for r in results)
    with capsys.disabled():
        print(f"\nreasons on the app's cue phrases: {by_model}/{len(results)} written by the model "
              f"({first_try} on the first try), {len(results) - by_model} template")
        for (label, _), result in zip(APP_VIDEO_CASES, results):
            print(f"  [{label}] {'model' if result.by_model else 'template'}, {result.attempts} attempt(s): "
                  f"{result.text if result.by_model else result.problem}")
    assert by_model / len(results) >= MODEL_SHARE_FLOOR
    assert first_try / len(results) >= FIRST_TRY_FLOOR
    for (label, cues), result in zip(APP_VIDEO_CASES, results):
        if not result.by_model:
            assert result.text == FALLBACK and result.problem and len(result.rejections) == result.attempts
            continue
        assert result.text.rstrip('"').endswith((".", "!", "?")) and len(result.text.split()) >= 5
        assert "words:" not in result.text and "voice:" not in result.text, result.text  # not the cue list again
        allowed = {word for group in SYNONYM_GROUPS for word in group
                   if group & {label, *" ".join(cues).replace("(", " ").split()}}
        assert not _other_labels_named(result.text, label, *allowed), result.text
        if cues[0] == "no face visible":
            assert not any(word in result.text.lower() for word in ("smil", "frown", "brow", "cheek")), result.text


@pytest.mark.parametrize("text, finish_reason, problem", [
    ("", "stop", "wrote nothing"),
    ("Dark.", "stop", "too little"),
    ("The dark and muted scene keeps going without ever reaching the end of its", "length", "ran out of tokens"),
])
def test_empty_or_unfinished_text_falls_back(text, finish_reason, problem):
    model = ScriptedLM(text, finish_reason=finish_reason)
    result = write_reason("sadness", ["dark (brightness 0.12)"], modality="image", fallback=FALLBACK, lm=model,
                          stream=False)
    assert not result.by_model and problem in result.problem and result.text == FALLBACK


def test_long_text_is_trimmed_to_whole_sentences():
    text = "One dark room. Two grey walls. Three empty chairs. Four more words here. And a half"
    _, result, _ = _run(text)
    assert result.by_model and result.text == "One dark room. Two grey walls. Three empty chairs."


def test_no_model_available_falls_back_with_the_reason():
    class Unavailable:
        stats = None

        def stream(self, prompt, **options):
            raise BackendError("llama-cpp-python is not installed")

    result = write_reason("sadness", ["dark"], modality="image", fallback=FALLBACK, lm=Unavailable(), stream=False)
    assert not result.by_model and "not installed" in result.problem


def test_prompt_ends_with_the_cues_and_label_after_fixed_examples():
    prompt = build_prompt("awe", ["bright\n(brightness 0.8).", "objects: mountain"], "image")
    assert prompt.endswith("\n\nCues: bright (brightness 0.8); objects: mountain\nEmotion: awe\nReason:")
    other = build_prompt("fear", ["dark"], "image")
    shared = prompt[: prompt.rindex("Cues:")]
    assert other.startswith(shared) and shared.count("Reason:") >= 4  # the examples: a prefix the cache can reuse
    with pytest.raises(ValueError, match="modality"):
        write_reason("awe", ["bright"], modality="audio", fallback=FALLBACK)
