"""Benchmark of the video + audio pipeline on the offline default. Prints figures.

    .venv/bin/python -m benchmarks.bench_video            # 10 s, 640x360, 30 fps clip with speech, 5 runs
    .venv/bin/python -m benchmarks.bench_video --llm-process inline --llm-embedding q8_0   # the old set-up

The clip: the astronaut's face (a real photo) whose jaw drops at 5 s, with about 10 s of espeak-ng
speech. Reported: each stage's median, the time until the reason starts (the issue's "analysis up
to the reason"), the reason's generation speed, and the memory the video models add.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TEXT = ("I really did not expect this at all. We worked on the project for months, and today it finally "
        "came together, and everyone in the room started clapping.")


def make_clip(folder: Path) -> Path:
    from tests import media, media_av

    speech = media_av.speech_wav(TEXT, folder / "speech.wav", pitch=55, speed=150)
    frames = media.expression_frames(n_frames=300, peak=150)
    return media_av.mux_video(media.frame_function(frames, 30), speech, folder / "clip.mp4", 30, duration=10.0)


def main(runs: int, llm_process: str, llm_embedding: str) -> None:
    import emo_core
    from emo_core.llm import get_small_lm

    process = psutil.Process()
    with tempfile.TemporaryDirectory() as folder:
        clip = make_clip(Path(folder))
        settings = emo_core.Settings(preload=False, llm_process=llm_process, llm_embedding=llm_embedding)
        rss_start = process.memory_info().rss
        started = time.perf_counter()
        lm = get_small_lm(settings).load()
        print(f"language model ({llm_process}, token embedding {llm_embedding}): ready in "
              f"{time.perf_counter() - started:.2f} s, of which llama.cpp's load {lm.load_seconds:.2f} s")
        rss_lm = process.memory_info().rss + _child_rss(lm)
        started = time.perf_counter()
        emo_core.warm_up(settings)
        print(f"warm-up (image + audio models, reason prompt read once): {time.perf_counter() - started:.2f} s")
        rss_warm = process.memory_info().rss + _child_rss(lm)
        generations = _count_generations(lm)
        first = emo_core.analyze_video(clip, settings=settings)
        print(f"first analysis (cold caches): {first.timings['total']:.2f} s; peak frame {first.peak_index}, "
              f"transcript {len(first.transcript.split())} words; reason {_written_by(first, generations)}")
        stages: dict[str, list[float]] = {}
        speeds, outcomes = [], []
        for _ in range(runs):
            generations.clear()
            result = emo_core.analyze_video(clip, settings=settings)
            outcomes.append(_written_by(result, generations))
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
            if result.reason_by_model and lm.stats:
                speeds.append(lm.stats.tokens_per_second)
        rss_end = process.memory_info().rss + _child_rss(lm)
    print(f"10 s 640x360 30 fps clip with speech, {runs} warm runs, medians:")
    for stage, values in stages.items():
        print(f"  {stage:28s} {np.median(values):6.3f} s")
    print(f"analysis up to the reason: median {np.median(stages['until_reason']):.2f} s, "
          f"max {np.max(stages['until_reason']):.2f} s")
    print(f"reasons: {', '.join(outcomes)}")
    if speeds:
        print(f"reason generation: median {np.median(speeds):.0f} tokens/s over {len(speeds)} runs")
    else:
        print(f"reason: the model's text was not used ({result.reason_note})")
    print(f"resident memory (this process + the model process, if any): +{(rss_lm - rss_start) / 2**20:.0f} MiB "
          f"for the language model, +{(rss_warm - rss_lm) / 2**20:.0f} MiB for the image+audio models, "
          f"+{(rss_end - rss_warm) / 2**20:.0f} MiB more after the video runs; total {rss_end / 2**20:.0f} MiB")
    print("reason:", result.reason)


def _count_generations(lm) -> list[str]:
    """Wrap ``lm.stream`` so each generation the reason writer asks for is counted (a retry is a second)."""
    generations: list[str] = []
    stream = lm.stream

    def counted(prompt: str, **options):
        generations.append(prompt)
        return stream(prompt, **options)

    lm.stream = counted
    return generations


def _written_by(result, generations: list[str]) -> str:
    if not result.reason_by_model:
        return f"template after {len(generations)} generation(s)"
    return "model, first try" if len(generations) == 1 else f"model, attempt {len(generations)}"


def _child_rss(lm) -> int:
    pid = getattr(lm, "pid", None)  # a WorkerLM's process; SmallLM runs in this one
    return psutil.Process(pid).memory_info().rss if pid else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--llm-process", choices=("worker", "inline"), default="worker")
    parser.add_argument("--llm-embedding", choices=("q4_0", "q8_0"), default="q4_0")
    args = parser.parse_args()
    main(args.runs, args.llm_process, args.llm_embedding)
