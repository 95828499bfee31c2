"""The study's command line (one function per subcommand).

    python -m emo_core.study pairs ours.csv human.csv --out pairs.csv [--system-a ours --system-b human]
    python -m emo_core.study create NAME --pairs pairs.csv
    python -m emo_core.study invite NAME --raters N           # N personal links, printed once
    python -m emo_core.study revoke NAME --rater 3
    python -m emo_core.study results NAME [--json] [--chart chart.png]
    python -m emo_core.study export NAME [--out votes.csv]
    python -m emo_core.study close NAME

The data folder and the links' base address come from the settings (``EMO_DATA_DIR``,
``EMO_STUDY_BASE_URL``) or ``--data-dir`` / ``--base-url``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Sequence

from ..errors import EmoError
from ..settings import Settings
from . import (close_study, create_study, export_votes, invite_raters, join_caption_files, results_text,
               revoke_rater, study_results, write_chart)


def cmd_pairs(settings: Settings, args) -> None:
    text, counts = join_caption_files(args.captions_a, args.captions_b, system_a=args.system_a,
                                      system_b=args.system_b)
    args.out.write_text(text, encoding="utf-8")
    print(f"{counts['pairs']} pairs written to {args.out.name}; images only in the first file: {counts['only_a']}, "
          f"only in the second: {counts['only_b']}", file=sys.stderr)


def cmd_create(settings: Settings, args) -> None:
    info = create_study(settings, args.name, args.pairs)
    print(f"study {info.name} created with {info.items} items; invite raters with: "
          f"python -m emo_core.study invite {info.name} --raters N", file=sys.stderr)


def cmd_invite(settings: Settings, args) -> None:
    links = invite_raters(settings, args.name, args.raters)
    print("Each link is personal and shown only now; send one to each rater.", file=sys.stderr)
    for number, link in links:
        print(f"rater {number}\t{link}")


def cmd_revoke(settings: Settings, args) -> None:
    revoke_rater(settings, args.name, args.rater)
    print(f"rater {args.rater} of {args.name} can no longer vote", file=sys.stderr)


def cmd_close(settings: Settings, args) -> None:
    close_study(settings, args.name)
    print(f"study {args.name} is closed", file=sys.stderr)


def cmd_results(settings: Settings, args) -> None:
    results = study_results(settings, args.name, resamples=args.resamples, seed=args.seed)
    print(json.dumps(results, indent=2) if args.json else results_text(results))
    if args.chart:
        write_chart(results, args.chart)


def cmd_export(settings: Settings, args) -> None:
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as out:
            rows = export_votes(settings, args.name, out)
        print(f"{rows} votes written to {args.out.name}", file=sys.stderr)
    else:
        export_votes(settings, args.name, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emo_core.study", description="Blind pairwise caption study.")
    parser.add_argument("--data-dir", type=Path, default=None, help="data folder (default: the settings' data_dir)")
    parser.add_argument("--base-url", default=None, help="address of the app in raters' links (study_base_url)")
    commands = parser.add_subparsers(dest="command", required=True)
    pairs = commands.add_parser("pairs", help="join two batch caption CSVs on the image into a pairs CSV")
    pairs.add_argument("captions_a", type=Path)
    pairs.add_argument("captions_b", type=Path)
    pairs.add_argument("--out", type=Path, required=True)
    pairs.add_argument("--system-a", default="", help="name of the first file's system (default: backend:model)")
    pairs.add_argument("--system-b", default="")
    pairs.set_defaults(run=cmd_pairs)
    create = commands.add_parser("create", help="create a study from a pairs CSV")
    create.add_argument("name")
    create.add_argument("--pairs", type=Path, required=True,
                        help="CSV with columns image, caption_a, system_a, caption_b, system_b")
    create.set_defaults(run=cmd_create)
    invite = commands.add_parser("invite", help="print personal links for N new raters")
    invite.add_argument("name")
    invite.add_argument("--raters", type=int, required=True)
    invite.set_defaults(run=cmd_invite)
    revoke = commands.add_parser("revoke", help="stop one rater's link (their votes stay)")
    revoke.add_argument("name")
    revoke.add_argument("--rater", type=int, required=True)
    revoke.set_defaults(run=cmd_revoke)
    results = commands.add_parser("results", help="statistics of the votes")
    results.add_argument("name")
    results.add_argument("--json", action="store_true")
    results.add_argument("--chart", type=Path, default=None, help="also write a bar chart (PNG)")
    results.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    results.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    results.set_defaults(run=cmd_results)
    export = commands.add_parser("export", help="raw votes as CSV, one row per trial")
    export.add_argument("name")
    export.add_argument("--out", type=Path, default=None, help="CSV file (default: standard output)")
    export.set_defaults(run=cmd_export)
    close = commands.add_parser("close", help="stop taking votes")
    close.add_argument("name")
    close.set_defaults(run=cmd_close)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        overrides = {key: value for key, value in (("data_dir", args.data_dir), ("study_base_url", args.base_url))
                     if value is not None}
        settings = dataclasses.replace(settings, **overrides)
        args.run(settings, args)
    except (EmoError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
