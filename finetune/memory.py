"""GPU memory: the estimate printed before training (and the stop when it cannot fit), and the README table.

    python -m finetune.memory          # prints the README's tables for 24 / 40 / 80 GB GPUs

The formula, per GPU (data parallel: every GPU holds a full copy; ZeRO/FSDP divide the trained
parameters' states, and ZeRO-3/FSDP the weights, by the number of GPUs):

    memory = weights + 16 B x trained parameters + micro_batch x activations + 1 GiB (CUDA context, workspace)

- weights: frozen parameters at 2 B (bf16/fp16), 1 B (LLM in 8-bit) or 0.516 B (LLM in 4-bit NF4 with
  double quantisation: 4 bits + an 8-bit scale per 64 weights + an fp32 scale per 256 scales); the
  embeddings and output head stay at 2 B (bitsandbytes does not quantise them);
- trained parameters: an fp32 master copy (4 B), its gradient (4 B) and AdamW's two moments (8 B);
- activations per example of ``s`` tokens in the LLM (hidden ``h``, ``L`` layers, vocabulary ``V``):
  34 s h bytes per layer for 16-bit activations with fused attention (Korthikanti et al., 2022, without
  the s^2 attention term that SDPA/FlashAttention does not store); with gradient checkpointing 2 s h per
  layer plus one layer's 34 s h recomputed; plus 10 s V bytes for the logits (bf16 logits, their fp32
  copy for the loss and its gradient). Q-Former-only training still stores the frozen LLM's activations:
  the gradient reaches the Q-Former through the LLM. The frozen vision encoder runs without a graph.

Parameter counts come from the architectures themselves (built on PyTorch's meta device, no weights).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
CONTEXT_BYTES = 1 * GIB
TRAINED_BYTES = 16
FROZEN_BYTES = {"none": 2.0, "8bit": 1.0, "4bit": 4.127 / 8}


@dataclass(frozen=True)
class Estimate:
    weights: float
    trained_states: float
    activations_per_example: float
    batch_size: int
    overhead: float = CONTEXT_BYTES

    @property
    def total(self) -> float:
        return self.weights + self.trained_states + self.batch_size * self.activations_per_example + self.overhead

    def describe(self) -> str:
        gib = lambda value: f"{value / GIB:.2f} GiB"  # noqa: E731
        return (f"weights {gib(self.weights)}, trained parameters with gradients and AdamW states "
                f"{gib(self.trained_states)}, activations {gib(self.batch_size * self.activations_per_example)} "
                f"({self.batch_size} x {gib(self.activations_per_example)}), runtime overhead {gib(self.overhead)}: "
                f"about {gib(self.total)} per GPU")


def activation_bytes(seq_len: int, hidden: int, layers: int, vocab: int, checkpointing: bool) -> float:
    per_layer = 34 * seq_len * hidden
    stored = (2 * seq_len * hidden * layers + per_layer) if checkpointing else per_layer * layers
    return float(stored + 10 * seq_len * vocab)


@dataclass(frozen=True)
class Counts:
    """Parameter counts of one set-up: what trains, what is frozen, and which frozen part is the quantisable LLM."""
    trained: int
    frozen_other: int  # frozen, never quantised (vision encoder, embeddings, output head, ...)
    frozen_llm_linear: int  # frozen LLM weights that bitsandbytes would quantise


def estimate(counts: Counts, quantization: str, seq_len: int, hidden: int, layers: int, vocab: int,
             batch_size: int, checkpointing: bool) -> Estimate:
    weights = counts.frozen_other * 2.0 + counts.frozen_llm_linear * FROZEN_BYTES[quantization]
    return Estimate(weights, counts.trained * TRAINED_BYTES,
                    activation_bytes(seq_len, hidden, layers, vocab, checkpointing), batch_size)


def counts_of(model, llm_prefix: str) -> Counts:
    """Counts of a (real or meta) model: LLM linear weights are those under ``llm_prefix`` in nn.Linear
    layers other than the output head."""
    import torch

    trained = frozen_other = frozen_llm = 0
    linear_weights = {f"{name}.weight" for name, module in model.named_modules()
                      if isinstance(module, torch.nn.Linear) and "lm_head" not in name}
    for name, parameter in model.named_parameters():
        count = parameter.numel()
        if parameter.requires_grad:
            trained += count
        elif llm_prefix in name and name in linear_weights:
            frozen_llm += count
        else:
            frozen_other += count
    return Counts(trained, frozen_other, frozen_llm)


def max_micro_batch(budget_gib: float, fixed: float, per_example: float) -> int:
    return max(0, int((budget_gib * GIB - fixed) / per_example + 1e-9))


def emotion_llama_7b():
    """Emotion-LLaMA's 7B set-up on the meta device, projections and LoRA trainable as in both stages:
    HuBERT-large (audio), an EVA ViT-g/14-sized ViT at 448 px on the peak frame (global), MAE ViT-L/16
    (local), VideoMAE-base on 16 frames (temporal), LLaMA-2-7B-chat with LoRA r=64 on q/v (the
    public code's MiniGPT-v2 settings)."""
    import transformers

    from emo_core.models.emotion_llama.configuration import EmotionLlamaConfig
    from emo_core.models.emotion_llama.modeling import EmotionLlamaForConditionalGeneration

    config = EmotionLlamaConfig(
        audio_config=transformers.HubertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                               intermediate_size=4096, feat_extract_norm="layer"),
        global_config=transformers.ViTConfig(hidden_size=1408, num_hidden_layers=40, num_attention_heads=16,
                                             intermediate_size=6144, image_size=448, patch_size=14),
        local_config=transformers.ViTMAEConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                               intermediate_size=4096),
        temporal_config=transformers.VideoMAEConfig(),
        text_config=transformers.LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                                             num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32),
        lora_r=64, lora_alpha=16, lora_targets=["q_proj", "v_proj"])
    model = EmotionLlamaForConditionalGeneration(config)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.split(".")[0].endswith("_projection") or ".lora_" in name)
    return model, config


def model_counts(setup: str) -> tuple[Counts, dict]:
    """Counts and LLM shape of the 7B set-ups, from their architectures on the meta device."""
    import torch
    import transformers

    llama = dict(vocab_size=32001, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32)
    with torch.device("meta"):
        if setup == "emotion-llama-7b":
            model, config = emotion_llama_7b()
            return counts_of(model, "language_model."), {"hidden": 4096, "layers": 32, "vocab": 32000}
        if setup == "instructblip-vicuna-7b":
            config = transformers.InstructBlipConfig(
                vision_config=transformers.InstructBlipVisionConfig(),  # EVA ViT-g/14 at 224 px
                qformer_config=transformers.InstructBlipQFormerConfig(),  # BERT-base with cross-attention
                text_config=transformers.LlamaConfig(**llama), num_query_tokens=32)
            model = transformers.InstructBlipForConditionalGeneration(config)
            for name, parameter in model.named_parameters():
                parameter.requires_grad_(name.startswith(("qformer.", "query_tokens", "language_projection.")))
            prefix = "language_model."
        else:
            config = transformers.LlavaConfig(
                vision_config=transformers.CLIPVisionConfig(hidden_size=1024, intermediate_size=4096,
                                                            num_hidden_layers=24, num_attention_heads=16,
                                                            image_size=336, patch_size=14, projection_dim=768),
                text_config=transformers.LlamaConfig(**dict(llama, vocab_size=32064)))
            model = transformers.LlavaForConditionalGeneration(config)
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(
                r=128, lora_alpha=256, target_modules=r"model\.language_model\..*\.(q_proj|k_proj|v_proj|o_proj|"
                                                      r"gate_proj|up_proj|down_proj)"))
            prefix = "language_model."
    # LoRA's A/B matrices are trained; the base linear weights under them are frozen LLM weights
    return counts_of(model, prefix), {"hidden": 4096, "layers": 32, "vocab": config.text_config.vocab_size}


# tokens in the LLM per example: InstructBLIP 32 query tokens + instruction (LAVIS max 128) + answer (max 256);
# LLaVA-1.5 576 image tokens + instruction and answer (EmoVIT's answers are short; 2048 is LLaVA's maximum)
TABLE_SETUPS = [
    ("InstructBLIP-Vicuna-7B, Q-Former only, bf16", "instructblip-vicuna-7b", "none", 416),
    ("InstructBLIP-Vicuna-7B, Q-Former only, LLM 8-bit", "instructblip-vicuna-7b", "8bit", 416),
    ("InstructBLIP-Vicuna-7B, Q-Former only, LLM 4-bit", "instructblip-vicuna-7b", "4bit", 416),
    ("LLaVA-1.5-7B, LoRA r=128, bf16", "llava-1.5-7b", "none", 1024),
    ("LLaVA-1.5-7B, QLoRA r=128 (LLM 4-bit)", "llava-1.5-7b", "4bit", 1024),
]
# Emotion-LLaMA: 4 media tokens + the template, subtitle and instruction (about 120 tokens) + the answer: a
# coarse description (stage 1, answers up to ~130 tokens) or "Predicted emotion: X. Reason: ..." (stage 2,
# MERR's fine-grained reasons, up to ~390 tokens). Both stages train the same parameters (projections + LoRA);
# with the feature cache the encoders only sit in memory (their weights count, their activations do not).
EMOTION_LLAMA_SETUPS = [
    ("Emotion-LLaMA 7B, stage 1 (coarse), projections + LoRA r=64, bf16", "emotion-llama-7b", "none", 256),
    ("Emotion-LLaMA 7B, stage 1 (coarse), LLM 8-bit", "emotion-llama-7b", "8bit", 256),
    ("Emotion-LLaMA 7B, stage 2 (fine-grained), projections + LoRA r=64, bf16", "emotion-llama-7b", "none", 512),
    ("Emotion-LLaMA 7B, stage 2 (fine-grained), LLM 8-bit", "emotion-llama-7b", "8bit", 512),
]
GPU_SIZES = (24, 40, 80)


def table(setups=None) -> str:
    cache: dict[str, tuple[Counts, dict]] = {}
    header = ("| set-up | tokens | trained params | weights | trained states | activations per example "
              "(no ckpt / ckpt) | " + " | ".join(f"max micro-batch {g} GB (no ckpt / ckpt)" for g in GPU_SIZES) + " |")
    rows = [header, "|" + "---|" * (6 + len(GPU_SIZES))]
    for title, setup, quantization, tokens in (TABLE_SETUPS if setups is None else setups):
        if setup not in cache:
            cache[setup] = model_counts(setup)
        counts, shape = cache[setup]
        plain = estimate(counts, quantization, tokens, shape["hidden"], shape["layers"], shape["vocab"], 1, False)
        ckpt = estimate(counts, quantization, tokens, shape["hidden"], shape["layers"], shape["vocab"], 1, True)
        fixed = plain.weights + plain.trained_states + plain.overhead
        fits = [f"{max_micro_batch(g, fixed, plain.activations_per_example)} / "
                f"{max_micro_batch(g, fixed, ckpt.activations_per_example)}" for g in GPU_SIZES]
        rows.append(f"| {title} | {tokens} | {counts.trained / 1e6:.0f} M | {plain.weights / GIB:.1f} GiB | "
                    f"{plain.trained_states / GIB:.1f} GiB | {plain.activations_per_example / GIB:.2f} / "
                    f"{ckpt.activations_per_example / GIB:.2f} GiB | " + " | ".join(fits) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
    print()
    print(table(EMOTION_LLAMA_SETUPS))
