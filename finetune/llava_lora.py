"""The paper's transfer to LLaVA: LoRA (peft) on the language model of a LLaVA-1.5-family model.

    python -m finetune.llava_lora --model llava-hf/llava-1.5-7b-hf --data train.json --image-folder images \
        --output-dir runs/llava [--quantization 4bit] [--train-projector] [--merge]

Same data and options as ``finetune.emovit``; the vision tower and the projector stay frozen unless
``--train-projector``. ``--merge`` writes the merged model to ``OUT/final`` (what the ``hf`` backend
loads); without it ``OUT/final`` holds the adapter for ``peft.PeftModel.from_pretrained``.
"""

from __future__ import annotations

import sys

from .emovit import main as _main


def main(argv: list[str] | None = None) -> int:
    return _main(argv, recipe="llava_lora")


if __name__ == "__main__":
    sys.exit(main())
