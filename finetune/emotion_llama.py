"""Emotion-LLaMA's recipe: a tiny checkpoint to start from, and the two training stages.

    python -m finetune.emotion_llama init --tiny OUT
    python -m finetune.emotion_llama init --output OUT --audio facebook/hubert-large-ll60k \
        --global google/vit-large-patch16-224-in21k --local facebook/vit-mae-large \
        --temporal MCG-NJU/videomae-base --llm meta-llama/Llama-2-7b-chat-hf
    python -m finetune.emotion_llama train --stage 1 --model OUT --merr merr.json --videos clips \
        --output-dir runs/stage1 [--config finetune/configs/emotion_llama.yaml] [--max-steps N]
    python -m finetune.emotion_llama train --stage 2 --model runs/stage1/final --merr merr.json \
        --videos clips --output-dir runs/stage2

Stage 1 pre-trains on MERR's coarse descriptions (lr 1e-5), stage 2 tunes on the fine-grained reasons
and the labelled emotions (lr 1e-6); in both the four encoders and the LLM's weights are frozen and the
projections and LoRA adapters train. Both run on the same trainer as the other recipes
(``finetune.trainer``); the frozen encoders' features are cached on disk (``--feature-cache``, default
``OUT/feature-cache``) keyed by the clip's content and the encoder, so epochs after the first skip
them. ``OUT/final`` loads in the app with ``EMO_BACKEND=hf EMO_MODEL=OUT/final``.
"""

from __future__ import annotations

import argparse
import sys

from . import FinetuneError


def init_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune.emotion_llama init",
                                     description="write an Emotion-LLaMA checkpoint to train from")
    parser.add_argument("--tiny", metavar="OUT",
                        help="a tiny randomly initialised checkpoint (every sub-model tiny) for tests and trials")
    parser.add_argument("--output", metavar="OUT", help="a checkpoint composed of the pretrained parts below")
    parts = parser.add_argument_group("pretrained parts (hub ids or local folders), with --output")
    parts.add_argument("--audio", help="a HubertModel checkpoint, e.g. facebook/hubert-large-ll60k")
    parts.add_argument("--global", dest="global_", metavar="GLOBAL",
                       help="a ViT-family vision model for the peak frame, e.g. google/vit-large-patch16-224-in21k")
    parts.add_argument("--local", help="a MAE-pretrained ViT for the face crops, e.g. facebook/vit-mae-large")
    parts.add_argument("--temporal", help="a VideoMAE model for the face sequence, e.g. MCG-NJU/videomae-base")
    parts.add_argument("--llm", help="a LLaMA-family causal LM, e.g. meta-llama/Llama-2-7b-chat-hf")
    parts.add_argument("--lora-r", type=int, default=64)
    parts.add_argument("--lora-alpha", type=int, default=16)
    parts.add_argument("--lora-targets", default="q_proj,v_proj", help="comma-separated module names")
    parts.add_argument("--face-frames", type=int, default=8, help="face crops the local encoder averages")
    parts.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from .emotion_llama_init import write_from_parts, write_tiny

    if bool(args.tiny) == bool(args.output):
        parser.error("give either --tiny OUT or --output OUT with the pretrained parts")
    try:
        if args.tiny:
            out = write_tiny(args.tiny, seed=args.seed)
        else:
            sources = {"audio": args.audio, "global": args.global_, "local": args.local, "temporal": args.temporal,
                       "llm": args.llm}
            out = write_from_parts(args.output, sources, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                                   lora_targets=[t.strip() for t in args.lora_targets.split(",") if t.strip()],
                                   face_frames=args.face_frames, dtype=args.dtype, seed=args.seed)
    except FinetuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Emotion-LLaMA checkpoint written to {out}")
    return 0


def train_main(argv: list[str]) -> int:
    from .config import from_args
    from .trainer import run

    try:
        config = from_args("emotion_llama", argv)
        run(config)
    except FinetuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"init": init_main, "train": train_main}
    if not argv or argv[0] not in commands:
        print("usage: python -m finetune.emotion_llama {init,train} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
