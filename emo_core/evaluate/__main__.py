"""The command line of the evaluation harness (see ``emo_core.evaluate``).

    python -m emo_core.evaluate run DATA --class-set KEY --out RUN_DIR [--backend B --model M]
        [--instructions ID,ID,... | --instructions-file FILE] [--method generate|score] [--limit N]
        [--alias FROM=TO ...] [--media-dir CLIPS]
    python -m emo_core.evaluate compare RUN_DIR... [--out table.md]

Without ``--instructions`` or ``--instructions-file`` every built-in instruction of the modality runs;
with a file only its phrasings run, with both the named built-ins and then the file's. Other settings
(thresholds, the hf dtype, the openai endpoint) come from the ``EMO_*`` environment variables.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from ..errors import EmoError
from ..settings import Settings
from . import instructions as instruction_lib
from .compare import compare_table, load_summaries
from .datasets import load_dataset, parse_aliases
from .runner import run_evaluation


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emo_core.evaluate",
                                     description="Evaluate a model on a labelled dataset under several instructions.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="evaluate one dataset (resumable)")
    run.add_argument("data", type=Path, help="a folder per class, a path,label CSV, an EmoSet-style JSON, or a "
                                             "MER2023-style 'name label' file")
    run.add_argument("--class-set", required=True, help="class-set key or dataset name (emoset, fi, emotion6, "
                                                        "mer2023, dfew, ...)")
    run.add_argument("--out", type=Path, required=True, help="the run folder (created; a rerun resumes it)")
    run.add_argument("--backend", default=None, help="offline, hf or openai (default: the backend setting)")
    run.add_argument("--model", default=None, help="model id or local folder (hf / openai)")
    run.add_argument("--instructions", default=None,
                     help=f"built-in instruction ids, comma-separated ({', '.join(instruction_lib.BUILTIN)})")
    run.add_argument("--instructions-file", type=Path, default=None,
                     help="your phrasings, one per paragraph, each with a {classes} slot")
    run.add_argument("--method", choices=("generate", "score"), default=None,
                     help="generate an answer and parse it, or score each class name (default: score where the "
                          "backend can)")
    run.add_argument("--limit", type=int, default=None, help="evaluate at most N samples (a fixed subset)")
    run.add_argument("--alias", action="append", default=[], metavar="FROM=TO",
                     help="rename a dataset label to a class (repeatable); listed in the summary")
    run.add_argument("--media-dir", type=Path, default=None, help="the clip folder of a MER2023-style label file "
                                                                  "(default: the label file's folder)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    compare = commands.add_parser("compare", help="one Markdown table of several runs, beside the papers' numbers")
    compare.add_argument("runs", type=Path, nargs="+")
    compare.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    return parser


def _instructions(args, video: bool) -> list:
    chosen = instruction_lib.by_ids(args.instructions) if args.instructions else []
    if args.instructions_file:
        chosen += instruction_lib.read_file(args.instructions_file)
    return chosen or instruction_lib.by_ids(list(instruction_lib.default_ids(video)))


def _set_torch_threads(settings: Settings) -> None:
    """The offline models work on small batches (a few 64x64 face crops), where torch's threads mostly
    wait for each other: one thread was about 3x faster than torch's default (two) in a run on a busy
    2-core machine. ``EMO_TORCH_THREADS`` decides elsewhere (the hf backend's large models want every
    core). Called only when a question is asked: a finished rerun does not even import torch."""
    if settings.torch_threads or settings.backend == "offline":
        import torch

        torch.set_num_threads(settings.torch_threads or 1)


def _run(args) -> int:
    from tqdm import tqdm

    settings = Settings.from_env()
    changes = {k: v for k, v in (("backend", args.backend), ("model", args.model)) if v is not None}
    settings = dataclasses.replace(settings, **changes)
    dataset = load_dataset(args.data, args.class_set, aliases=parse_aliases(args.alias), media_dir=args.media_dir,
                           limit=args.limit)
    chosen = _instructions(args, dataset.video)
    bar = tqdm(total=len(dataset.samples), unit="sample", disable=args.quiet, file=sys.stderr)

    def progress(done: int, total: int, name: str) -> None:
        bar.n = done
        bar.set_postfix_str(name[-40:], refresh=True)

    try:
        outcome = run_evaluation(dataset, args.out, chosen, settings=settings, method=args.method or "auto",
                                 progress=progress, before_first_question=lambda: _set_torch_threads(settings))
    finally:
        bar.close()
    summary = outcome.summary
    for instruction, metrics in summary["per_instruction"].items():
        if metrics["n"]:
            print(f"{instruction}: n={metrics['n']} accuracy={metrics['accuracy']:.4f} uar={metrics['uar']:.4f} "
                  f"macro_f1={metrics['macro_f1']:.4f} weighted_f1={metrics['weighted_f1']:.4f} "
                  f"unparsed={metrics['unparsed']}")
    sensitivity = summary["sensitivity"]
    print(f"sensitivity ({sensitivity['metric']}, population std / mean): "
          + ("undefined" if sensitivity["value"] is None else f"{sensitivity['value']:.4f}"))
    if sensitivity["note"]:
        print(f"note: {sensitivity['note']}")
    print(f"{outcome.answered} answers asked, {outcome.cached} from {args.out / 'predictions.jsonl'}; "
          f"summary in {args.out / 'summary.md'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        table = compare_table(load_summaries(args.runs))
        if args.out:
            args.out.write_text(table, encoding="utf-8")
        print(table, end="")
        return 0
    except (EmoError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
