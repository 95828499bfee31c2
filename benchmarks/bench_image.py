"""Benchmark of the image tab on the offline default: latency, cold start, memory. Prints figures.

    .venv/bin/python -m benchmarks.bench_image            # 20 warm runs on 1920x1280 photos with 3-6 faces
    .venv/bin/python -m benchmarks.bench_image --runs 50

Each run analyses a different generated group photo (so no cached perception is reused).
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
ROOT = Path(__file__).resolve().parent.parent


def latency(runs: int) -> None:
    import emo_core
    from emo_core.cues.perception import get_perceiver
    from tests.media import group_photo

    settings = emo_core.Settings(preload=False)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    emo_core.warm_up(settings)
    print(f"models load + warm-up: {time.perf_counter() - started:.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(runs):
            path = Path(folder) / f"group_{index}.jpg"
            group_photo(3 + index % 4, (1920, 1280), seed=100 + index).save(path, quality=90)
            paths.append(path)
        emo_core.analyze_image(paths[0], settings=settings)  # first call outside the timing
        get_perceiver()._cache.clear()
        times, faces, drawn, stages = [], [], [], {}
        for index, path in enumerate(paths):
            drawn.append(3 + index % 4)
            t0 = time.perf_counter()
            result = emo_core.analyze_image(path, "mikels8", settings=settings)
            times.append(time.perf_counter() - t0)
            faces.append(len(result.faces))
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
    times_ms = np.array(times) * 1000
    print(f"analyze_image, 1920x1280 photos with 3-6 faces ({sum(faces)} of {sum(drawn)} faces found), {runs} runs, "
          f"torch threads {__import__('torch').get_num_threads()}:")
    print(f"  p50 {np.percentile(times_ms, 50):.0f} ms   p95 {np.percentile(times_ms, 95):.0f} ms   "
          f"min {times_ms.min():.0f} ms   max {times_ms.max():.0f} ms")
    print("  median per stage: " + ", ".join(f"{k} {np.median(v) * 1000:.0f} ms" for k, v in stages.items()
                                           if k != "total"))
    rss = process.memory_info().rss
    print(f"resident memory: {rss / 2**20:.0f} MiB with the offline models loaded "
          f"({(rss - rss_before) / 2**20:.0f} MiB over the bare interpreter with emo_core imported)")


def cold_start() -> None:
    from tests.app_process import free_port, start_app, stop_app

    port = free_port()
    started = time.perf_counter()
    server = start_app(["--port", str(port)], port, ready_path="")
    try:
        print(f"app cold start until the page is served: {time.perf_counter() - started:.1f} s")
        from gradio_client import Client, handle_file

        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict(handle_file(str(ROOT / "assets" / "astronaut.jpg")), "mikels8", api_name="/analyze_image")
        print(f"app cold start until the first analysis is answered: {time.perf_counter() - started:.1f} s")
        print(f"app server resident memory after it: {psutil.Process(server.pid).memory_info().rss / 2**20:.0f} MiB")
    finally:
        stop_app(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--skip-cold-start", action="store_true")
    args = parser.parse_args()
    if not args.skip_cold_start:
        cold_start()
    latency(args.runs)
