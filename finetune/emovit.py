"""EmoVIT's recipe: Q-Former-only instruction tuning of InstructBLIP.

    python -m finetune.emovit --model Salesforce/instructblip-vicuna-7b --data train.json \
        --val-data train_val.json --image-folder images --output-dir runs/emovit [--config finetune/configs/emovit.yaml]

The vision encoder and the LLM are frozen; the Q-Former, its query tokens and the language projection
train; the instruction enters the Q-Former as InstructBLIP does; the loss covers the answer tokens only.
``OUT/final`` loads in the app with ``EMO_BACKEND=hf EMO_MODEL=OUT/final``.
"""

from __future__ import annotations

import sys

from . import FinetuneError
from .config import from_args


def main(argv: list[str] | None = None, recipe: str = "emovit") -> int:
    from .trainer import run

    try:
        config = from_args(recipe, argv)
        run(config)
    except FinetuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
