"""The generator's chat requests: the official ``openai`` client against any OpenAI-compatible endpoint.

One ``ChatCaller`` is shared by the generator's worker threads. Each request takes a slot of the
``AdaptiveLimiter`` (so a 429 or a timeout slows everyone down) and is counted in the ``Ledger``
(which may refuse it: budget, call limit). Failures:

- 429, 5xx, timeouts, refused connections and replies that are not a chat completion are retried up to
  ``datagen_max_retries`` times, after the server's ``Retry-After`` or an exponential backoff with jitter;
- a refused key (401/403) or an unknown model (404), or an endpoint still unreachable after the retries,
  is ``fatal``: the run stops, since every further request would fail the same way;
- another 4xx (a request the server will not take) fails this request only.

Messages never contain the endpoint's address, since they are stored beside the samples.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ..backends.openai_compat import server_reason
from ..errors import EmoError
from ..settings import Settings
from .ledger import Ledger
from .limiter import AdaptiveLimiter

BACKOFF_BASE_S = 1.0  # the first retry waits 0.5-1 s, then 1-2 s, 2-4 s, ...
BACKOFF_MAX_S = 60.0  # also caps the server's Retry-After
NO_KEY_PLACEHOLDER = "no-key"  # a local server without keys still needs some bearer value


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    tokens_in: int | None  # None when the endpoint reported no usage
    tokens_out: int | None
    attempts: int
    seconds: float
    cost_usd: float


class CallFailed(Exception):
    """A request that got no usable answer. ``fatal``: stop the run; ``retryable``: a rerun may try again."""

    def __init__(self, reason: str, *, fatal: bool = False, retryable: bool = True, attempts: int = 1):
        super().__init__(reason)
        self.fatal, self.retryable, self.attempts = fatal, retryable, attempts


def api_key(settings: Settings) -> str:
    """The key to send; raises ``EmoError`` when the model name or a needed key is missing."""
    if not settings.datagen_model:
        raise EmoError("the generator needs a model name: --model (or EMO_DATAGEN_MODEL)")
    key = os.environ.get(settings.datagen_api_key_env, "").strip()
    if not key:
        if not settings.datagen_base_url:
            raise EmoError(f"no API key: set the environment variable {settings.datagen_api_key_env}, or give "
                           "--base-url of a local OpenAI-compatible server")
        key = NO_KEY_PLACEHOLDER
    return key


class ChatCaller:
    def __init__(self, settings: Settings, ledger: Ledger, limiter: AdaptiveLimiter | None = None):
        self.settings = settings
        self.ledger = ledger
        self.limiter = limiter or AdaptiveLimiter(settings.datagen_concurrency)
        self._client = None
        self._length_parameter = "max_tokens"  # newer OpenAI models want max_completion_tokens (learnt on refusal)

    def load(self) -> "ChatCaller":
        """Builds the client (no request is made); fails early on a missing model name or key."""
        if self._client is not None:
            return self
        settings = self.settings
        key = api_key(settings)
        import openai

        # Retries are ours: the client's own would hide them from the ledger and the limiter.
        self._client = openai.OpenAI(base_url=settings.datagen_base_url or None, api_key=key,
                                     timeout=settings.datagen_timeout, max_retries=0)
        return self

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def complete(self, messages: list[dict], sample_type: str, seed: int) -> Completion:
        """The endpoint's answer to ``messages``; raises ``CallFailed`` or ``ledger.LimitReached``."""
        import openai

        self.load()
        settings = self.settings
        prompt_chars = sum(len(message["content"]) for message in messages)
        attempts = settings.datagen_max_retries + 1
        started = time.monotonic()
        last_problem = ""
        for attempt in range(attempts):
            wait = 0.0
            with self.limiter.slot():
                reserved = self.ledger.reserve(sample_type, prompt_chars, retry=attempt > 0)
                answered = False
                try:
                    response = self._client.chat.completions.create(
                        model=settings.datagen_model, messages=messages, temperature=settings.datagen_temperature,
                        seed=seed, **{self._length_parameter: settings.datagen_max_tokens})
                    choice = response.choices[0] if getattr(response, "choices", None) else None
                    if choice is None or choice.message is None or choice.message.content is None:
                        raise _NotACompletion()
                    usage = getattr(response, "usage", None)
                    tokens_in = getattr(usage, "prompt_tokens", None)
                    tokens_out = getattr(usage, "completion_tokens", None)
                    answered = True
                except openai.APIStatusError as exc:
                    status, reason = exc.status_code, server_reason(exc)[:200]
                    if status == 429:
                        wait = _retry_after(exc) or _backoff(attempt)
                        self.limiter.throttled(wait)
                        last_problem = f"rate-limited (429: {reason})"
                        wait = 0.0  # the limiter holds every request back, this one included
                    elif status >= 500:
                        wait, last_problem = _backoff(attempt), f"answered {status} ({reason})"
                    elif status == 400 and self._length_parameter == "max_tokens" and "max_completion_tokens" in reason:
                        self._length_parameter = "max_completion_tokens"
                        last_problem = "asked for max_completion_tokens"
                    elif status in (401, 403):
                        raise CallFailed(f"the endpoint refused the API key ({status}: {reason}); check the "
                                         f"environment variable {settings.datagen_api_key_env}", fatal=True,
                                         attempts=attempt + 1) from None
                    elif status == 404:
                        raise CallFailed(f"the endpoint has no such model or route ({status}: {reason}); check --model "
                                         f"{settings.datagen_model!r} and --base-url", fatal=True,
                                         attempts=attempt + 1) from None
                    else:
                        raise CallFailed(f"the endpoint rejected the request ({status}: {reason})", retryable=False,
                                         attempts=attempt + 1) from None
                except openai.APITimeoutError:  # before APIConnectionError: it is a subclass
                    self.limiter.timed_out()
                    wait, last_problem = _backoff(attempt), f"no answer within {settings.datagen_timeout:g} s"
                except openai.APIConnectionError:
                    wait, last_problem = _backoff(attempt), "cannot reach the endpoint"
                except (_NotACompletion, openai.OpenAIError, ValueError, TypeError, AttributeError):
                    wait, last_problem = _backoff(attempt), "the reply is not a chat completion"
                finally:
                    if not answered:
                        self.ledger.settle(sample_type, reserved, None, None, answered=False)
            if answered:
                self.limiter.succeeded()
                cost = self.ledger.settle(sample_type, reserved, tokens_in, tokens_out, answered=True)
                return Completion(choice.message.content, choice.finish_reason, tokens_in, tokens_out, attempt + 1,
                                  time.monotonic() - started, cost)
            if attempt + 1 < attempts and wait:
                time.sleep(wait)
        unreachable = last_problem == "cannot reach the endpoint"
        raise CallFailed(f"{last_problem}; gave up after {attempts} attempt{'s' if attempts > 1 else ''}",
                         fatal=unreachable, attempts=attempts)


class _NotACompletion(Exception):
    pass


def _retry_after(exc) -> float | None:
    """The server's ``Retry-After`` in seconds (a number or an HTTP date), capped; None without one."""
    value = exc.response.headers.get("retry-after") if getattr(exc, "response", None) is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(BACKOFF_MAX_S, max(0.0, seconds))


def _backoff(attempt: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt) * random.uniform(0.5, 1.0)
