"""The ``openai`` backend: any OpenAI-compatible chat endpoint through the official ``openai`` client.

    EMO_BACKEND=openai EMO_MODEL=gpt-4o-mini OPENAI_API_KEY=... python app.py
    EMO_BACKEND=openai EMO_OPENAI_BASE_URL=http://127.0.0.1:8000/v1 EMO_MODEL=<served model> python app.py

Images go as base64 data URLs; a video goes as a few frames (``hf_media.video_frames``); audio is not
sent (chat endpoints differ too much in how they take it). The API key is read from the environment
variable *named* by ``api_key_env`` (default ``OPENAI_API_KEY``), never from settings or files; a local
server (``openai_base_url`` set) may need none.

Failures: each request has ``request_timeout`` seconds; rate limits (429), server errors (5xx),
timeouts and refused connections are retried ``max_retries`` times with exponential backoff (or the
server's ``Retry-After``); other 4xx answers are the caller's mistake and are not retried. Every
failure ends as a ``BackendError`` whose message says what to change.

Chat endpoints cannot score arbitrary candidate answers, so this backend has no ``score``: tasks use
generate + parse. Nor can a chat request make the model continue an assistant turn portably (some
servers have their own flag for it, OpenAI's API has none), so it has no "continue" capability either.

Every request asks for the ``TOP_LOGPROBS`` likeliest tokens at each position (``logprobs``); OpenAI,
vLLM and llama.cpp's server return them, and ``generate(..., token_choices=[])`` hands them to the
task, which turns them into class probabilities. A server that refuses the parameter is asked again
without it (and not asked again); one that ignores it returns none, and the task says the label was
parsed from the text.
"""

from __future__ import annotations

import base64
import io
import os
import random
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from ..errors import BackendError, CapabilityError
from ..settings import Settings
from .base import Backend, Message, TokenChoices

OFFICIAL_API_URL = "https://api.openai.com/v1"
# Without a key a local server still needs *some* bearer value in the header.
NO_KEY_PLACEHOLDER = "no-key"
BACKOFF_BASE_S = 0.5  # first retry waits ~0.5 s, then ~1 s, ~2 s, ...
BACKOFF_MAX_S = 20.0  # also caps the server's Retry-After
FRAMES_PER_VIDEO = 4
TOP_LOGPROBS = 20  # the most OpenAI's API returns per position
_SENDABLE_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}

T = TypeVar("T")


class OpenAIBackend(Backend):
    name = "openai"
    capabilities = frozenset({"image", "video", "generate"})
    judges_from_cues = False

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings(backend="openai")
        self.base_url = (self.settings.openai_base_url or OFFICIAL_API_URL).rstrip("/")
        self._client = None
        # Newer OpenAI models refuse max_tokens and want max_completion_tokens; learnt on the first refusal.
        self._length_parameter = "max_tokens"
        self._ask_logprobs = True  # until the server refuses them

    @property
    def model_label(self) -> str:
        return f"openai: {self.settings.model or '(no model set)'}"  # the endpoint's address stays private

    def load(self) -> "OpenAIBackend":
        """Builds the client (no request is made); fails early on a missing model name or key."""
        if self._client is not None:
            return self
        if not self.settings.model:
            raise BackendError("the openai backend needs a model name: set EMO_MODEL (or --model) to a model the "
                               "endpoint serves")
        key = os.environ.get(self.settings.api_key_env, "").strip()
        if not key:
            if not self.settings.openai_base_url:
                raise BackendError(f"no API key: set the environment variable {self.settings.api_key_env} (or point "
                                   "EMO_OPENAI_BASE_URL at a local OpenAI-compatible server)")
            key = NO_KEY_PLACEHOLDER
        import openai

        # Retries are ours (below): the client's own would also retry 408/409 and hide what happened.
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.settings.request_timeout,
                                     max_retries=0)
        return self

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def generate(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0, answer_prefix: str = "", token_choices: list[TokenChoices] | None = None) -> str:
        self.check_prefix(answer_prefix)
        response = self._create(messages, max_new_tokens, temperature, seed, stream=False)
        if not response.choices:
            raise BackendError(f"the server at {self.base_url} returned no answer")
        choice = response.choices[0]
        if token_choices is not None:
            token_choices += _token_choices(choice.logprobs)
        return choice.message.content or ""

    def generate_stream(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                        seed: int = 0, answer_prefix: str = "",
                        token_choices: list[TokenChoices] | None = None) -> Iterator[str]:
        import openai

        self.check_prefix(answer_prefix)
        stream = self._create(messages, max_new_tokens, temperature, seed, stream=True)
        try:
            for chunk in stream:
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if token_choices is not None:
                    token_choices += _token_choices(choice.logprobs)
                if choice.delta and choice.delta.content:
                    yield choice.delta.content
        except openai.OpenAIError as exc:  # mid-stream: part of the answer is out, so no retry
            raise BackendError(f"the stream from {self.base_url} broke off: {exc}") from exc
        finally:
            stream.close()

    # -- requests ---------------------------------------------------------------------------------

    def _create(self, messages, max_new_tokens: int, temperature: float, seed: int, stream: bool):
        self.load()
        request = dict(model=self.settings.model, messages=to_openai_messages(messages, self.settings),
                       temperature=temperature, seed=seed, stream=stream)
        # the length and logprobs parameters are looked up at each call: a refusal switches them (below)
        return self._with_retries(lambda: self._client.chat.completions.create(
            **request, **{self._length_parameter: max_new_tokens}, **self._logprobs_parameters()))

    def _logprobs_parameters(self) -> dict:
        return {"logprobs": True, "top_logprobs": TOP_LOGPROBS} if self._ask_logprobs else {}

    def _with_retries(self, call: Callable[[], T]) -> T:
        import openai

        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            try:
                return call()
            except openai.APIStatusError as exc:
                if exc.status_code == 429 or exc.status_code >= 500:
                    if attempt + 1 == attempts:
                        raise BackendError(f"the server at {self.base_url} answered {exc.status_code} "
                                           f"({server_reason(exc)}) {attempts} times; giving up") from exc
                    time.sleep(_backoff(attempt, exc.response.headers.get("retry-after")))
                    continue
                if self._wants_max_completion_tokens(exc):
                    self._length_parameter = "max_completion_tokens"
                    return self._with_retries(call)  # once: the condition cannot hold again
                if self._refuses_logprobs(exc):
                    self._ask_logprobs = False
                    return self._with_retries(call)  # once, likewise
                raise BackendError(self._refusal(exc)) from exc
            except openai.APITimeoutError as exc:  # before APIConnectionError: it is a subclass
                if attempt + 1 == attempts:
                    raise BackendError(f"no answer from {self.base_url} within {self.settings.request_timeout:g} s "
                                       f"({attempts} attempts); raise EMO_REQUEST_TIMEOUT or check the server") from exc
                time.sleep(_backoff(attempt, None))
            except openai.APIConnectionError as exc:
                if attempt + 1 == attempts:
                    raise BackendError(f"cannot reach the OpenAI-compatible server at {self.base_url} ({attempts} "
                                       "attempts): is it running, and is EMO_OPENAI_BASE_URL right?") from exc
                time.sleep(_backoff(attempt, None))
        raise AssertionError("unreachable: the loop returns or raises")

    def _wants_max_completion_tokens(self, exc) -> bool:
        return (exc.status_code == 400 and self._length_parameter == "max_tokens"
                and "max_completion_tokens" in server_reason(exc))

    def _refuses_logprobs(self, exc) -> bool:
        return exc.status_code in (400, 422) and self._ask_logprobs and "logprobs" in server_reason(exc).lower()

    def _refusal(self, exc) -> str:
        status, reason = exc.status_code, server_reason(exc)
        if status in (401, 403):
            return (f"the server at {self.base_url} refused the API key ({status}: {reason}); check the "
                    f"environment variable {self.settings.api_key_env}")
        if status == 404:
            return (f"the server at {self.base_url} has no such model or route ({reason}); check EMO_MODEL="
                    f"{self.settings.model!r} and EMO_OPENAI_BASE_URL")
        return f"the server at {self.base_url} rejected the request ({status}: {reason})"


def _token_choices(logprobs) -> list[TokenChoices]:
    """The endpoint's per-token log-probabilities (``choice.logprobs.content``), if it sent any."""
    content = getattr(logprobs, "content", None) or []
    choices = []
    for token in content:
        alternatives = {alternative.token: float(alternative.logprob) for alternative in (token.top_logprobs or [])}
        alternatives.setdefault(token.token, float(token.logprob))
        choices.append(TokenChoices(token.token, float(token.logprob), alternatives))
    return choices


def server_reason(exc) -> str:
    """The server's own words about an ``openai`` API error: the client keeps the JSON error body
    (``{"error": {"message": ...}}``, ``{"message": ...}`` or FastAPI's ``detail``)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        for detail in (error.get("message") if isinstance(error, dict) else error, body.get("message"),
                       body.get("detail")):
            if detail:
                return str(detail)
    return str(getattr(exc, "message", "") or exc)


def _backoff(attempt: int, retry_after: str | None) -> float:
    """Seconds before the next attempt: the server's Retry-After if it gave one, else exponential with jitter."""
    if retry_after is not None:
        try:
            return min(BACKOFF_MAX_S, max(0.0, float(retry_after)))
        except ValueError:
            pass  # an HTTP date: fall back to our own schedule
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt) * random.uniform(0.5, 1.0)


# ------------------------------------------------------------------------------------------------
# messages


def to_openai_messages(messages: list[Message], settings: Settings | None = None) -> list[dict]:
    """Our chat messages (media as local paths) as OpenAI chat messages (media as data URLs); a video's
    frames are read within ``settings``' limits (``max_video_seconds``, ``video_max_side``)."""
    settings = settings or Settings()
    converted = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            converted.append({"role": message.get("role", "user"), "content": content})
            continue
        parts = []
        for part in content or []:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part["text"]})
            elif kind == "image":
                parts.append(_image_part(image_data_url(part["path"])))
            elif kind == "video":
                from .hf_media import video_frames

                frames = video_frames(part["path"], FRAMES_PER_VIDEO, settings)
                parts += [_image_part(_pil_data_url(frame)) for frame in frames]
            elif kind == "audio":
                raise CapabilityError("the openai backend does not send audio; use the hf backend with an audio "
                                      "model (e.g. Qwen2.5-Omni) or the offline backend")
            else:
                raise CapabilityError(f"unknown message part type {kind!r}")
        converted.append({"role": message.get("role", "user"), "content": parts})
    return converted


def image_data_url(path: str | Path) -> str:
    """The file as a data URL; formats chat APIs may refuse (BMP, TIFF, ...) are re-encoded as JPEG."""
    from PIL import Image

    data = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            mime = _SENDABLE_IMAGE_FORMATS.get(image.format or "")
            if mime is None:
                return _pil_data_url(image.convert("RGB"))
    except OSError as exc:
        raise BackendError(f"cannot read the image {Path(path).name}: {exc}") from None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _pil_data_url(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return f"data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}
