"""A sliding-window rate limit per key (a rater, a client address), kept in this process's memory."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

_PRUNE_AT = 10_000  # keys kept before idle ones are dropped


class RateLimiter:
    """At most ``per_minute`` events per key in any 60 s; ``per_minute == 0`` allows everything."""

    def __init__(self, per_minute: int, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.window = window
        self.clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Counts one event for ``key`` and says whether it is within the limit (a refused one is not counted)."""
        if self.per_minute <= 0:
            return True
        now = self.clock()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.per_minute:
                return False
            events.append(now)
            if len(self._events) > _PRUNE_AT:
                self._prune(now)
            return True

    def _prune(self, now: float) -> None:
        for key in [key for key, events in self._events.items() if not events or events[-1] <= now - self.window]:
            del self._events[key]
