"""``python -m emo_core.review``: import a generator run, add a reviewer account, print the dashboard.

    python -m emo_core.review import runs/emoset-1            # idempotent; prints what was added
    python -m emo_core.review add-reviewer alice < pw.txt     # password from stdin, never a flag
    python -m emo_core.review status                          # the dashboard figures as JSON
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ..accounts import add_command, data_dir_option
from ..settings import Settings
from ..store import Store
from . import RunFolderError, dashboard, import_run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emo_core.review", description="The review desk's commands.")
    data_dir_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    imports = commands.add_parser("import", help="load a generator run folder into the review store")
    imports.add_argument("folder", type=Path)
    imports.add_argument("--overlap", type=float, default=None,
                         help="share reviewed by two annotators (default: the review_overlap setting)")
    reviewer = commands.add_parser("add-reviewer", help="create a reviewer account; the password is read from stdin")
    reviewer.add_argument("name")
    reviewer.add_argument("--replace", action="store_true", help="set a new password of an existing account")
    commands.add_parser("status", help="print the dashboard figures as JSON")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    data_dir = args.data_dir if args.data_dir is not None else settings.data_dir
    if args.command == "add-reviewer":
        return add_command(args.name, "reviewer", data_dir, args.replace)
    store = Store.for_data_dir(data_dir)
    if args.command == "status":
        print(json.dumps(dashboard(store), indent=2))
        return 0
    overlap = settings.review_overlap if args.overlap is None else args.overlap
    if not 0.0 <= overlap <= 1.0:
        parser.error("--overlap is a share in [0, 1]")
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    try:
        report = import_run(store, args.folder, overlap)
    except RunFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(f"skipped or incomplete: {problem}", file=sys.stderr)
    if report.torn_tail_bytes:
        print(f"note: the last line of samples.jsonl is half-written ({report.torn_tail_bytes} bytes); "
              "import again once the generator has finished it", file=sys.stderr)
    print(f"run {report.run_id}: {report.added} samples added ({report.overlap_added} for two annotators), "
          f"{report.already_imported} already imported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
