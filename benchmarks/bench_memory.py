"""Peak memory of one request: a 60 s 1080p clip through ``analyze_video`` and a 50-photo batch through
``analyze_images``, each in a fresh process. Prints figures.

    .venv/bin/python -m benchmarks.bench_memory                       # both, inputs made in a temporary folder
    .venv/bin/python -m benchmarks.bench_memory --inputs bench-inputs  # keep (and reuse) the generated inputs
    .venv/bin/python -m benchmarks.bench_memory --only video

The clip: 1920x1080, 30 fps, 60 s, H.264 + AAC; the astronaut's face (a real photo, scaled up) whose jaw
drops every 10 s, and 60 s of espeak-ng speech. The batch: 50 JPEG photos of 12-24 megapixels made from
scikit-image's sample photos (a phone camera's sizes: the realistic worst case of a 50-image upload).

Each workload runs in a child process that first loads and warms the offline models it needs (the
app does that at start), then handles the one request. Reported per workload: the process's resident
memory before the request, the peak during it (sampled every 10 ms with psutil) and the kernel's peak
for the whole child (``ru_maxrss``, model loading included), the peak of its ffmpeg processes together
(sampled the same way), and the request's wall time and CPU time (the CPU time varies less than the
wall time on a shared machine). The video request is the analysis without the language model's reason
(``task="emotion"``): the reason model lives in its own long-lived process, not in the request.
"""

from __future__ import annotations

import argparse
import json
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

CLIP_SECONDS, CLIP_FPS, CLIP_SIZE = 60, 30, (1920, 1080)
JAW_DROP_EVERY_S = 10  # the face's jaw drops (and closes again) once in every such stretch
BATCH_SIZE = 50
SENTENCES = [
    "I really did not expect this at all, and I have to tell you about it.",
    "We worked on the project for months, and today it finally came together.",
    "Everyone in the room started clapping, and some people were even crying.",
    "Honestly, I am still shaking a little, it was such a strange afternoon.",
    "Tomorrow we will present the results to the board, and then we celebrate.",
    "My sister called me twice, but I could not answer, because of the noise.",
]


# --- inputs -----------------------------------------------------------------------------------------

def make_clip(folder: Path) -> Path:
    """The 60 s 1080p clip (made once per ``folder``)."""
    path = folder / "clip_60s_1080p.mp4"
    if path.is_file():
        return path
    import cv2
    import numpy as np

    from tests import media, media_av

    parts = [media_av.speech_wav(text, folder / f"sentence_{i}.wav", pitch=45 + 5 * i, speed=140 + 5 * i)
             for i, text in enumerate(SENTENCES)]
    speech = media_av.concat_wavs(parts, folder / "speech_once.wav", gap=0.6)
    rounds = int(np.ceil(CLIP_SECONDS / media_av.wav_duration(speech)))
    speech = media_av.concat_wavs([speech] * rounds, folder / "speech.wav", gap=0.6)
    base = media.face_frame()
    peak_frame, rise = CLIP_FPS * JAW_DROP_EVERY_S // 2, 8
    cache: dict[int, np.ndarray] = {}

    def frame_at(t: float) -> np.ndarray:
        # jaw level from the frame's position in its 10 s stretch; the few distinct levels are cached
        offset = int(round(t * CLIP_FPS)) % (CLIP_FPS * JAW_DROP_EVERY_S)
        level = max(0, rise - abs(offset - peak_frame))
        if level not in cache:
            small = media.jaw_drop(base, 16.0 * level / rise)
            cache[level] = cv2.resize(small, CLIP_SIZE, interpolation=cv2.INTER_CUBIC)
        return cache[level]

    media_av.mux_video(frame_at, speech, path, CLIP_FPS, size=CLIP_SIZE, duration=float(CLIP_SECONDS))
    return path


def make_photos(folder: Path) -> list[Path]:
    """50 JPEG photos of 12-24 MP from scikit-image's sample photos, some with faces (made once)."""
    from PIL import Image
    from skimage import data

    from tests import media

    photos = folder / "photos"
    paths = [photos / f"photo_{index:02d}.jpg" for index in range(BATCH_SIZE)]
    if all(path.is_file() for path in paths):
        return paths
    photos.mkdir(parents=True, exist_ok=True)
    sources = [data.astronaut, data.coffee, data.chelsea, data.rocket, data.hubble_deep_field,
               data.immunohistochemistry, data.retina, data.camera, data.coins, data.brick]
    sizes = [(4000, 3000), (4624, 3468), (5472, 3648), (6000, 4000), (3000, 4000)]  # 12-24 MP, one portrait
    for index, path in enumerate(paths):
        size = sizes[index % len(sizes)]
        if index % 7 == 3:
            image = media.group_photo(3 + index % 4, (1920, 1280), seed=index)  # 3-6 real faces
        else:
            image = Image.fromarray(sources[index % len(sources)]()).convert("RGB")
        image.resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
    return paths


# --- one request in a child process -----------------------------------------------------------------

class PeakSampler:
    """The largest resident set size of this process, and of its child processes together (ffmpeg),
    seen every ``interval`` seconds."""

    def __init__(self, interval: float = 0.01):
        import psutil

        self._process, self._interval = psutil.Process(), interval
        self.peak = self._process.memory_info().rss
        self.children_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        self.peak = max(self.peak, self._process.memory_info().rss)
        children = 0
        for process in self._process.children(recursive=True):
            try:
                # only once it runs ffmpeg: right after the fork a child shows this process's pages
                if "ffmpeg" in process.name():
                    children += process.memory_info().rss
            except psutil.Error:  # ended between the listing and the reading
                pass
        self.children_peak = max(self.children_peak, children)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def child(workload: str, inputs: list[str]) -> None:
    import psutil

    import emo_core
    from emo_core.backends import get_backend
    from emo_core.cues.perception import get_perceiver

    settings = emo_core.Settings(preload=False)
    get_perceiver(settings.min_face_score, settings.max_faces).warm_up()
    get_backend(settings.backend, settings).load()
    if workload == "video":
        from emo_core.audio import warm_up as warm_up_audio

        warm_up_audio()
    before = psutil.Process().memory_info().rss
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    with PeakSampler() as sampler:
        if workload == "video":
            result = emo_core.analyze_video(inputs[0], settings=settings, task="emotion")
            summary = (f"peak frame {result.peak_index}, {result.video['frames_sampled']} frames sampled, "
                       f"{len(result.transcript.split())} words")
        else:
            rows = emo_core.analyze_images(inputs, "mikels8", settings=settings)
            summary = f"{sum(row.result is not None for row in rows)} of {len(rows)} analysed"
    wall = time.perf_counter() - started
    cpu = [after - start for after, start in zip(_cpu_seconds(), cpu_before)]
    print(json.dumps({
        "before_mib": before / 2**20, "peak_mib": sampler.peak / 2**20,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10,
        "children_peak_mib": sampler.children_peak / 2**20,
        "wall_s": wall, "cpu_s": cpu[0], "children_cpu_s": cpu[1], "summary": summary,
    }))


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process, and of its ended child processes (ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run_child(workload: str, inputs: list[Path]) -> dict:
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", "--child", workload, *map(str, inputs)],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {workload} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(title: str, figures: dict) -> None:
    print(f"{title} ({figures['summary']}):")
    print(f"  peak resident memory during the request {figures['peak_mib']:.0f} MiB: "
          f"+{figures['peak_mib'] - figures['before_mib']:.0f} MiB over the {figures['before_mib']:.0f} MiB "
          f"of the warmed-up process (ru_maxrss of the whole process {figures['ru_maxrss_mib']:.0f} MiB)")
    print(f"  its ffmpeg processes together: {figures['children_peak_mib']:.0f} MiB at most")
    print(f"  wall time {figures['wall_s']:.1f} s; CPU time {figures['cpu_s']:.1f} s in the process, "
          f"{figures['children_cpu_s']:.1f} s in ffmpeg")


def main(folder: Path, only: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if only in (None, "video"):
        clip = make_clip(folder)
        report(f"analyze_video, {CLIP_SECONDS} s {CLIP_SIZE[0]}x{CLIP_SIZE[1]} {CLIP_FPS} fps clip with speech",
               run_child("video", [clip]))
    if only in (None, "images"):
        photos = make_photos(folder)
        megapixels = [w * h / 1e6 for w, h in (_jpeg_size(p) for p in photos)]
        report(f"analyze_images, {len(photos)} JPEG photos of {min(megapixels):.0f}-{max(megapixels):.0f} MP "
               f"({sum(p.stat().st_size for p in photos) / 1e6:.0f} MB)", run_child("images", photos))


def _jpeg_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, help="folder for the generated clip and photos (reused if present)")
    parser.add_argument("--only", choices=("video", "images"))
    parser.add_argument("--child", choices=("video", "images"), help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.paths)
    elif args.inputs:
        main(args.inputs, args.only)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
            main(Path(scratch), args.only)
