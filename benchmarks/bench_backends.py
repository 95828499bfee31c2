"""Benchmark of the hf backend layer on tiny models, plus the memory of the recommended models on paper.

    .venv/bin/python -m benchmarks.bench_backends                  # all three parts
    .venv/bin/python -m benchmarks.bench_backends --part overhead --runs 30
    .venv/bin/python -m benchmarks.bench_backends --part memory    # no model is loaded
    .venv/bin/python -m benchmarks.bench_backends --part score-time --runs 30 --threads 1

1. overhead: per request, what the backend layer costs (prompt + media decoding, processor, moving
   tensors, decoding + parsing the answer) next to the model's own forward pass, on tiny models.
2. score vs generate: the 8 EmoSet (Mikels) classes by ``score`` (one batched forward pass) and by
   ``generate`` + ``parse_prediction`` on the same model: latency ratio and agreement. A random tiny
   model names no label, so agreement is also measured on a tiny LLaVA first trained for seconds to
   answer the label of a synthetic colour -> emotion task (the figures say which is which).
3. score time: ``score`` over the 8 Mikels classes on the tiny InstructBLIP (LLaMA and T5 language
   models) at two widths, with the number of vision-encoder passes per call.
4. memory: parameter counts of the recommended checkpoints, computed from their architecture
   hyper-parameters (written below) on the meta device, and the memory of the weights in bf16, 8-bit
   and 4-bit, plus a 4k-token KV cache, against common GPUs. Computed on paper, not measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

MIB = 1024**2
GIB = 1024**3


def _median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


# ------------------------------------------------------------------------------------------------
# 1. overhead of the backend layer


def overhead(runs: int) -> None:
    import torch

    from emo_core import Settings, prompts
    from emo_core.backends import hf_families, user_message
    from emo_core.backends.hf import HFBackend, _decode_new_tokens, _input_device, _moved
    from emo_core.labels import get_class_set
    from emo_core.parsing import parse_prediction
    from tests import media
    from tests.tiny_models import tiny_model_dir

    labels = list(get_class_set("mikels8").labels)
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "astronaut.jpg"
        media.astronaut().save(photo, quality=92)  # 512x512 real photo
        messages = user_message(prompts.render("categorical", options=labels), image=str(photo))
        print(f"overhead per request, 512x512 JPEG, categorical prompt, {runs} runs, median ms "
              f"(torch threads {torch.get_num_threads()}):")
        print(f"  {'family':<14}{'prompt+media':>13}{'processor':>11}{'to device':>11}{'forward':>9}"
              f"{'gen 8 tok':>11}{'decode+parse':>14}{'layer share of forward':>24}")
        for family in ("llava", "instructblip", "idefics3", "qwen2_5_omni"):
            backend = HFBackend(Settings(backend="hf", model=str(tiny_model_dir(family)), preload=False)).load()
            loaded, _ = backend.model_inputs(messages)  # warm-up (first processor call, caches)
            stages = {name: [] for name in ("prompt", "processor", "move", "forward", "generate", "parse")}
            for _ in range(runs):
                t0 = time.perf_counter()
                prompt = hf_families.prompt_and_media(messages, loaded.family, loaded.processor)
                t1 = time.perf_counter()
                raw = hf_families.processor_inputs(loaded.processor, prompt)
                t2 = time.perf_counter()
                inputs = _moved(raw, _input_device(loaded.text_model), loaded.placement.dtype)
                t3 = time.perf_counter()
                with torch.inference_mode():
                    loaded.text_model(**inputs)
                    t4 = time.perf_counter()
                    output = loaded.text_model.generate(**inputs, max_new_tokens=8, do_sample=False)
                t5 = time.perf_counter()
                parse_prediction(_decode_new_tokens(loaded.tokenizer, inputs["input_ids"], output), labels)
                t6 = time.perf_counter()
                for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
                    stages[name].append(seconds)
            ms = {name: _median_ms(values) for name, values in stages.items()}
            layer = ms["prompt"] + ms["processor"] + ms["move"] + ms["parse"]
            print(f"  {family:<14}{ms['prompt']:>13.2f}{ms['processor']:>11.2f}{ms['move']:>11.3f}"
                  f"{ms['forward']:>9.2f}{ms['generate']:>11.2f}{ms['parse']:>14.3f}"
                  f"{layer:>14.2f} ms = {layer / ms['forward']:.1f}x")
            backend.unload()


# ------------------------------------------------------------------------------------------------
# 2. score vs generate + parse


# One colour per Mikels class: the synthetic task the tiny model learns (the image's hue -> label).
COLOURS = [(220, 60, 60), (60, 200, 60), (60, 60, 220), (220, 200, 40), (200, 60, 200), (40, 200, 200),
           (240, 240, 240), (30, 30, 30)]


def _colour_images(folder: Path, per_class: int, seed: int) -> list[tuple[Path, int]]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    items = []
    for index, colour in enumerate(COLOURS):
        for copy in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 18, (64, 64, 3)), 0, 255).astype(np.uint8)
            path = folder / f"c{index}-{seed}-{copy}.png"
            Image.fromarray(pixels).save(path)
            items.append((path, index))
    return items


def _train_on_colours(backend, labels: list[str], prompt_text: str, folder: Path, steps: int) -> float:
    """Seconds of full fine-tuning so that the tiny LLaVA answers the colour's label, then EOS.

    Every prompt has the same length (same text, same number of image tokens), so a batch is the
    prompts stacked, each followed by its answer padded with EOS (padding left out of the loss).
    """
    import torch

    from emo_core.backends import hf_loading, user_message

    loaded = hf_loading.acquire(backend.options)
    tokenizer, model = loaded.tokenizer, loaded.text_model
    prompts_, answers, pixels = [], [], []
    for path, index in _colour_images(folder, per_class=4, seed=1):
        _, inputs = backend.model_inputs(user_message(prompt_text, image=str(path)))
        prompts_.append(inputs["input_ids"][0])
        pixels.append(inputs["pixel_values"])
        answers.append(tokenizer(labels[index], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
    longest = max(len(a) for a in answers)
    input_ids = torch.stack([torch.cat([p, torch.tensor(a + [tokenizer.eos_token_id] * (longest - len(a)))])
                             for p, a in zip(prompts_, answers)])
    targets = input_ids.clone()
    targets[:, : prompts_[0].shape[0]] = -100
    for row, answer in enumerate(answers):
        targets[row, prompts_[0].shape[0] + len(answer):] = -100
    pixel_values = torch.cat(pixels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    model.train()
    for _ in range(steps):
        batch = torch.randperm(len(answers), generator=generator)[:16]
        optimizer.zero_grad()
        model(input_ids=input_ids[batch], attention_mask=torch.ones_like(input_ids[batch]), labels=targets[batch],
              pixel_values=pixel_values[batch]).loss.backward()
        optimizer.step()
    model.eval()
    return time.perf_counter() - started


def score_vs_generate(train_steps: int) -> None:
    import math

    from emo_core import Settings, prompts
    from emo_core.backends import user_message
    from emo_core.backends.hf import HFBackend
    from emo_core.labels import get_class_set
    from emo_core.parsing import parse_prediction
    from tests.tiny_models import tiny_model_dir

    labels = list(get_class_set("mikels8").labels)
    prompt_text = prompts.render("categorical", options=labels)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        test_images = _colour_images(folder, per_class=3, seed=2)
        print(f"score vs generate (32 new tokens, as the image task asks) + parse, 8 Mikels classes, "
              f"{len(test_images)} images:")
        for family, trained in (("llava", False), ("qwen2_5_omni", False), ("llava", True)):
            backend = HFBackend(Settings(backend="hf", model=str(tiny_model_dir(family)), preload=False))
            backend.load()
            note = "random weights"
            if trained:
                seconds = _train_on_colours(backend, labels, prompt_text, folder, train_steps)
                note = f"trained {train_steps} steps ({seconds:.0f} s) on the colour task"
            score_times, generate_times, agree, parsed, score_right, generate_right = [], [], 0, 0, 0, 0
            for path, truth in test_images:
                messages = user_message(prompt_text, image=str(path))
                t0 = time.perf_counter()
                scores = backend.score(messages, labels)
                t1 = time.perf_counter()
                answer = parse_prediction(backend.generate(messages, max_new_tokens=32), labels)
                t2 = time.perf_counter()
                score_times.append(t1 - t0)
                generate_times.append(t2 - t1)
                by_score = max(scores, key=scores.get)
                score_right += by_score == labels[truth]
                if answer.parsed:
                    parsed += 1
                    agree += answer.label == by_score
                    generate_right += answer.label == labels[truth]
                assert math.isfinite(sum(scores.values()))
            n = len(test_images)
            s_ms, g_ms = _median_ms(score_times), _median_ms(generate_times)
            agreement = f"{agree}/{parsed} parsed answers agree" if parsed else "no answer parsed: agreement undefined"
            print(f"  {family} ({note}): score {s_ms:.1f} ms, generate+parse {g_ms:.1f} ms "
                  f"(generate/score {g_ms / s_ms:.1f}x); parsed {parsed}/{n}; {agreement}; "
                  f"accuracy score {score_right}/{n}, generate {generate_right}/{n}")
            backend.unload()


# ------------------------------------------------------------------------------------------------
# 3. score time on the tiny InstructBLIP


def score_time(runs: int) -> None:
    import torch

    from emo_core import Settings, prompts
    from emo_core.backends import hf_loading, user_message
    from emo_core.backends.hf import HFBackend
    from emo_core.labels import get_class_set
    from tests import media
    from tests.tiny_models import tiny_model_dir

    labels = list(get_class_set("mikels8").labels)
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "astronaut.jpg"
        media.astronaut().save(photo, quality=92)
        messages = user_message(prompts.render("categorical", options=labels), image=str(photo))
        print(f"score of the 8 Mikels classes, categorical prompt, {runs} runs, median ms "
              f"(torch threads {torch.get_num_threads()}):")
        for family in ("instructblip", "instructblip_t5"):
            for width in (32, 256):
                backend = HFBackend(Settings(backend="hf", model=str(tiny_model_dir(family, width)), preload=False))
                backend.load()
                vision = hf_loading.acquire(backend.options).model.vision_model
                passes = []
                hook = vision.register_forward_hook(
                    lambda module, args, kwargs, output: passes.append(kwargs["pixel_values"].shape[0]), with_kwargs=True)
                backend.score(messages, labels)  # warm-up
                passes.clear()
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    backend.score(messages, labels)
                    samples.append(time.perf_counter() - started)
                hook.remove()
                images_per_call = sum(passes) / runs
                print(f"  {family:<16} width {width:<4} {_median_ms(samples):8.2f} ms   "
                      f"images through the vision encoder per call: {images_per_call:g}")
                backend.unload()


# ------------------------------------------------------------------------------------------------
# 4. memory on paper


def _llama(hidden, layers, heads, kv_heads, intermediate, vocab, tie=False):
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                       num_key_value_heads=kv_heads, intermediate_size=intermediate, vocab_size=vocab,
                       tie_word_embeddings=tie)


def recommended_models() -> dict:
    """name -> (model class name, config builder): hyper-parameters as published in each checkpoint's
    config.json (not downloadable here, so written out; the counts are only as right as these values)."""
    import transformers as t

    clip_l_336 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                      image_size=336, patch_size=14, projection_dim=768)
    siglip_b_512 = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                        image_size=512, patch_size=16)
    return {
        "SmolVLM-256M-Instruct": ("Idefics3ForConditionalGeneration", lambda: t.Idefics3Config(
            vision_config=t.Idefics3VisionConfig(**siglip_b_512), scale_factor=4,
            text_config=_llama(576, 30, 9, 3, 1536, 49280, tie=True))),
        "SmolVLM-500M-Instruct": ("Idefics3ForConditionalGeneration", lambda: t.Idefics3Config(
            vision_config=t.Idefics3VisionConfig(**siglip_b_512), scale_factor=4,
            text_config=_llama(960, 32, 15, 5, 2560, 49280, tie=True))),
        "SmolVLM2-2.2B-Instruct": ("SmolVLMForConditionalGeneration", lambda: t.SmolVLMConfig(
            vision_config=t.SmolVLMVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                                num_attention_heads=16, image_size=384, patch_size=14),
            scale_factor=3, text_config=_llama(2048, 24, 32, 32, 8192, 49280, tie=True))),
        "Qwen2-VL-2B-Instruct": ("Qwen2VLForConditionalGeneration", lambda: t.Qwen2VLConfig(
            vision_config=dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4),
            text_config=dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                             intermediate_size=8960, vocab_size=151936, tie_word_embeddings=True))),
        "BLIP-2 OPT-2.7B": ("Blip2ForConditionalGeneration", lambda: t.Blip2Config(
            text_config=t.OPTConfig(hidden_size=2560, num_hidden_layers=32, ffn_dim=10240, num_attention_heads=32,
                                    vocab_size=50272, word_embed_proj_dim=2560))),
        "InstructBLIP Vicuna-7B (EmoVIT base)": ("InstructBlipForConditionalGeneration", lambda: t.InstructBlipConfig(
            text_config=_llama(4096, 32, 32, 32, 11008, 32001))),
        "LLaVA-1.5-7B": ("LlavaForConditionalGeneration", lambda: t.LlavaConfig(
            vision_config=t.CLIPVisionConfig(**clip_l_336), text_config=_llama(4096, 32, 32, 32, 11008, 32064))),
        "LLaVA-NeXT Mistral-7B": ("LlavaNextForConditionalGeneration", lambda: t.LlavaNextConfig(
            vision_config=t.CLIPVisionConfig(**clip_l_336),
            text_config=t.MistralConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                                        num_key_value_heads=8, intermediate_size=14336, vocab_size=32064))),
        # transformers' defaults follow this checkpoint except the vision tower's width (set here); the hf
        # backend loads it without the speech talker
        "Qwen2.5-Omni-7B (thinker)": ("Qwen2_5OmniForConditionalGeneration", lambda: t.Qwen2_5OmniConfig(
            enable_audio_output=False, thinker_config=t.Qwen2_5OmniThinkerConfig(vision_config=dict(
                depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584)))),
    }


GPUS = [("T4 16 GB", 16), ("L4 / A10G 24 GB", 24), ("L40S 48 GB", 48), ("A100 80 GB", 80)]
CUDA_RESERVE_GIB = 1.0  # CUDA context, allocator slack and activations, roughly
CONTEXT_TOKENS = 4096
# NF4 with double quantisation stores 4 bits plus ~0.127 bits of constants per weight (QLoRA paper).
NF4_BITS = 4.127


def weight_bytes(model) -> dict[str, float]:
    """Bytes of the weights in bf16, 8-bit and 4-bit (bitsandbytes quantises every Linear but the LM head)."""
    import torch

    head = model.get_output_embeddings()
    total = sum(p.numel() for p in model.parameters())
    quantised = rows = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not head:
            quantised += module.weight.numel()
            rows += module.out_features
    kept = total - quantised
    return {
        "params": total,
        "fp32": 4 * total,  # what the CPU path loads
        "bf16": 2 * total,
        "8bit": 2 * kept + quantised + 4 * rows,  # int8 weights + one fp32 scale per output row
        "4bit": 2 * kept + quantised * NF4_BITS / 8,
    }


def kv_cache_bytes(text_config, tokens: int) -> float:
    heads = text_config.num_attention_heads
    kv_heads = getattr(text_config, "num_key_value_heads", None) or heads
    head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // heads
    return 2 * text_config.num_hidden_layers * kv_heads * head_dim * tokens * 2  # keys and values, bf16


def memory_on_paper() -> None:
    import torch
    import transformers

    print(f"memory on paper (weights + a {CONTEXT_TOKENS}-token bf16 KV cache + {CUDA_RESERVE_GIB:g} GiB reserve; "
          "computed from parameter counts, not measured):")
    print(f"  {'model':<38}{'params':>8}{'fp32 CPU':>10}{'bf16':>9}{'8-bit':>9}{'4-bit':>9}{'KV 4k':>8}"
          "   smallest GPU: bf16 / 8-bit / 4-bit")
    for name, (class_name, make_config) in recommended_models().items():
        config = make_config()
        with torch.device("meta"):
            model = getattr(transformers, class_name)(config)
        sizes = weight_bytes(model)
        kv = kv_cache_bytes(config.get_text_config(), CONTEXT_TOKENS)
        fits = []
        for precision in ("bf16", "8bit", "4bit"):
            need_gib = (sizes[precision] + kv) / GIB + CUDA_RESERVE_GIB
            fits.append(next((gpu for gpu, vram in GPUS if need_gib <= vram * 1e9 / GIB), "none listed"))
        print(f"  {name:<38}{sizes['params'] / 1e9:>7.2f}B{sizes['fp32'] / GIB:>8.1f}Gi{sizes['bf16'] / GIB:>7.1f}Gi"
              f"{sizes['8bit'] / GIB:>7.1f}Gi"
              f"{sizes['4bit'] / GIB:>7.1f}Gi{kv / GIB:>6.2f}Gi   {' / '.join(fits)}")
        del model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "overhead", "score", "score-time", "memory"), default="all")
    parser.add_argument("--runs", type=int, default=20, help="requests per family in the overhead and score-time parts")
    parser.add_argument("--train-steps", type=int, default=150, help="fine-tuning steps of the colour task")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default). On a shared machine 1 thread avoids the "
                             "stalls of OpenMP threads waiting for a busy core, which make tiny forwards 50x slower")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.part in ("all", "overhead"):
        overhead(args.runs)
    if args.part in ("all", "score"):
        score_vs_generate(args.train_steps)
    if args.part in ("all", "score-time"):
        score_time(args.runs)
    if args.part in ("all", "memory"):
        memory_on_paper()


if __name__ == "__main__":
    main()
