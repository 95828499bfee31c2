"""Benchmark of the instruction-data generator's own overhead, against a local endpoint that answers at once.

    .venv/bin/python -m benchmarks.bench_datagen                       # 200 images, concurrency 16
    .venv/bin/python -m benchmarks.bench_datagen --images 400 --concurrency 16 --rounds 3

The stub endpoint (tests/chat_stub.py) runs in a process of its own and answers every request at once
with a well-formed answer, so what is timed is the generator: reading the input, hashing and opening
each image, measuring brightness and colorfulness (``--measure low-level``; the offline models are not
timed here), building the prompt, the HTTP round trip through the openai client, parsing and checking
the answer, the near-duplicate check, and appending each sample to samples.jsonl (flushed and fsynced).
Printed per round: wall time per LLM-written sample and samples per second, and the generator
process's CPU time per sample (which excludes the stub's work).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images, split over two classes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from emo_core import Settings
    from emo_core.datagen import generate
    from tests.datagen_fixtures import class_folders

    stub = subprocess.Popen([sys.executable, "-m", "tests.chat_stub"], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        base_url = stub.stdout.readline().strip()
        settings = Settings(datagen_base_url=base_url, datagen_model="stub-model", datagen_measure="low-level",
                            datagen_concurrency=args.concurrency, datagen_api_key_env="EMOLENS_BENCH_NO_KEY",
                            preload=False)
        with tempfile.TemporaryDirectory(prefix="bench-datagen-") as scratch:
            root = class_folders(Path(scratch) / "in", {"awe": args.images // 2, "fear": args.images - args.images // 2})
            # warm-up: imports, the openai client, the first connections
            generate(root, Path(scratch) / "warm", "mikels8", types=["reasoning"], per_class=4, settings=settings)
            per_sample, rates, cpu_per_sample = [], [], []
            for round_number in range(args.rounds):
                started, cpu_started = time.perf_counter(), cpu_seconds()
                report = generate(root, Path(scratch) / f"run{round_number}", "mikels8",
                                  types=["conversation", "reasoning"], settings=settings)
                seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
                assert report.status == "complete" and report.rejected == 0, report
                llm_samples = report.written
                per_sample.append(seconds / report.written * 1000)
                rates.append(report.written / seconds)
                cpu_per_sample.append(cpu / report.written * 1000)
                print(f"round {round_number + 1}: {report.written} samples in {seconds:.2f} s: "
                      f"{per_sample[-1]:.2f} ms/sample, {rates[-1]:.0f} samples/s, generator CPU "
                      f"{cpu_per_sample[-1]:.2f} ms/sample")
            started = time.perf_counter()
            report = generate(root, Path(scratch) / "categorical", "mikels8", types=["categorical"], settings=settings)
            categorical_ms = (time.perf_counter() - started) / report.written * 1000
            started = time.perf_counter()
            rerun = generate(root, Path(scratch) / "run0", "mikels8", types=["conversation", "reasoning"],
                             settings=settings)
            rerun_seconds = time.perf_counter() - started
            assert rerun.written == 0
    finally:
        stub.terminate()
        stub.wait()
    print(f"\nconcurrency {args.concurrency}, {args.images} images, {llm_samples} LLM-written samples per round:")
    print(f"  overhead per sample (wall): median {statistics.median(per_sample):.2f} ms "
          f"(rounds: {', '.join(f'{v:.2f}' for v in per_sample)})")
    print(f"  samples/s: median {statistics.median(rates):.0f}")
    print(f"  generator CPU per sample: median {statistics.median(cpu_per_sample):.2f} ms")
    print(f"  categorical only (no LLM call): {categorical_ms:.2f} ms/sample")
    print(f"  rerun of a finished run (nothing to do): {rerun_seconds:.2f} s")


if __name__ == "__main__":
    main()
