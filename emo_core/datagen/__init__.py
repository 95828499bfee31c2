"""Instruction-data generator: EmoVIT's Categorical, Conversation and Reasoning samples from labelled
images, written by any OpenAI-compatible LLM into a resumable run folder, and exported for training.

    python -m emo_core.datagen generate images/ --class-set emoset --out runs/r1 --model gpt-4o
    python -m emo_core.datagen export runs/r1 --format instructblip --out train.json --val-fraction 0.1

The same as library calls:

    from emo_core.datagen import generate, export
    report = generate("images/", "runs/r1", "emoset", per_class=100)
    export("runs/r1", "llava", "train.json", val_fraction=0.1)

Modules: ``sources`` (input layouts), ``attributes`` (given / measured / not measured), ``captions``,
``prompt_set`` (prompt files and versions), ``llm_client`` + ``limiter`` + ``ledger`` (requests,
concurrency, cost), ``answers`` (parsing and checks), ``duplicates``, ``run_folder``, ``generate``,
``export``; ``__main__`` is the command line.
"""

from .export import ExportReport, export
from .generate import GenerateReport, generate
from .prompt_set import TYPES
from .sources import SourceError

__all__ = ["ExportReport", "GenerateReport", "SourceError", "TYPES", "export", "generate"]
