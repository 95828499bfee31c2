"""Benchmark of the offline reason writer (Gemma 3 270M Q4_K_M on llama.cpp). Prints figures.

    .venv/bin/python -m benchmarks.bench_small_lm                        # assembly, cold load, 5 reasons, RSS
    .venv/bin/python -m benchmarks.bench_small_lm --threads 1            # one thread count only (default: 1 and 2)
    .venv/bin/python -m benchmarks.bench_small_lm --quality              # + the Q4_0-embedding file vs the shipped one
    .venv/bin/python -m benchmarks.bench_small_lm --compare-transformers  # + one transformers GGUF run (<= 2 min)

Each configuration runs on the shipped file (token embedding Q8_0) and on the derived one (Q4_0, the
default; see ``emo_core/llm/gguf_variant.py``), in this process and in a ``WorkerLM`` process. This
process holds no other model, so "inline" and "worker" should match here; the app's case (the face and
audio models in the same process) is ``benchmarks/bench_video.py --llm-process inline|worker``.

Target (the issue): reason generation >= 60 tokens/s with the model loaded in <= 2 s.
- assembly: joining the chunks into an empty temporary cache folder (what the install step does once);
- cold load: ``Llama(...)`` in a fresh interpreter (import time of llama_cpp shown apart);
- tokens/s: decoding rate after the first token, over 5 reasons written by ``write_reason`` (which stop
  at the end of the reason line) and over 5 fixed 60-token continuations of the same prompts; the
  first-token time (prompt reading) is shown apart: after ``warm_up`` llama-cpp-python reuses the
  cached few-shot examples, so only the cue lines are read (switching image <-> video reads them again);
- RSS: resident memory added by loading the model and running it (llama.cpp maps the file, so pages of
  the GGUF that were read count as resident).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSFORMERS_LIMIT_SECONDS = 120

IMAGE_CUES = {
    "amusement": ["one face, expression happy (0.95)", "bright (brightness 0.68)", "colourful (colorfulness 71)",
                  "objects: dog, frisbee", "body pose: running"],
    "sadness": ["no face found", "dark (brightness 0.15)", "muted colours (colorfulness 9)",
                "objects: empty bench, rain"],
    "excitement": ["three faces, the largest reads as surprise (0.74), the others as happy, neutral",
                   "medium brightness (0.52)", "objects: gift box, confetti"],
}
VIDEO_CUES = {
    "angry": ["facial action units: frowns, furrowed brows", "peak-frame expression: angry (0.83)",
              'transcript: "I told you three times already."', "tone of voice: high-pitched, loud, fast speech"],
    "sad": ["facial action units: inner brows raised, lip corners pulled down", "peak-frame expression: sad (0.71)",
            'transcript: "It was the last time I saw him."', "tone of voice: quiet, slow, low-pitched speech"],
}
CASES = [("image", label, cues) for label, cues in IMAGE_CUES.items()] + \
        [("video", label, cues) for label, cues in VIDEO_CUES.items()]


def child_load(model_path: str, threads: int) -> None:
    """Runs in a fresh interpreter: import and load times and memory, printed as JSON."""
    import psutil

    process = psutil.Process()
    rss_start = process.memory_info().rss
    t0 = time.perf_counter()
    import llama_cpp  # noqa: F401

    from emo_core.llm.small_lm import SmallLM  # importing emo_core also imports torch (its package __init__)

    imported = time.perf_counter() - t0
    rss_imported = process.memory_info().rss
    lm = SmallLM(model_path, n_threads=threads, n_threads_batch=threads).load()
    print(json.dumps({"import_seconds": imported, "load_seconds": lm.load_seconds,
                      "rss_imports_mib": (rss_imported - rss_start) / 2**20,
                      "rss_model_mib": (process.memory_info().rss - rss_imported) / 2**20}))


def assembly_seconds() -> float:
    from emo_core.llm.gguf_files import assemble_gguf

    with tempfile.TemporaryDirectory(prefix="emolens-bench-") as folder:
        report = assemble_gguf(folder)
        assert report.assembled
        return report.seconds


def cold_load(model_path: Path, threads: int, repeats: int = 3) -> list[dict]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_small_lm", "--child-load", str(model_path),
                              "--threads", str(threads)], cwd=ROOT, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def generation(model_path: Path, threads: int, show_text: bool, where: str = "inline") -> None:
    import psutil

    from emo_core.llm.lm_worker import WorkerLM
    from emo_core.llm.reason_writer import build_prompt, warm_up, write_reason
    from emo_core.llm.small_lm import SmallLM

    process = psutil.Process()
    rss_before = process.memory_info().rss
    model_class = WorkerLM if where == "worker" else SmallLM
    lm = model_class(model_path, n_threads=threads, n_threads_batch=threads).load()
    if where == "worker":
        process = psutil.Process(lm.pid)
        rss_before = 0
    rss_loaded = process.memory_info().rss
    print(f"\n== {model_path.name}, {where}, n_threads={threads or 'all cores'} (decode and prompt), "
          f"model loaded in {lm.load_seconds:.2f} s"
          + (f" (process ready in {lm.start_seconds:.2f} s)" if where == "worker" else ""))
    started = time.perf_counter()
    warm_up("image", lm)
    print(f"warm_up('image') (reads the ~450-token few-shot examples once): {time.perf_counter() - started:.2f} s")

    print("5 reasons via write_reason (image then video; sampling seed 0):")
    decode, tokens, first = [], [], []
    for modality, label, cues in CASES:
        result = write_reason(label, cues, modality=modality, fallback="(template)", lm=lm, stream=False)
        s = result.stats
        decode.append(s.tokens_per_second)
        tokens.append(s.completion_tokens)
        first.append(s.first_token_seconds)
        who = "LM" if result.by_model else f"FALLBACK ({result.problem})"
        print(f"  [{modality}/{label}] {s.completion_tokens} tokens, first token {s.first_token_seconds:.2f} s "
              f"(prompt {s.prompt_tokens} tokens), decode {s.tokens_per_second:.1f} tok/s, "
              f"write_reason {result.seconds:.2f} s ({result.attempts} attempt(s)), {who}")
        if show_text:
            print(f"      {result.text}")
    print(f"  median decode {statistics.median(decode):.1f} tok/s, median first token {statistics.median(first):.2f} s, "
          f"mean {sum(tokens) / len(tokens):.0f} tokens/reason")

    print("5 fixed 60-token continuations (no stop strings) of the same prompts:")
    decode, overall = [], []
    for modality, label, cues in CASES:
        lm.complete(build_prompt(label, cues, modality), max_tokens=60, temperature=0.3, seed=0, stop=[])
        s = lm.stats
        decode.append(s.tokens_per_second)
        overall.append(s.overall_tokens_per_second)
        print(f"  {s.completion_tokens} tokens in {s.seconds:.2f} s: decode {s.tokens_per_second:.1f} tok/s, "
              f"first token {s.first_token_seconds:.2f} s, overall {s.overall_tokens_per_second:.1f} tok/s")
    print(f"  median decode {statistics.median(decode):.1f} tok/s, median overall {statistics.median(overall):.1f} tok/s")
    rss_after = process.memory_info().rss
    print(f"RSS added {'by the model process' if where == 'worker' else 'in this process'}: "
          f"{(rss_loaded - rss_before) / 2**20:.0f} MiB after load, "
          f"{(rss_after - rss_before) / 2**20:.0f} MiB after the generations")
    lm.close()


def quality(shipped: Path, variant: Path) -> None:
    """How far the variant's next-token distributions are from the shipped file's, teacher-forced on the
    shipped model's greedy 40-token text for each benchmark prompt."""
    import llama_cpp
    import numpy as np

    from emo_core.llm.reason_writer import build_prompt

    def log_probs(path: Path, prompt_ids: list[int], continuation: list[int]):
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, logits_all=True, verbose=False)
        llm.eval(prompt_ids + continuation)
        scores = np.array(llm.scores[len(prompt_ids) - 1:len(prompt_ids) + len(continuation) - 1], dtype=np.float64)
        llm.close()
        scores -= scores.max(-1, keepdims=True)
        return scores - np.log(np.exp(scores).sum(-1, keepdims=True))

    base = llama_cpp.Llama(model_path=str(shipped), n_ctx=2048, verbose=False)
    kl, agree, nll_gap = [], [], []
    for modality, label, cues in CASES:
        prompt = build_prompt(label, cues, modality)
        prompt_ids = base.tokenize(prompt.encode(), add_bos=True)
        text = base.create_completion(prompt, max_tokens=40, temperature=0.0)["choices"][0]["text"]
        continuation = base.tokenize(text.encode(), add_bos=False)
        reference, candidate = log_probs(shipped, prompt_ids, continuation), log_probs(variant, prompt_ids, continuation)
        positions = np.arange(len(continuation))
        kl.append((np.exp(reference) * (reference - candidate)).sum(-1).mean())
        agree.append((reference.argmax(-1) == candidate.argmax(-1)).mean())
        nll_gap.append(reference[positions, continuation].mean() - candidate[positions, continuation].mean())
    base.close()
    print(f"\n{variant.name} vs {shipped.name} over {len(CASES)} prompts x 40 tokens: mean KL "
          f"{np.mean(kl):.3f} nats/token, same top-1 token {np.mean(agree):.0%}, NLL {np.mean(nll_gap):+.3f} nats/token")


def transformers_run(model_path: Path) -> None:
    """One run of transformers' GGUF path (dequantised to fp32), in a child with a time limit."""
    code = f"""
import time, psutil
t0 = time.perf_counter()
from transformers import AutoModelForCausalLM, AutoTokenizer
import torch
t1 = time.perf_counter()
folder, name = {str(model_path.parent)!r}, {model_path.name!r}
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
t2 = time.perf_counter()
from emo_core.llm.reason_writer import build_prompt
ids = tok(build_prompt("amusement", {IMAGE_CUES["amusement"]!r}, "image"), return_tensors="pt")
with torch.no_grad():
    t3 = time.perf_counter()
    out = model.generate(**ids, max_new_tokens=60, min_new_tokens=60, do_sample=False)
    t4 = time.perf_counter()
n = out.shape[1] - ids["input_ids"].shape[1]
print(f"  import {{t1 - t0:.1f}} s, load {{t2 - t1:.1f}} s, {{n}} tokens in {{t4 - t3:.1f}} s "
      f"= {{n / (t4 - t3):.1f}} tok/s (prompt included), RSS {{psutil.Process().memory_info().rss / 2**30:.1f}} GiB")
"""
    print(f"\ntransformers GGUF path (one run, limit {TRANSFORMERS_LIMIT_SECONDS} s):")
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             timeout=TRANSFORMERS_LIMIT_SECONDS,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
        print(out.stdout.rstrip() or f"  failed:\n{out.stderr[-2000:]}")
    except subprocess.TimeoutExpired:
        print(f"  did not finish within {TRANSFORMERS_LIMIT_SECONDS} s; not measured here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="llama.cpp thread counts to compare (0: SmallLM's default)")
    parser.add_argument("--compare-transformers", action="store_true")
    parser.add_argument("--quality", action="store_true", help="compare the Q4_0-embedding file with the shipped one")
    parser.add_argument("--child-load", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_load:
        child_load(args.child_load, args.threads[0])
        return

    from emo_core.llm.gguf_files import ensure_gguf
    from emo_core.llm.gguf_variant import ensure_reason_model
    from emo_core.llm.small_lm import available_cores

    print(f"cores available: {available_cores()}; load average {os.getloadavg()[0]:.1f} (other work on the cores)")
    print(f"assembly into an empty cache folder: {assembly_seconds():.2f} s (253 MB, SHA-256 checked while writing)")
    model_path = ensure_gguf()
    variant = ensure_reason_model(embedding="q4_0")
    runs = cold_load(variant, args.threads[0])
    print(f"cold load of {variant.name} in a fresh process (3 runs): " + ", ".join(
        f"load {r['load_seconds']:.2f} s, RSS +{r['rss_model_mib']:.0f} MiB "
        f"(before it: imports {r['import_seconds']:.2f} s, +{r['rss_imports_mib']:.0f} MiB)"
        for r in runs))
    for index, threads in enumerate(args.threads):
        generation(model_path, threads, show_text=index == 0)
        generation(variant, threads, show_text=index == 0)
    generation(variant, args.threads[-1], show_text=False, where="worker")
    if args.quality:
        quality(model_path, variant)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.compare_transformers:
        transformers_run(model_path)


if __name__ == "__main__":
    main()
