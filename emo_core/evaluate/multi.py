"""One dataset, several models: a run per model (each in its own run folder), for the tab and scripts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..backends import backend_lease
from ..settings import Settings
from .datasets import Dataset
from .instructions import Instruction
from .runner import RunOutcome, run_evaluation


@dataclass
class ModelRun:
    name: str  # what the visitor chose
    outcome: RunOutcome


def evaluate_models(dataset: Dataset, instructions: list[Instruction], models: list[tuple[str, Settings]],
                    out_root: str | Path, *, method: str = "auto",
                    progress: Callable[[int, int, str], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> list[ModelRun]:
    """``run_evaluation`` for each (name, settings); ``progress`` counts samples over all models. Stops
    early (the finished runs kept) when ``should_stop`` says so."""
    runs = []
    total = len(dataset.samples) * len(models)
    for number, (name, settings) in enumerate(models):
        if should_stop is not None and should_stop():
            break
        offset = number * len(dataset.samples)

        def report(done: int, _total: int, sample: str, offset=offset, name=name) -> None:
            if progress is not None:
                progress(offset + done, total, f"{name}: {sample}")

        with backend_lease(settings.backend, settings) as backend:
            outcome = run_evaluation(dataset, Path(out_root) / f"model_{number + 1}", instructions, settings=settings,
                                     backend=backend, method=method, progress=report, should_stop=should_stop)
        runs.append(ModelRun(name, outcome))
        if outcome.cancelled:
            break
    return runs
