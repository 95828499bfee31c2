"""Per-stage timings for results: ``lap = Laps(timings)``; ``lap("decode")`` records the seconds
since the previous lap (or since creation) under that name; a name used again adds up (a loop that
alternates stages reports each stage's total)."""

from __future__ import annotations

import time


class Laps:
    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.started = self._last = time.perf_counter()
        self._sums: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self._sums[name] = self._sums.get(name, 0.0) + now - self._last
        self.timings[name] = round(self._sums[name], 4)
        self._last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 4)
