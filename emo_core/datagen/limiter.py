"""How many generator requests may be in flight: at most the configured concurrency, fewer after trouble.

A 429 halves the limit and holds every new request back until the server's ``Retry-After`` (or our
backoff) has passed; a timeout halves the limit too (the server is overloaded). Each run of ``limit``
successes in a row raises it by one again, up to the configured maximum (additive increase,
multiplicative decrease, as TCP does).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator


class AdaptiveLimiter:
    def __init__(self, maximum: int):
        if maximum < 1:
            raise ValueError("the concurrency limit must be at least 1")
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self.lowest = maximum  # the smallest limit reached, for the ledger
        self._resume_at = 0.0
        self._successes = 0
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Waits for a free slot (and for any hold after a 429) and holds it for the block."""
        with self._changed:
            while True:
                wait = self._resume_at - time.monotonic()
                if wait <= 0 and self.in_flight < self.limit:
                    break
                self._changed.wait(timeout=wait if wait > 0 else None)
            self.in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    def succeeded(self) -> None:
        with self._changed:
            self._successes += 1
            if self._successes >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self._successes = 0
                self._changed.notify_all()

    def throttled(self, hold_seconds: float) -> None:
        """A 429: fewer requests at once, and none new for ``hold_seconds``."""
        with self._changed:
            self._shrink()
            self._resume_at = max(self._resume_at, time.monotonic() + hold_seconds)

    def timed_out(self) -> None:
        with self._changed:
            self._shrink()

    def _shrink(self) -> None:
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self._successes = 0
