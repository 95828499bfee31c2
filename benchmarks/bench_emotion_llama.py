"""CPU figures for the tiny Emotion-LLaMA model (a regression baseline) and the feature cache's effect.

    .venv/bin/python -m benchmarks.bench_emotion_llama                # 6 clips, 4 epochs, 1 torch thread
    .venv/bin/python -m benchmarks.bench_emotion_llama --clips 8 --epochs 5 --threads 2

Printed: the MERR pipeline's reading of one clip (peak frame, face track, audio), the four encoders on
it, a scored answer over MER2023's six labels and a generated answer through the ``hf`` backend
(median of a few repeats); then stage-1 training on generated 1.5 s clips with one optimiser step per
epoch: the first epoch (every clip read and encoded) against later ones (features from the on-disk
cache), and a second run whose cache is already full. Tiny random models only: nothing here says how
fast the 7B set-up runs (see the README's memory table for what fits on a GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import statistics
import tempfile
import time
from pathlib import Path


def timed(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def epoch_seconds(out: Path) -> list[float]:
    with open(out / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    examples = len(rows[0]["samples"].split())
    return [examples / float(row["samples_per_s"]) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()

    import torch

    from emo_core import Settings
    from emo_core.backends import get_backend, user_message
    from emo_core.models.emotion_llama.clip_views import read_clip_views
    from finetune.emotion_llama import main as emotion_llama_main
    from tests.emotion_llama_fixtures import write_clip_set, write_merr

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="bench-emotion-llama-"))
    records = write_clip_set(root / "clips", args.clips)
    merr = write_merr(root / "merr.json", records)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        start = time.perf_counter()
        emotion_llama_main(["init", "--tiny", str(root / "tiny")])
        init_s = time.perf_counter() - start
    print(f"tiny Emotion-LLaMA (width 32, 2 layers per sub-model), CPU, {args.threads} torch thread(s)")
    print(f"init --tiny: {init_s:.2f} s")

    clip = root / "clips" / "clip00.mp4"
    settings = Settings(backend="hf", model=str(root / "tiny"), preload=False)
    views_s = timed(lambda: read_clip_views(clip, settings))
    backend = get_backend("hf", settings).load()
    from emo_core.backends import hf_loading

    loaded = hf_loading.acquire(backend.options)
    views = read_clip_views(clip, settings)
    arrays = {k: torch.from_numpy(v).unsqueeze(0) for k, v in loaded.processor.media_arrays(views).items()}
    with torch.no_grad():
        encode_s = timed(lambda: loaded.model.encode_media(**arrays), 5)
    messages = user_message("The person in video says: nothing. [emotion] What is the emotion?", video=str(clip))
    labels = ["neutral", "angry", "happy", "sad", "worried", "surprise"]
    backend.score(messages, labels)  # fills the clip-views cache
    score_s = timed(lambda: backend.score(messages, labels), 5)
    _, inputs = backend.model_inputs(messages)
    with torch.no_grad():  # exactly 32 new tokens (a random model may otherwise stop early)
        generate_s = timed(lambda: loaded.model.generate(**inputs, max_new_tokens=32, min_new_tokens=32,
                                                         do_sample=False), 3)
    print(f"one clip's views through the MERR pipeline (faces, track, peak, audio): {views_s:.2f} s")
    print(f"the four encoders on them: {encode_s * 1000:.1f} ms; score over 6 labels: {score_s * 1000:.1f} ms; "
          f"generate 32 tokens: {generate_s * 1000:.0f} ms ({32 / generate_s:.0f} tokens/s)")

    common = ["--merr", str(merr), "--videos", str(root / "clips"), "--max-steps", str(args.epochs),
              "--batch-size", str(2 * args.clips), "--warmup-steps", "0", "--log-every", "1", "--save-every", "0",
              "--feature-cache", str(root / "features")]
    runs = {}
    for name in ("cold", "warm"):
        with contextlib.redirect_stdout(io.StringIO()):
            if emotion_llama_main(["train", "--stage", "1", "--model", str(root / "tiny"),
                                   "--output-dir", str(root / name), *common]) != 0:
                raise SystemExit("training failed")
        runs[name] = epoch_seconds(root / name)
    cold, warm = runs["cold"], runs["warm"]
    print(f"stage 1, {args.clips} clips x 2 examples, one step per epoch, {args.epochs} epochs:")
    print(f"  first run: epoch 1 (clips read and encoded) {cold[0]:.2f} s; later epochs (cache hits) "
          f"median {statistics.median(cold[1:]):.3f} s")
    print(f"  second run on the full cache: epoch 1 {warm[0]:.3f} s, median {statistics.median(warm):.3f} s")


if __name__ == "__main__":
    main()
