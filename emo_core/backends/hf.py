"""The ``hf`` backend: any transformers image/video(/audio)-text model, by hub id or local directory.

    settings = Settings(backend="hf", model="Salesforce/instructblip-vicuna-7b", quantization="4bit")
    backend = get_backend("hf", settings)
    backend.generate(user_message("Which emotion ...?", image="photo.jpg"))
    backend.score(messages, ["amusement", "awe", ...])      # log-likelihood of each label
    backend.generate(messages, answer_prefix="Predicted emotion: awe. Reason:")  # continues the answer

Loading (placement with accelerate, dtype, bitsandbytes) is in ``hf_loading``; what differs between
model families (classes, chat template or plain prompt, media) in ``hf_families``; the batched
candidate scoring in ``hf_scoring``; frames and audio from files in ``hf_media``. An answer prefix is
tokenised on its own and appended to the prompt's tokens (to the decoder's start for an encoder-decoder),
exactly as ``score`` appends a candidate, so a label scored first can then be explained by continuing
``Predicted emotion: <label>. Reason:``. Constructing the
backend loads nothing; the model loads on first use and is shared by every backend with the same load
options in the process, until ``unload``.
"""

from __future__ import annotations

import threading
from typing import Iterator

from ..errors import BackendError
from ..model_allowlist import display_name
from ..settings import Settings
from . import hf_families, hf_loading, hf_scoring
from .base import Backend, Message

# A streamed generation whose next piece takes longer than this is treated as stuck.
STREAM_STALL_TIMEOUT_S = 600


class HFBackend(Backend):
    name = "hf"
    judges_from_cues = False

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings(backend="hf")
        self.options = hf_loading.LoadOptions.from_settings(self.settings)
        self._family: hf_families.Family | None = None

    # -- the Backend protocol ---------------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        """Read from the checkpoint's config (a small file); the weights are not loaded for this."""
        if self._family is None:
            self._family = hf_families.family_for(hf_loading.load_config(self.options.source).model_type)
        return self._family.capabilities

    @property
    def model_label(self) -> str:
        details = [self.settings.dtype if self.settings.dtype != "auto" else "",
                   self.settings.quantization if self.settings.quantization != "none" else ""]
        extra = ", ".join(d for d in details if d)
        # visitors see a local folder's name, not where it is
        return f"hf: {display_name('hf', self.options.source)}" + (f" ({extra})" if extra else "")

    def load(self) -> "HFBackend":
        loaded = hf_loading.acquire(self.options)
        self._family = loaded.family
        return self

    def unload(self) -> None:
        hf_loading.release(self.options)

    def generate(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0, answer_prefix: str = "", token_choices: list | None = None) -> str:
        """The answer's text; with ``answer_prefix``, the continuation of that prefix. ``token_choices`` is
        left empty: this backend's distributions come from ``score``."""
        loaded, inputs = self.model_inputs(messages, answer_prefix)
        with loaded.lock:
            output = self._run_generate(loaded, inputs, max_new_tokens, temperature, seed)
        return _decode_new_tokens(loaded.tokenizer, _answer_start(inputs), output)

    def generate_stream(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                        seed: int = 0, answer_prefix: str = "", token_choices: list | None = None) -> Iterator[str]:
        """Text pieces as the model writes them (for the UI); joined, they equal ``generate``'s answer."""
        from transformers import TextIteratorStreamer

        loaded, inputs = self.model_inputs(messages, answer_prefix)
        streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=STREAM_STALL_TIMEOUT_S)
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                with loaded.lock:
                    self._run_generate(loaded, inputs, max_new_tokens, temperature, seed, streamer=streamer)
            except BaseException as exc:  # handed to the consumer below
                failure.append(exc)
                streamer.end()  # wake the consumer, which would otherwise wait for the stall timeout

        worker = threading.Thread(target=produce, name="hf-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            worker.join()
        if failure:
            raise _as_backend_error(failure[0])

    def score(self, messages: list[Message], candidates: list[str]) -> dict[str, float]:
        """Summed log-probability of each candidate as the answer (not length-normalised; see hf_scoring)."""
        if not candidates:
            raise BackendError("score needs at least one candidate answer")
        loaded, inputs = self.model_inputs(messages)
        with loaded.lock:
            try:
                values = hf_scoring.score_candidates(loaded.text_model, loaded.continuation_model, loaded.tokenizer,
                                                     inputs, list(candidates), loaded.is_encoder_decoder)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise _as_backend_error(exc) from exc
        return dict(zip(candidates, values))

    # -- helpers ----------------------------------------------------------------------------------

    def model_inputs(self, messages: list[Message], answer_prefix: str = "") -> tuple[hf_loading.LoadedModel, dict]:
        """The loaded model and the tensors its forward/generate takes for these messages."""
        loaded = hf_loading.acquire(self.options)
        prompt = hf_families.prompt_and_media(messages, loaded.family, loaded.processor, self.settings)
        inputs = hf_families.processor_inputs(loaded.processor, prompt)
        if answer_prefix:
            inputs = _with_answer_prefix(loaded, dict(inputs), answer_prefix)
        # With a model spread by accelerate, its hooks move activations between devices; the inputs go
        # where the embeddings are, media in the weights' dtype, ids and masks unchanged.
        return loaded, _moved(inputs, _input_device(loaded.text_model), loaded.placement.dtype)

    @staticmethod
    def _run_generate(loaded, inputs, max_new_tokens: int, temperature: float, seed: int, streamer=None):
        import torch

        options = dict(max_new_tokens=max_new_tokens, do_sample=temperature > 0, streamer=streamer)
        if temperature > 0:
            options["temperature"] = temperature
        tokenizer = loaded.tokenizer
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
            options["pad_token_id"] = tokenizer.eos_token_id
        torch.manual_seed(seed)  # sampling is reproducible per seed (greedy decoding ignores it)
        try:
            with torch.inference_mode():
                return loaded.text_model.generate(**inputs, **options)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise _as_backend_error(exc) from exc


def _with_answer_prefix(loaded: hf_loading.LoadedModel, inputs: dict, answer_prefix: str) -> dict:
    """The prompt followed by the first words of the answer: the model's generation continues them."""
    import torch

    ids = hf_scoring.candidate_token_ids(loaded.tokenizer, [answer_prefix])[0]
    prefix = torch.tensor([ids], dtype=torch.long)
    if loaded.is_encoder_decoder:
        start = loaded.text_model.config.get_text_config().decoder_start_token_id
        inputs["decoder_input_ids"] = torch.cat([torch.tensor([[start]]), prefix], dim=1)
        return inputs
    inputs["input_ids"] = torch.cat([inputs["input_ids"], prefix], dim=1)
    if inputs.get("attention_mask") is not None:
        inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(prefix)], dim=1)
    for key in hf_scoring.TOKEN_ALIGNED_KEYS:  # per-token modality: the prefix is text
        if inputs.get(key) is not None:
            inputs[key] = torch.cat([inputs[key], torch.zeros_like(prefix, dtype=inputs[key].dtype)], dim=1)
    return inputs


def _answer_start(inputs: dict):
    """What ``generate`` echoes before the new tokens: the decoder's start (and prefix) for an
    encoder-decoder given one, else the prompt ids (decoder-only models return them first)."""
    return inputs["decoder_input_ids"] if inputs.get("decoder_input_ids") is not None else inputs["input_ids"]


def _decode_new_tokens(tokenizer, prompt_ids, output) -> str:
    """The answer only: decoder-only models return the prompt ids first, encoder-decoders do not."""
    sequence = output[0]
    prompt = prompt_ids[0].to(sequence.device)
    if sequence.shape[0] >= prompt.shape[0] and bool((sequence[: prompt.shape[0]] == prompt).all()):
        sequence = sequence[prompt.shape[0]:]
    return tokenizer.decode(sequence, skip_special_tokens=True)


def _input_device(model):
    embeddings = model.get_input_embeddings()
    return embeddings.weight.device


def _moved(inputs, device, dtype) -> dict:
    import torch

    moved = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device=device, dtype=dtype) if value.is_floating_point() else value.to(device)
        moved[key] = value
    return moved


def _as_backend_error(exc: BaseException) -> BaseException:
    if isinstance(exc, BackendError):
        return exc
    message = str(exc)
    if "out of memory" in message.lower():
        return BackendError(f"the model ran out of memory ({message.splitlines()[0]}); try a smaller model, "
                            "EMO_QUANTIZATION=4bit, or EMO_MAX_MEMORY to offload layers to the CPU")
    if not isinstance(exc, Exception):
        return exc
    return BackendError(f"the model failed on this input: {message}")
