"""Per-stage timings for results: ``lap = Laps(timings)``; ``lap("decode")`` records the seconds
since the previous lap (or since creation) under that name."""

from __future__ import annotations

import time


class Laps:
    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.started = self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._last, 4)
        self._last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 4)
