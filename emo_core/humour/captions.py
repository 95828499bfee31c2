"""Humorous captions for an image (EmoVIT Sec. 4.6), K per request, streamed, each with its seed.

``humour_captions_stream`` loads the image safely, measures its cues with the image tab's perception
models and reads the words written in it (``ocr``), then asks for captions one seed at a time (seed,
seed + 1, ...) at the requested temperature:

- ``hf`` / ``openai``: the model sees the picture and ``prompts/humour.txt`` (the humour instruction
  with the measured cues and the words read in the image);
- ``offline``: Gemma 3 270M, a *base* model, continues ``prompts/humour_fewshot.txt`` (examples of
  cues + words -> caption, then this image's cues and words). It never sees the picture: its captions
  rest on what was measured and read, and the result says so (``reads_picture``).

Each caption is checked (``checks``): empty or cut-off text, the cue list or the image's words read
back, a repetition loop, an example copied, or a near-duplicate of an earlier caption of the request
is dropped and the next seed is asked, at most ``ATTEMPTS_PER_CAPTION`` x K seeds in all. When fewer
than K captions pass, ``shortfall`` says how many and why. A caption shows its seed and temperature:
asking for one caption with that seed and temperature writes it again (same model, same image).

    for result in humour_captions_stream("photo.jpg", n=3, temperature=0.8, seed=0):
        show(result.captions, result.draft)        # accepted captions, and the one being written
    result.shortfall, result.rejected, result.timings["first_caption"]
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator

from PIL import Image

from .. import prompts
from ..backends import Backend, get_backend, user_message
from ..cues.perception import get_perceiver
from ..errors import BackendError, CapabilityError, InvalidInputError
from ..image_io import ImageSource, load_image
from ..llm.text_checks import SENTENCE_END, repetition, whole_words
from ..settings import Settings
from ..timing import Laps
from .checks import MAX_SENTENCES, CaptionCheck, finish_caption, near_duplicate
from .cues import cue_line, cue_phrases, words_line
from .ocr import OCR_MODEL_NAME, read_text

MAX_CAPTIONS = 5
MAX_TEMPERATURE = 2.0
MAX_SEED = 2**31 - 1 - 3 * MAX_CAPTIONS  # every seed a request may use fits llama.cpp's and torch's
ATTEMPTS_PER_CAPTION = 3  # seeds asked per caption wanted, at most, before the request says it fell short
DEFAULT_TEMPERATURE = 0.8
CAPTION_TOKENS = 60  # a caption is one or two sentences
OFFLINE_CAPTION_TOKENS = 48
OFFLINE_MODEL_NAME = "Gemma 3 270M base (llama.cpp)"
# The offline caption is one line; a base model that goes on writes the next example, which starts with these.
OFFLINE_STOP = ("\n", "Cues:", "Words in the image:", "Caption:")
OFFLINE_SAMPLING = dict(top_k=40, top_p=0.95, repeat_penalty=1.1)
RESET_SUFFIX = " #"  # follows the examples' last "Cues:"; no cue line starts with it


@dataclass
class Caption:
    text: str
    seed: int
    temperature: float


@dataclass
class RejectedCaption:
    seed: int
    text: str  # what the model wrote (may be empty)
    problem: str


@dataclass
class HumourResult:
    captions: list[Caption]  # accepted, in the order they were written
    requested: int
    temperature: float
    seed: int  # the request's first seed; caption i was written with one of seed, seed + 1, ...
    backend: str  # "offline", "hf" or "openai"
    model: str  # the model that wrote the captions, as users are shown it
    prompt_version: str  # the prompt file and a hash of its text
    reads_picture: bool  # False: the model wrote from the measured cues and the words read, not the picture
    cues: list[str]  # the cue phrases the prompt gave
    words: list[str]  # lines of text read in the image (OCR)
    word_scores: list[float]
    attributes: dict  # EmoVIT's attribute list as measured (the image tab's cues)
    draft: Caption | None = None  # the caption being written (not yet checked); None when none is
    rejected: list[RejectedCaption] = field(default_factory=list)
    shortfall: str = ""  # why fewer than ``requested`` captions were written ("" when all were)
    failure: str = ""  # the model failed (missing, crashed, a server error): the request broke off
    notes: list[str] = field(default_factory=list)
    name: str = ""
    image_size: tuple[int, int] = (0, 0)
    ocr_model: str = OCR_MODEL_NAME
    timings: dict[str, float] = field(default_factory=dict)
    complete: bool = False
    image: Image.Image | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-ready fields (everything but the image)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "image"}


def _plain(value):
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def prompt_version(name: str) -> str:
    """``name`` and the first 8 hex digits of its text's SHA-256: changes whenever the prompt does."""
    return f"{name}@{hashlib.sha256(prompts.template(name).encode('utf-8')).hexdigest()[:8]}"


def humour_captions(image: ImageSource, n: int = 3, temperature: float = DEFAULT_TEMPERATURE, seed: int = 0,
                    backend: Backend | str | None = None, settings: Settings | None = None) -> HumourResult:
    """``humour_captions_stream`` run to its end: the final result."""
    result = None
    for result in humour_captions_stream(image, n, temperature, seed, backend, settings):
        pass
    return result


def humour_captions_stream(image: ImageSource, n: int = 3, temperature: float = DEFAULT_TEMPERATURE, seed: int = 0,
                           backend: Backend | str | None = None,
                           settings: Settings | None = None) -> Iterator[HumourResult]:
    """Yields the result once the cues and words are known, then as each caption is written (the same
    object, updated); the last item is final (``complete``). Raises ``EmoError`` subclasses on bad input."""
    n, temperature, seed = checked_request(n, temperature, seed)
    settings = settings or Settings.from_env()
    backend = backend if isinstance(backend, Backend) else get_backend(backend, settings)
    offline = backend.judges_from_cues
    if not offline and not backend.supports("generate"):
        raise CapabilityError(f"the {backend.name} backend cannot write text")
    timings: dict[str, float] = {}
    lap = Laps(timings)
    loaded = load_image(image, max_pixels=settings.max_image_pixels, max_side=settings.analysis_max_side,
                        max_bytes=int(settings.max_upload_mb * 1e6))
    lap("load")
    with tempfile.TemporaryDirectory(prefix="emolens-humour-") as workdir:
        path = Path(workdir) / "image.jpg"  # backends take media as paths: the upright, downscaled image
        loaded.image.save(path, quality=95)
        perception = get_perceiver(settings.min_face_score, settings.max_faces).perceive_file(path)
        lap("perception")
        text = read_text(loaded.image)
        lap("ocr")
        cues = cue_phrases(perception)
        result = HumourResult(
            captions=[], requested=n, temperature=temperature, seed=seed, backend=backend.name,
            model=OFFLINE_MODEL_NAME if offline else backend.model_label,
            prompt_version=prompt_version("humour_fewshot" if offline else "humour"), reads_picture=not offline,
            cues=cues, words=list(text.lines), word_scores=list(text.scores), attributes=perception.attributes(),
            notes=list(loaded.notes), name=loaded.name, image_size=loaded.image.size, timings=timings,
            image=loaded.image,
        )
        yield result
        if offline:
            writer = _OfflineWriter(cues, text.lines, settings)
        else:
            writer = _BackendWriter(backend, cues, text.lines, path)
        yield from _write(result, writer, lap)
    timings["total"] = lap.total()
    result.complete = True
    yield result


def checked_request(n, temperature, seed) -> tuple[int, float, int]:
    """(n, temperature, seed) as numbers, or ``InvalidInputError`` saying which is out of range."""
    try:
        n, temperature, seed = int(n), float(temperature), int(seed)
    except (TypeError, ValueError):
        raise InvalidInputError("the number of captions and the seed must be whole numbers, the temperature a "
                                "number") from None
    if not 1 <= n <= MAX_CAPTIONS:
        raise InvalidInputError(f"ask for 1 to {MAX_CAPTIONS} captions, not {n}")
    if not 0.0 <= temperature <= MAX_TEMPERATURE:  # also refuses nan
        raise InvalidInputError(f"the temperature must be between 0 and {MAX_TEMPERATURE:g}, not {temperature}")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"the seed must be between 0 and {MAX_SEED}, not {seed}")
    return n, temperature, seed


class _OfflineWriter:
    """The small base model continues the few-shot examples with this image's cues and words."""

    def __init__(self, cues: list[str], words: list[str], settings: Settings):
        from ..llm.small_lm import get_small_lm

        self.lm = get_small_lm(settings)
        self.prompt = offline_prompt(cues, words)
        self.check = CaptionCheck(cues, words, example_captions())

    def pieces(self, temperature: float, seed: int) -> Iterator[str]:
        # A seed reproduces its caption only if the model reads the prompt the same way every time:
        # llama.cpp reuses the cached beginning the prompt shares with the previous one and reads the
        # rest in batches, and logits computed in other batches differ in their last digits (the same
        # seed then wrote another caption after another image). So the cache is first cut back to the
        # fixed examples (a one-token request that shares exactly them), and every caption reads its
        # cue and word lines from the same position, in the same batches.
        for _ in self.lm.stream(_examples_prefix() + RESET_SUFFIX, max_tokens=1, temperature=0.0):
            pass
        return self.lm.stream(self.prompt, max_tokens=OFFLINE_CAPTION_TOKENS, temperature=temperature, seed=seed,
                              stop=list(OFFLINE_STOP), **OFFLINE_SAMPLING)

    def finish_reason(self) -> str:
        stats = self.lm.stats
        return stats.finish_reason if stats else "stop"


class _BackendWriter:
    """A model that reads instructions (hf, openai) gets the humour instruction, with the picture when it
    takes images."""

    def __init__(self, backend: Backend, cues: list[str], words: list[str], image_path: Path):
        self.backend = backend
        text = prompts.render("humour", cues=cue_line(cues), words=words_line(words))
        self.messages = user_message(text, image=str(image_path) if backend.supports("image") else "")
        self.check = CaptionCheck(cues, words)

    def pieces(self, temperature: float, seed: int) -> Iterator[str]:
        return self.backend.generate_stream(self.messages, max_new_tokens=CAPTION_TOKENS, temperature=temperature,
                                            seed=seed)

    def finish_reason(self) -> str:
        return "stop"  # backends do not say whether the token limit cut the text; the sentence trim decides


def offline_prompt(cues: list[str], words: list[str]) -> str:
    """The few-shot prompt for the base model: the examples (fixed, so llama.cpp's prompt cache keeps
    them), then this image's cues and words, ending right after "Caption:"."""
    return prompts.render("humour_fewshot", cues=cue_line(cues), words=words_line(words))


def _examples_prefix() -> str:
    """The few-shot prompt up to the request's own cue line: the part every offline request shares."""
    template = prompts.template("humour_fewshot")
    return template[: template.rindex("{cues}")].rstrip()


def example_captions() -> list[str]:
    """The captions of the few-shot examples (a caption that copies one is dropped)."""
    return [line[len("Caption:"):].strip() for line in prompts.template("humour_fewshot").splitlines()
            if line.startswith("Caption:") and line[len("Caption:"):].strip()]


def _write(result: HumourResult, writer, lap: Laps) -> Iterator[HumourResult]:
    """Ask seed after seed until ``result.requested`` captions pass or the attempts run out."""
    attempts = ATTEMPTS_PER_CAPTION * result.requested
    stopped = ""
    for attempt in range(attempts):
        if len(result.captions) == result.requested:
            break
        seed = result.seed + attempt
        raw, problem, failed = "", "", False
        result.draft = Caption("", seed, result.temperature)
        try:
            pieces = writer.pieces(result.temperature, seed)
            try:
                for piece in pieces:
                    raw += piece
                    shown = whole_words(raw.lstrip().split("\n", 1)[0]) if raw.strip() else ""
                    if shown and shown != result.draft.text:
                        result.draft.text = shown
                        problem = repetition(shown)
                        if problem or len(SENTENCE_END.findall(shown)) >= MAX_SENTENCES:
                            break  # a loop goes on forever; two sentences are all a caption keeps
                        yield result
            finally:
                if hasattr(pieces, "close"):
                    pieces.close()  # stops the model at once when the loop broke off
        except BackendError as exc:  # the model is missing, or failed part-way (a restarted worker, a server error)
            problem, failed = f"the model failed: {exc}", True
        caption = ""
        if not problem:
            caption, problem = finish_caption(raw, writer.finish_reason())
        if not problem:
            problem = writer.check.problem(caption)
        duplicate = near_duplicate(caption, [c.text for c in result.captions]) if not problem else ""
        if duplicate:
            problem = f"nearly the same as an earlier caption ({duplicate!r})"
        result.draft = None
        if problem:
            result.rejected.append(RejectedCaption(seed, (caption or raw).strip(), problem))
        else:
            result.captions.append(Caption(caption, seed, result.temperature))
            if len(result.captions) == 1:
                result.timings["first_caption"] = lap.total()  # from the request: load, cues and words included
        yield result
        if failed:
            stopped = result.failure = problem
            break
        if duplicate and result.temperature == 0:
            stopped = "temperature 0 is greedy decoding: every seed writes the same caption (raise the temperature)"
            break
    lap("captions")
    if len(result.captions) < result.requested:
        why = stopped or (f"{len(result.rejected)} of the {len(result.rejected) + len(result.captions)} texts "
                          f"the model wrote did not pass the checks")
        result.shortfall = f"only {len(result.captions)} of {result.requested} captions could be written: {why}"

