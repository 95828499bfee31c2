"""``python -m emo_core.humour IMAGES --out captions.csv [--n 3] [--backend B --model M]``: see ``batch``.

IMAGES are image files and folders (the images directly inside). Settings come from ``EMO_*``
variables; ``--backend``/``--model`` override the configured model for this run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from ..errors import InvalidInputError
from ..settings import Settings
from .batch import caption_images, image_files
from .captions import DEFAULT_TEMPERATURE, MAX_CAPTIONS, checked_request


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emo_core.humour",
                                     description="Write humorous captions for images into a CSV, one row per caption.")
    parser.add_argument("images", nargs="+", type=Path, help="image files and folders of images")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write (its journal: <out>.jsonl)")
    parser.add_argument("--n", type=int, default=3, help=f"captions per image, 1-{MAX_CAPTIONS} (default 3)")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                        help=f"sampling temperature (default {DEFAULT_TEMPERATURE})")
    parser.add_argument("--seed", type=int, default=0, help="first seed; caption k uses one of seed, seed+1, ...")
    parser.add_argument("--backend", default=None, help="offline, hf or openai (default: EMO_BACKEND)")
    parser.add_argument("--model", default=None, help="model id or folder for hf / openai (default: EMO_MODEL)")
    args = parser.parse_args(argv)
    try:
        checked_request(args.n, args.temperature, args.seed)
    except InvalidInputError as exc:
        parser.error(str(exc))
    missing = [str(path) for path in args.images if not path.exists()]
    if missing:
        parser.error("not found: " + ", ".join(missing))
    try:
        settings = Settings.from_env()
        overrides = {name: value for name, value in (("backend", args.backend), ("model", args.model)) if value}
        settings = dataclasses.replace(settings, **overrides)
    except ValueError as exc:
        parser.error(str(exc))
    if not image_files(args.images):
        parser.error("no image files found in the folders given")
    from tqdm import tqdm

    def bar(files):
        return tqdm(files, unit="image", file=sys.stderr)

    counts = caption_images(args.images, args.out, n=args.n, temperature=args.temperature, seed=args.seed,
                            settings=settings, progress=bar)
    print(f"{counts.captions} captions for {counts.written + counts.skipped} images ({counts.written} written now, "
          f"{counts.skipped} already done), {counts.failed} failed -> {args.out}")
    return 0 if counts.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
