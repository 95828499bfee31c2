"""Command line of the instruction-data generator.

    python -m emo_core.datagen generate SOURCE --out DIR [--class-set emoset] [--types ...] [--per-class N]
        [--budget-usd X] [--max-calls N] [--base-url URL --model NAME ...]
    python -m emo_core.datagen export DIR --format llava|instructblip --out FILE [--val-fraction F] [--seed S]

Every ``datagen_*`` setting is a flag of ``generate`` without its prefix (``--model``, ``--concurrency``,
``--price-input-per-1k``, ...) and wins over its ``EMO_DATAGEN_*`` variable. Exit status: 0 when the run
is complete, 3 when it stopped early (budget, call limit, endpoint trouble, Ctrl-C: rerun to
continue), 1 on an error before any work.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from ..errors import EmoError
from ..settings import Settings, field_type
from .export import FORMATS, export
from .generate import generate
from .prompt_set import TYPES
from .run_folder import RunFolder
from .sources import FORMATS as SOURCE_FORMATS

SETTING_PREFIX = "datagen_"
EXIT_STOPPED = 3


def _setting_flags(parser: argparse.ArgumentParser) -> list[str]:
    names = []
    group = parser.add_argument_group("endpoint and generation settings (override EMO_DATAGEN_*)")
    for f in dataclasses.fields(Settings):
        if f.name.startswith(SETTING_PREFIX):
            flag = "--" + f.name.removeprefix(SETTING_PREFIX).replace("_", "-")
            group.add_argument(flag, dest=f.name, type=field_type(f), default=None,
                               help=f"{f.metadata.get('help', '')} (env EMO_{f.name.upper()})")
            names.append(f.name)
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emo_core.datagen", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("generate", help="generate samples into a run folder (resumable)")
    run.add_argument("source", type=Path, help="a folder per class, a CSV (path,label,...) or EmoSet-style JSON")
    run.add_argument("--out", type=Path, required=True, help="the run folder (created; rerun into it to continue)")
    run.add_argument("--class-set", default=None, help="class-set key or dataset (emoset, fi, emotion6, ...); "
                                                       "default: the image_class_set setting")
    run.add_argument("--format", dest="source_format", choices=SOURCE_FORMATS, default="auto")
    run.add_argument("--image-root", type=Path, default=None,
                     help="folder the samples' image paths are relative to (default: the input's folder)")
    run.add_argument("--types", default=",".join(TYPES), help=f"comma-separated, from {', '.join(TYPES)}")
    run.add_argument("--per-class", default=None,
                     help="samples per class and type: N, or type=N pairs (conversation=50,reasoning=20); "
                          "default: one per image")
    run.add_argument("--seed", type=int, default=0, help="which images a quota picks when it is smaller than a class")
    run.add_argument("--budget-usd", type=float, default=None, help="stop before this invocation spends more")
    run.add_argument("--max-calls", type=int, default=None, help="stop after this many requests in this invocation")
    run.add_argument("--retry-rejected", action="store_true", help="ask again for samples whose answers were rejected")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _setting_flags(run)

    out = commands.add_parser("export", help="write a run's samples as training files, split by image")
    out.add_argument("run_dir", type=Path)
    out.add_argument("--format", choices=FORMATS, required=True)
    out.add_argument("--out", type=Path, required=True, help="the training file; validation goes to <stem>_val<suffix>")
    out.add_argument("--val-fraction", type=float, default=0.0)
    out.add_argument("--seed", type=int, default=0)
    out.add_argument("--data-dir", type=Path, default=None, help="where the review desk keeps its store "
                                                                 "(default: the data_dir setting)")
    return parser


class _Bar:
    """tqdm behind the generator's progress protocol."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def start(self, total: int) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="sample", dynamic_ncols=True, disable=None)

    def advance(self, outcome: str) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if outcome == "rejected":
                self.bar.set_postfix_str("some rejected: see rejected.jsonl", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def reviewed_versions(run_dir: Path, data_dir: Path) -> dict | None:
    """The review desk's accepted versions of the run's samples, or None when the run was never imported
    for review."""
    from emo_core.review import accepted_versions

    return accepted_versions(Path(data_dir), RunFolder(run_dir).info()["run_id"])


def _generate(args, settings: Settings) -> int:
    types = [part.strip() for part in args.types.split(",") if part.strip()]
    bar = _Bar(not args.no_progress)
    try:
        report = generate(args.source, args.out, args.class_set or settings.image_class_set, types=types,
                          per_class=args.per_class, source_format=args.source_format, image_root=args.image_root,
                          seed=args.seed, budget_usd=args.budget_usd, max_calls=args.max_calls,
                          retry_rejected=args.retry_rejected, settings=settings, progress=bar)
    finally:
        bar.close()
    print(f"run {report.run_id}: {report.written} samples written, {report.rejected} rejected, "
          f"{report.already_done} already done, {report.pending} still to do (of {report.planned}) -> {report.out_dir}")
    if report.input_problems:
        print(f"{len(report.input_problems)} input problems (also in rejected.jsonl):")
        for problem in report.input_problems[:10]:
            print(f"  {problem.where}: {problem.reason}")
        if len(report.input_problems) > 10:
            print(f"  ... and {len(report.input_problems) - 10} more")
    ledger = report.ledger
    if ledger.get("calls"):
        print(f"requests: {ledger['calls']} ({ledger['retries']} retries, {ledger['failed_calls']} failed), tokens "
              f"{ledger['tokens_in']} in / {ledger['tokens_out']} out, ${ledger['cost_usd']:.4f}")
    for note in report.notes:
        print(f"note: {note}")
    if report.status != "complete":
        print(f"stopped: {report.stop_reason}")
        return EXIT_STOPPED
    return 0


def _export(args, settings: Settings) -> int:
    reviewed = reviewed_versions(args.run_dir, args.data_dir or settings.data_dir)
    report = export(args.run_dir, args.format, args.out, val_fraction=args.val_fraction, seed=args.seed,
                    reviewed=reviewed)
    origin = (f"the latest accepted versions of {report.train_samples + report.val_samples} reviewed samples (of "
              f"{report.generated_samples} generated)" if report.reviewed else
              f"all {report.generated_samples} generated samples (the run was not reviewed)")
    print(f"exported {origin}")
    print(f"train: {report.train_samples} samples, {report.train_images} images, {report.train_records} records -> "
          f"{report.train_file}")
    if report.val_file is not None:
        print(f"val: {report.val_samples} samples, {report.val_images} images, {report.val_records} records -> "
              f"{report.val_file}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        overrides = {name: value for name, value in vars(args).items()
                     if name.startswith(SETTING_PREFIX) and value is not None}
        settings = dataclasses.replace(settings, **overrides)
        return _generate(args, settings) if args.command == "generate" else _export(args, settings)
    except (EmoError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
