"""``SmallLM``: the offline small language model (a GGUF file) on llama-cpp-python, streamed, with timings.

llama.cpp is the runtime because it meets the reason-text budget on two CPU cores: the 270M Q4_K_M
GGUF loads in well under 2 s and decodes at tens of tokens per second, where transformers first
dequantises it to fp32 (tens of seconds to load, a few GB of memory; ``benchmarks/bench_small_lm.py``
tries that path). The real deployment models keep the transformers path (``emo_core.backends``); this
class is only for the embedded offline default.

    lm = get_small_lm()                       # one shared instance per process and configuration
    for piece in lm.stream("Cues: ...", max_tokens=60, stop=["\\n"]):
        print(piece, end="", flush=True)
    print(lm.stats)                           # tokens, seconds, tokens/s, load seconds

Loading is lazy (first ``stream``/``complete``/``load``), happens once, and is guarded by a lock.
A llama.cpp context is not safe for concurrent use, so generations on one instance are serialised:
a ``stream`` holds the instance until it is exhausted or closed.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from ..errors import BackendError
from .gguf_files import GEMMA3_270M_Q4KM
from .gguf_variant import DEFAULT_EMBEDDING, EMBEDDING_TYPES, ensure_reason_model

if TYPE_CHECKING:
    from ..settings import Settings
    from .lm_worker import WorkerLM

PHRASE_TOKEN_CACHE = 20_000  # ``avoid`` phrases kept tokenised; beyond that the cache starts again
DEFAULT_CONTEXT_TOKENS = 2048  # few-shot prompt (~600 tokens) + cues + reason, with room to spare


@dataclass(frozen=True)
class GenerationStats:
    """Figures of one generation. ``tokens_per_second`` counts decoding only (after the first token);
    ``first_token_seconds`` is the prompt evaluation (less what was cached) plus the first token."""

    prompt_tokens: int
    completion_tokens: int
    seconds: float  # from the call to the last token
    first_token_seconds: float
    tokens_per_second: float
    load_seconds: float  # how long loading the model took (once per instance, not during this run)
    finish_reason: str  # "stop" (stop string or end of text), "length" (max_tokens) or "closed" (caller stopped)

    @property
    def overall_tokens_per_second(self) -> float:
        """Completion tokens over the whole call, prompt evaluation included."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


class SmallLM:
    """A GGUF causal language model on llama.cpp, loaded on first use.

    ``model_path``: a GGUF file; None means the bundled Gemma 3 270M, assembled into ``cache_dir``
    (default: the user cache) on first use if the install step did not do it already, with its token
    embedding in ``embedding`` ("q4_0": the faster derived file, see ``gguf_variant``; "q8_0": as shipped).
    ``n_threads`` (decoding) and ``n_threads_batch`` (reading the prompt): 0 means every core this
    process may use. llama.cpp's threads wait for each other, so on cores busy with other work a second
    thread can cost far more than it gains (on a shared 2-core machine under heavy load, 1 thread
    decoded ~30 tokens/s where 2 managed 2-8); the app writes the reason after the analysis is done,
    when the cores are free, and there 2 threads were ahead (~52-56 vs ~33 tokens/s). ``n_batch`` 64
    decoded ~5% faster than 512 here (llama-cpp-python copies a logits row per token into an
    ``n_batch``-row buffer over Gemma's 262k-word vocabulary).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        cache_dir: str | Path | None = None,
        n_ctx: int = DEFAULT_CONTEXT_TOKENS,
        n_threads: int = 0,
        n_threads_batch: int = 0,
        n_batch: int = 64,
        embedding: str = DEFAULT_EMBEDDING,
        assemble: bool = True,
    ) -> None:
        if n_ctx < 64:
            raise ValueError(f"n_ctx must be at least 64 tokens, got {n_ctx}")
        if n_threads < 0 or n_threads_batch < 0 or n_batch < 1:
            raise ValueError(
                f"thread counts must be >= 0 and n_batch >= 1, got {n_threads}, {n_threads_batch}, {n_batch}"
            )
        if embedding not in EMBEDDING_TYPES:
            raise ValueError(f"unknown embedding type {embedding!r}: choose {', '.join(EMBEDDING_TYPES)}")
        self.model_path = Path(model_path) if model_path is not None else None
        self.cache_dir = cache_dir
        self.n_ctx = n_ctx
        self.n_threads = n_threads or available_cores()
        self.n_threads_batch = n_threads_batch or available_cores()
        self.n_batch = n_batch
        self.embedding = embedding
        self.assemble = assemble
        self._llama = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._load_seconds = 0.0
        self._stats: GenerationStats | None = None
        self._phrase_tokens: dict[str, tuple[int, ...]] = {}  # ``avoid`` phrases as this model's tokens

    def __repr__(self) -> str:
        state = f"loaded in {self._load_seconds:.2f} s" if self.loaded else "not loaded"
        return (f"SmallLM({self.model_path or GEMMA3_270M_Q4KM.filename}, n_ctx={self.n_ctx}, "
                f"threads={self.n_threads}/{self.n_threads_batch}, {state})")

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    @property
    def load_seconds(self) -> float:
        return self._load_seconds

    @property
    def stats(self) -> GenerationStats | None:
        """Figures of the last finished (or closed) generation; None before the first."""
        return self._stats

    def load(self) -> "SmallLM":
        """Load the model once; later calls return at once. Raises ``BackendError`` with what to do."""
        if self._llama is not None:
            return self
        with self._load_lock:
            if self._llama is None:  # another thread may have loaded it while we waited
                self._llama = self._open()
        return self

    def _open(self):
        if self.model_path is not None:
            if not self.model_path.is_file():
                raise BackendError(f"the language model file {self.model_path} does not exist")
            path = self.model_path
        else:
            path = ensure_reason_model(self.cache_dir, self.embedding, assemble=self.assemble)
        try:
            import llama_cpp
        except ImportError as exc:
            raise BackendError(
                "the offline language model needs llama-cpp-python (pip install llama-cpp-python==0.3.36; "
                "it builds llama.cpp from source, a few minutes)"
            ) from exc
        started = time.perf_counter()
        try:
            llama = _reason_llama_class()(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads_batch,
                n_batch=self.n_batch,
                verbose=False,  # llama.cpp logs every tensor otherwise
            )
        except (ValueError, RuntimeError) as exc:  # llama-cpp-python's "Failed to load model from file"
            raise BackendError(f"llama.cpp could not load {path}: {exc}") from exc
        self._load_seconds = time.perf_counter() - started
        return llama

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int = 96,
        temperature: float = 0.0,
        seed: int = 0,
        stop: Sequence[str] = (),
        top_k: int = 40,
        top_p: float = 0.95,
        repeat_penalty: float = 1.0,
        avoid: Sequence[str] = (),
        on_progress: Callable[[], None] | None = None,
    ) -> Iterator[str]:
        """Text pieces as they are generated; their concatenation is the completion. ``stop`` strings
        end the generation and are not included. ``temperature`` 0 is greedy; otherwise ``seed`` fixes
        the sampling. The model loads here (not at the first ``next``), so load errors surface at once.
        ``on_progress`` is called, in the generating thread, after each batch of the prompt is read and
        after each token; an exception it raises ends the generation (what was read stays cached).
        ``WorkerLM``'s child counts these steps for its heartbeat (steps that stand still: llama.cpp is
        stuck), and stops a cancelled generation there, in the middle of a long prompt too.
        ``avoid``: phrases the completion must not contain as the model's tokens spell them (" not sad"):
        once the completion ends with all of a phrase's tokens but the last, that last token cannot be
        drawn; a one-token phrase can never be drawn. Applied to the top-k candidates only, so it costs
        microseconds a token, and greedy or seeded choices among the remaining candidates are unchanged.
        It bans token sequences, not meanings: the same words spelled with other tokens, or in other
        words, still get through (the reason writer checks the text as well)."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must not be negative, got {temperature}")
        self.load()
        prompt_tokens = len(self._llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=False))
        if prompt_tokens + max_tokens > self.n_ctx:
            raise BackendError(
                f"the prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) exceeds the context "
                f"of {self.n_ctx} tokens"
            )
        options = dict(max_tokens=max_tokens, temperature=temperature, seed=seed, stop=list(stop),
                       top_k=top_k, top_p=top_p, repeat_penalty=repeat_penalty)
        bans = self._token_bans(avoid)
        return self._generate(prompt, prompt_tokens, options, on_progress, bans)

    def _token_bans(self, phrases: Sequence[str]) -> "TokenBans | None":
        if isinstance(phrases, str):
            raise TypeError("avoid must be a list of phrases, not one string")
        table: dict[tuple[int, ...], set[int]] = {}
        if len(self._phrase_tokens) > PHRASE_TOKEN_CACHE:
            self._phrase_tokens.clear()
        for phrase in phrases:
            tokens = self._phrase_tokens.get(phrase)
            if tokens is None:  # the reason writer sends ~800 phrases a call, mostly the same ones: 16 ms uncached
                tokens = self._phrase_tokens[phrase] = tuple(
                    self._llama.tokenize(phrase.encode("utf-8"), add_bos=False, special=False)) if phrase else ()
            if tokens:
                table.setdefault(tokens[:-1], set()).add(tokens[-1])
        return TokenBans(table) if table else None

    def _generate(self, prompt: str, prompt_tokens: int, options: dict,
                  on_progress: Callable[[], None] | None = None, bans: "TokenBans | None" = None) -> Iterator[str]:
        from llama_cpp import StoppingCriteriaList

        sampled_at: dict[int, float] = {}  # context length when a token was sampled -> time

        def note_token(input_ids, _logits) -> bool:
            # llama-cpp-python calls this once per sampled token (an exact count, unlike the streamed
            # pieces: a piece can hold several tokens, or none while a stop string may be forming), and
            # once more after the loop with a context length it has already shown: keyed by length, that
            # last call does not count twice.
            sampled_at.setdefault(len(input_ids), time.perf_counter())
            return False

        with self._generate_lock:
            started = time.perf_counter()
            finish_reason = "closed"
            self._llama.after_batch = on_progress
            self._llama.token_bans = bans
            if bans is not None:
                bans.prompt_tokens = prompt_tokens
            chunks = self._llama.create_completion(
                prompt, stream=True, stopping_criteria=StoppingCriteriaList([note_token]), **options
            )
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    if choice["text"]:
                        yield choice["text"]
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
            finally:
                chunks.close()  # a caller that stops early must not leave llama.cpp mid-generation
                self._llama.after_batch = None
                self._llama.token_bans = None
                times = sorted(sampled_at.values())
                ended = times[-1] if times else time.perf_counter()
                first = times[0] - started if times else ended - started
                decode_seconds = ended - times[0] if len(times) > 1 else 0.0
                self._stats = GenerationStats(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=len(sampled_at),
                    seconds=round(ended - started, 4),
                    first_token_seconds=round(first, 4),
                    tokens_per_second=round((len(sampled_at) - 1) / decode_seconds, 1) if decode_seconds else 0.0,
                    load_seconds=round(self._load_seconds, 4),
                    finish_reason=finish_reason,
                )

    def complete(self, prompt: str, **options) -> str:
        """The whole completion as one string; takes the same keyword options as ``stream``."""
        return "".join(self.stream(prompt, **options))

    def close(self) -> None:
        """Free the model (the next call loads it again)."""
        with self._load_lock, self._generate_lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None


class TokenBans:
    """``SmallLM.stream``'s ``avoid`` as tokens: what the completion so far ends with -> tokens not to draw next."""

    def __init__(self, table: dict[tuple[int, ...], set[int]]):
        self.table = table
        self.longest = max(len(prefix) for prefix in table)
        self.prompt_tokens = 0  # where the completion starts in llama.cpp's token list

    def banned_after(self, tokens: Sequence[int]) -> set[int]:
        completion = list(tokens[self.prompt_tokens:][-self.longest:]) if self.longest else []
        banned: set[int] = set()
        for length in range(min(self.longest, len(completion)) + 1):
            banned |= self.table.get(tuple(completion[len(completion) - length:]), set())
        return banned


_llama_subclass = None


def _reason_llama_class():
    """``llama_cpp.Llama`` with a sampler chain that cuts to the top-k candidates *before* the repetition
    penalty. llama-cpp-python applies the penalty first, to all 262,144 candidates of Gemma's vocabulary
    (a hash lookup each, every token); after top-k it touches 40. A repeated token outside the top k
    could not be drawn either way, so only the order of work changes: the same reasons came out on the
    five benchmark prompts, and a 60-token reason ran at 64-66 instead of 58-62 tokens/s (prompt
    included; two runs each on this machine's two cores). The chain: top-k, penalties, then greedy
    (temperature 0) or typical, top-p, min-p, temperature and a seeded draw, as llama-cpp-python does.
    No logits processors or grammars (the reason writer uses neither); ``SmallLM.stream``'s ``avoid``
    runs right after top-k, on the 40 candidates. Its ``eval`` also calls ``after_batch`` between the
    prompt's batches (see ``SmallLM.stream``'s ``on_progress``)."""
    global _llama_subclass
    if _llama_subclass is None:
        import llama_cpp
        from llama_cpp import _internals

        class ReasonLlama(llama_cpp.Llama):
            after_batch: Callable[[], None] | None = None  # ``SmallLM.stream``'s ``on_progress``
            token_bans: TokenBans | None = None  # ``SmallLM.stream``'s ``avoid``

            def eval(self, tokens):
                # llama-cpp-python reads a prompt in batches of n_batch tokens inside one ``eval`` call;
                # calling it batch by batch does the same work in the same batches, with a call-back
                # between them (and after each generated token, which is an ``eval`` of one).
                for start in range(0, len(tokens), self.n_batch) or [0]:  # an empty eval still trims the cache
                    super().eval(tokens[start : start + self.n_batch])
                    if self.after_batch is not None:
                        self.after_batch()

            def _init_sampler(self, top_k=40, top_p=0.95, min_p=0.05, typical_p=1.0, temp=0.80, repeat_penalty=1.0,
                              frequency_penalty=0.0, presence_penalty=0.0, logits_processor=None, grammar=None,
                              **_unused_by_this_chain):
                if logits_processor is not None or grammar is not None:
                    return super()._init_sampler(top_k=top_k, top_p=top_p, min_p=min_p, typical_p=typical_p,
                                                 temp=temp, repeat_penalty=repeat_penalty,
                                                 frequency_penalty=frequency_penalty,
                                                 presence_penalty=presence_penalty,
                                                 logits_processor=logits_processor, grammar=grammar)
                chain = _internals.LlamaSampler()
                chain.add_top_k(top_k if top_k > 0 else self._n_vocab)
                if self.token_bans is not None:
                    chain.add_custom(_ban_sampler(self, self.token_bans))
                chain.add_penalties(n_vocab=self._n_vocab, penalty_last_n=self.last_n_tokens_size,
                                    penalty_repeat=repeat_penalty, penalty_freq=frequency_penalty,
                                    penalty_present=presence_penalty)
                if temp == 0.0:
                    chain.add_greedy()
                else:
                    chain.add_typical(typical_p, 1)
                    chain.add_top_p(top_p, 1)
                    chain.add_min_p(min_p, 1)
                    chain.add_temp(temp)
                    chain.add_dist(self._seed)
                return chain

        _llama_subclass = ReasonLlama
    return _llama_subclass


_shared: dict[tuple, "SmallLM | WorkerLM"] = {}


def _close_shared() -> None:
    # llama.cpp's own finaliser fails when it runs after its library is unloaded at interpreter exit
    # ("'NoneType' object is not callable"); closing first keeps shutdown quiet.
    for lm in list(_shared.values()):
        lm.close()


atexit.register(_close_shared)
_shared_lock = threading.Lock()


def get_small_lm(settings: "Settings | None" = None, *, model_path: str | Path | None = None,
                 cache_dir: str | Path | None = None, n_ctx: int = DEFAULT_CONTEXT_TOKENS) -> "SmallLM | WorkerLM":
    """The process-wide reason model for these settings (created, not loaded, on the first call):
    a ``WorkerLM`` (own process, with the ``settings.llm_*_deadline`` deadlines) or a ``SmallLM`` (this
    process) as ``settings.llm_process`` says, with ``settings.llm_threads`` threads and the
    ``settings.llm_embedding`` file."""
    from ..settings import Settings

    settings = settings or Settings.from_env()
    deadlines = dict(start_deadline=settings.llm_start_deadline, restart_deadline=settings.llm_restart_deadline,
                     first_token_deadline=settings.llm_first_token_deadline,
                     token_deadline=settings.llm_token_deadline)
    key = (settings.llm_process, settings.llm_embedding, settings.llm_threads,
           str(model_path) if model_path else None, str(cache_dir) if cache_dir else None, n_ctx,
           tuple(deadlines.values()) if settings.llm_process == "worker" else None)
    with _shared_lock:
        if key not in _shared:
            options = dict(cache_dir=cache_dir, n_ctx=n_ctx, n_threads=settings.llm_threads,
                           n_threads_batch=settings.llm_threads, embedding=settings.llm_embedding)
            if settings.llm_process == "worker":
                from .lm_worker import WorkerLM

                _shared[key] = WorkerLM(model_path, **deadlines, **options)
            else:
                _shared[key] = SmallLM(model_path, **options)
        return _shared[key]


def _ban_sampler(llama, bans: TokenBans):
    """A llama.cpp sampler step that gives the banned candidates no chance (llama-cpp-python keeps the
    step alive as long as its chain)."""

    def apply(candidates) -> None:
        banned = bans.banned_after(llama._input_ids)
        if banned:
            array = candidates.contents
            for index in range(array.size):
                if array.data[index].id in banned:
                    array.data[index].logit = -float("inf")

    return apply
