"""Evaluation harness: the papers' metrics and EmoVIT's instruction Sensitivity on any labelled set.

    python -m emo_core.evaluate run DATA --class-set emoset --out runs/emoset [--backend hf --model M]
        [--instructions categorical,sensitivity_1 | --instructions-file mine.txt] [--method generate|score]
    python -m emo_core.evaluate compare runs/emoset runs/fi

As a library:

    from emo_core.evaluate import load_dataset, run_evaluation, instructions
    data = load_dataset("EmoSet/test.json", "emoset")
    outcome = run_evaluation(data, "runs/emoset", instructions.by_ids("sensitivity_1,sensitivity_2"))
    outcome.summary["sensitivity"]["value"]

Modules: ``datasets`` (layouts, checks, manifest), ``instructions`` (built-in and user phrasings),
``answers`` (one label-only question through the backend seam), ``runner`` (the resumable run),
``metrics`` (sklearn/scipy where they have it), ``report`` (summary files), ``compare`` and
``published`` (the papers' tables), ``archive`` (safe unpacking of uploaded zips), ``demo_set``,
``single`` (one image, every instruction).
"""

from __future__ import annotations

from . import instructions
from .datasets import Dataset, DatasetError, Sample, load_dataset, parse_aliases
from .runner import EvaluationError, RunOutcome, run_evaluation

__all__ = ["Dataset", "DatasetError", "EvaluationError", "RunOutcome", "Sample", "instructions", "load_dataset",
           "parse_aliases", "run_evaluation"]
