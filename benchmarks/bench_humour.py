"""Benchmark of humour captions on the offline default: latency of the first caption and of all K. Prints figures.

    .venv/bin/python -m benchmarks.bench_humour                    # K=3, 3 rounds over 4 images
    .venv/bin/python -m benchmarks.bench_humour --threads 1 --rounds 5

Images (drawn or from registry packages, none in git): the astronaut photo (one smiling face), the
coffee photo (objects, no face), an empty drawn landscape, and a drawn meme (words for the OCR).
Each request is timed from its start, as the tab sees it: loading the image, the perception models,
the OCR, then the small language model writing caption after caption (each with its own seed; a
rejected text costs another). Seeds change between rounds, and a corner of each image, so neither a
caption nor the perception (memoised by the image's content hash) is a cached repeat.
The cold request (the language-model process starts, the models load) is shown apart.

The machine's load average is printed before and after: llama.cpp's threads wait for each other,
so on cores shared with other work two threads can be much slower than one (``--threads``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _images() -> dict:
    from tests import humour_media, media

    return {"astronaut (face)": media.astronaut(), "coffee (objects)": media.coffee(),
            "empty landscape": humour_media.empty_landscape(),
            "meme (words)": humour_media.meme("WHEN THE WIFI", "GOES DOWN")}


def _quantiles(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
    return f"median {statistics.median(values):.2f} s, p90 {p90:.2f} s, max {values[-1]:.2f} s (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=3, help="captions per request (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="requests per image (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="llm_threads (0: every core)")
    parser.add_argument("--llm-process", choices=("worker", "inline"), default="worker")
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args()

    from emo_core import Settings
    from emo_core.humour import humour_captions

    settings = Settings(preload=False, llm_threads=args.threads, llm_process=args.llm_process)
    images = _images()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; cores {os.cpu_count()}; "
          f"llm_threads {args.threads or 'all'}; llm_process {args.llm_process}; K={args.k}")

    started = time.perf_counter()
    cold = humour_captions(images["meme (words)"], args.k, args.temperature, 1000, settings=settings)
    print(f"cold request (models load, language-model process starts): first caption "
          f"{cold.timings.get('first_caption', float('nan')):.2f} s, all {len(cold.captions)} "
          f"{time.perf_counter() - started:.2f} s")

    firsts, alls, writing, per_caption, shortfalls, attempts = [], [], [], [], 0, []
    for round_index in range(args.rounds):
        for name, image in images.items():
            image = image.copy()  # a corner changed each round: another file, so perception is not a cached repeat
            image.paste((60 * round_index % 256, 0, 0), (0, 0, 16, 16))
            result = humour_captions(image, args.k, args.temperature, 100 * round_index, settings=settings)
            timings = result.timings
            firsts.append(timings["first_caption"] if result.captions else float("nan"))
            alls.append(timings["total"])
            writing.append(timings["captions"])
            per_caption.append(timings["captions"] / max(len(result.captions), 1))
            attempts.append(len(result.captions) + len(result.rejected))
            shortfalls += bool(result.shortfall)
            print(f"  round {round_index + 1} {name:18s} first {timings.get('first_caption', float('nan')):6.2f} s  "
                  f"all {timings['total']:6.2f} s  (perception {timings['perception']:.2f}, ocr {timings['ocr']:.2f}, "
                  f"captions {timings['captions']:.2f}; {len(result.captions)}/{args.k} captions from "
                  f"{attempts[-1]} texts)")
    firsts = [value for value in firsts if value == value]
    print(f"first caption, from the request's start: {_quantiles(firsts)}")
    print(f"all {args.k} captions, from the request's start: {_quantiles(alls)}")
    print(f"writing only (after perception and OCR), all {args.k}: {_quantiles(writing)}; "
          f"per accepted caption median {statistics.median(per_caption):.2f} s")
    print(f"texts written per request: median {statistics.median(attempts):g}, max {max(attempts)}; "
          f"requests short of {args.k}: {shortfalls} of {len(alls)}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
