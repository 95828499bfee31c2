"""CPU throughput and peak memory of the fine-tuning recipes on the tiny random models (a regression baseline).

    .venv/bin/python -m benchmarks.bench_finetune                      # every set-up, 20 steps each
    .venv/bin/python -m benchmarks.bench_finetune --steps 40 --width 64 --threads 1

Each set-up trains in a process of its own (so the peak resident memory is its own) on a generated
dataset (8 images x 4 question-answer turns, batch 4), evaluation and checkpoints off except the last.
Printed per set-up: the median samples/s and tokens/s over the logged steps after the first two
(warm-up), and the process's peak resident memory. Tiny models only: nothing here says how fast a 7B
model trains on a GPU (see the README's memory table for what fits).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETUPS = {
    "emovit / InstructBLIP (Vicuna-style)": ("emovit", "instructblip", []),
    "emovit / InstructBLIP (T5)": ("emovit", "instructblip_t5", []),
    "llava_lora / LLaVA, LoRA r=8": ("llava_lora", "llava", ["--lora-r", "8", "--lora-alpha", "16"]),
    "llava_lora / LLaVA, LoRA r=8, gradient checkpointing": (
        "llava_lora", "llava", ["--lora-r", "8", "--lora-alpha", "16", "--gradient-checkpointing"]),
}


def child(recipe: str, family: str, extra: list[str], steps: int, width: int, threads: int) -> dict:
    import contextlib
    import io

    import torch

    from finetune.emovit import main
    from tests.finetune_fixtures import write_dataset
    from tests.tiny_models import tiny_model_dir

    torch.set_num_threads(threads)
    root = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    write_dataset(root, 8, "llava")
    args = ["--model", str(tiny_model_dir(family, width)), "--data", str(root / "train.json"),
            "--image-folder", str(root / "images"), "--output-dir", str(root / "out"), "--max-steps", str(steps),
            "--batch-size", "4", "--warmup-steps", "0", "--warmup-ratio", "0", "--save-every", "0",
            "--log-every", "1", "--learning-rate", "1e-3", *extra]
    with contextlib.redirect_stdout(io.StringIO()):
        if main(args, recipe=recipe) != 0:
            raise SystemExit("training failed")
    with open(root / "out" / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[2:]
    return {"samples_per_s": statistics.median(float(r["samples_per_s"]) for r in rows),
            "tokens_per_s": statistics.median(float(r["tokens_per_s"]) for r in rows),
            "peak_mib": max(float(r["peak_memory_mib"]) for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--width", type=int, default=32, help="hidden width of the tiny models")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        recipe, family, extra = SETUPS[args.child]
        print(json.dumps(child(recipe, family, extra, args.steps, args.width, args.threads)))
        return
    print(f"tiny models, hidden width {args.width}, batch 4, {args.steps} steps, {args.threads} torch thread(s), CPU")
    for name in SETUPS:
        done = subprocess.run([sys.executable, "-m", "benchmarks.bench_finetune", "--child", name, "--steps",
                               str(args.steps), "--width", str(args.width), "--threads", str(args.threads)],
                              cwd=REPO, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}")
            continue
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: {figures['samples_per_s']:.1f} samples/s, {figures['tokens_per_s']:.0f} tokens/s, "
              f"peak resident memory {figures['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
