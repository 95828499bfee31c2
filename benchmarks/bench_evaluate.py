"""Throughput and memory of an evaluation run with the offline backend. Prints figures.

    .venv/bin/python -m benchmarks.bench_evaluate                 # 200 images, the three built-in instructions
    .venv/bin/python -m benchmarks.bench_evaluate --images 50 --instructions sensitivity_1,sensitivity_2

The dataset: ``--images`` generated 640x480 JPEGs in a folder per FER-7 class (three in four hold one to
three real faces cut from scikit-image's astronaut photo, placed at random on a blurred background;
the rest are drawn scenes without a face), each different. Measured in one process, after the models
are loaded and warmed (the app does that at start; the load is reported on its own):

- the first run (every answer asked: load, normalise, faces and expressions, records written and
  fsynced), then a cached rerun of the same command (nothing asked), both including the summary with
  1000 bootstrap resamples per instruction;
- the cached rerun again through the command line in a fresh process (imports included);
- the peak resident memory during the runs (psutil, sampled every 10 ms) and the process's ``ru_maxrss``.

Images/s counts images, whatever the number of instructions: the offline label does not read the
instruction, so each image is analysed once and its answer recorded under every instruction.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parent.parent
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def make_images(folder: Path, count: int, seed: int = 0) -> None:
    import numpy as np
    from PIL import ImageFilter

    sys.path.insert(0, str(ROOT))
    from tests import media

    rng = np.random.default_rng(seed)
    background = media.coffee().resize((640, 480)).filter(ImageFilter.GaussianBlur(6))
    head = media.astronaut().crop((130, 20, 330, 240))
    for index in range(count):
        label = LABELS[index % len(LABELS)]
        (folder / label).mkdir(parents=True, exist_ok=True)
        if index % 4 == 3:
            image = media.drawn_scene((640, 480), color=tuple(int(c) for c in rng.integers(20, 235, 3)))
        else:
            image = background.copy()
            for _ in range(1 + index % 3):
                scale = rng.uniform(0.5, 0.9)
                tile = head.resize((int(head.width * scale), int(head.height * scale)))
                x, y = int(rng.integers(0, 640 - tile.width)), int(rng.integers(0, 480 - tile.height))
                image.paste(tile, (x, y))
        image.save(folder / label / f"img{index:04d}.jpg", quality=90)


class PeakMemory:
    def __init__(self):
        import psutil

        self.process, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--instructions", default="categorical,sensitivity_1,sensitivity_2")
    parser.add_argument("--workers", type=int, default=2, help="eval_workers (samples in flight)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch CPU threads (the command line's "
                                                                      "default for the offline backend: 1; 0: torch's own)")
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    from emo_core import Settings, get_backend
    from emo_core.cues.perception import get_perceiver
    from emo_core.evaluate import instructions, load_dataset, run_evaluation

    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as folder:
        folder = Path(folder)
        started = time.perf_counter()
        make_images(folder / "data", args.images)
        print(f"generated {args.images} images (640x480) in {time.perf_counter() - started:.1f} s")
        settings = Settings(preload=False, eval_workers=args.workers)
        started = time.perf_counter()
        get_perceiver(settings.min_face_score, settings.max_faces).warm_up()
        get_backend("offline", settings).load()
        print(f"offline models loaded and warmed: {time.perf_counter() - started:.1f} s")
        chosen = instructions.by_ids(args.instructions)
        import psutil

        before = psutil.Process().memory_info().rss
        with PeakMemory() as memory:
            started = time.perf_counter()
            data = load_dataset(folder / "data", "fer7")
            loaded = time.perf_counter() - started
            first = run_evaluation(data, folder / "run", chosen, settings=settings)
            first_seconds = time.perf_counter() - started
            started = time.perf_counter()
            cached = run_evaluation(load_dataset(folder / "data", "fer7"), folder / "run", chosen, settings=settings)
            cached_seconds = time.perf_counter() - started
        n = len(data.samples)
        print(f"dataset read and checked (hashes, headers): {loaded * 1000:.0f} ms")
        print(f"first run: {n} images x {len(chosen)} instructions in {first_seconds:.2f} s = "
              f"{n / first_seconds:.1f} images/s ({first.answered} images analysed, {first.cached} cached)")
        print(f"cached rerun: {cached_seconds:.3f} s = {n / cached_seconds:.0f} images/s "
              f"({cached.answered} analysed, {cached.cached} answers from predictions.jsonl)")
        accuracy = first.summary["per_instruction"][chosen[0].id]
        print(f"(accuracy {accuracy['accuracy']:.3f}, unparsed {accuracy['unparsed']} of {n}: labels were assigned "
              "at random, the figure only shows the run is complete)")
        print(f"memory: {before / 2**20:.0f} MiB before the runs, peak {memory.peak / 2**20:.0f} MiB during them; "
              f"ru_maxrss of the process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        started = time.perf_counter()
        command = [sys.executable, "-m", "emo_core.evaluate", "run", str(folder / "data"), "--class-set", "fer7",
                   "--out", str(folder / "run"), "--instructions", args.instructions, "--quiet"]
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        print(f"cached rerun through the command line, fresh process (imports included): "
              f"{time.perf_counter() - started:.2f} s")
        print(f"workers {args.workers}, torch threads {args.torch_threads or 'default'}; "
              f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (the machine is shared)")


if __name__ == "__main__":
    main()
