"""Writing an Emotion-LLaMA checkpoint to start training from: ``init --tiny`` (every part tiny, random).

A tiny checkpoint is for tests and for trying the wiring on a CPU: each sub-model is built from a small
config (2 layers, width 32) with random weights, and the tokenizer is a byte-level BPE trained here on
the project's own prompts, with ``<audio>`` and ``<video>`` as special tokens. Its answers are noise.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
WIDTH = 32


def _tokenizer_text() -> list[str]:
    """The prompts the model is asked, over every class set: labels become a few tokens each."""
    from emo_core import prompts
    from emo_core.labels import CLASS_SETS

    tasks = prompts.sentence_table("emotion_llama_tasks.txt")
    text = []
    for class_set in CLASS_SETS.values():
        options = prompts.format_options(class_set.labels)
        for instruction in tasks.values():
            text.append(prompts.render("emotion_llama", subtitle="nothing", task="emotion",
                                       instruction=instruction.format(options=options)))
        text += [f"Predicted emotion: {label}. Reason: the face and the voice." for label in class_set.labels]
    return text


def tiny_tokenizer(vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from emo_core.models.emotion_llama.configuration import AUDIO_TOKEN, VIDEO_TOKEN

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + [AUDIO_TOKEN, VIDEO_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(_tokenizer_text(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def tiny_config(tokenizer, width: int = WIDTH):
    from transformers import HubertConfig, LlamaConfig, VideoMAEConfig, ViTConfig, ViTMAEConfig

    from emo_core.models.emotion_llama.configuration import AUDIO_TOKEN, VIDEO_TOKEN, EmotionLlamaConfig

    layers = dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2, num_attention_heads=4)
    vision = dict(layers, image_size=32, patch_size=8)
    # HuBERT's convolutions stride 320 samples (20 ms) as the real one does, with 4 narrow layers
    audio = HubertConfig(**layers, conv_dim=(16, 16, 16, 16), conv_kernel=(10, 8, 4, 4), conv_stride=(5, 4, 4, 4),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm="layer",
                         apply_spec_augment=False)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    return EmotionLlamaConfig(
        audio_config=audio, global_config=ViTConfig(**vision), local_config=ViTMAEConfig(**vision),
        temporal_config=VideoMAEConfig(**vision, num_frames=4, tubelet_size=2, use_mean_pooling=True),
        text_config=text, audio_token_id=tokenizer.convert_tokens_to_ids(AUDIO_TOKEN),
        video_token_id=tokenizer.convert_tokens_to_ids(VIDEO_TOKEN), face_frames=4, lora_r=8, lora_alpha=16,
        lora_dropout=0.0, lora_targets=["q_proj", "v_proj"], sources={"all": "tiny random (init --tiny)"},
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def write_tiny(out: str | Path, seed: int = 0) -> Path:
    """A tiny random Emotion-LLaMA checkpoint (model, tokenizer) in ``out``."""
    import torch

    from emo_core.models.emotion_llama import register
    from emo_core.models.emotion_llama.modeling import EmotionLlamaForConditionalGeneration

    register()
    out = Path(out)
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    model = EmotionLlamaForConditionalGeneration(tiny_config(tokenizer)).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


PARTS = ("audio", "global", "local", "temporal")


def _source_name(source: str) -> str:
    """What the checkpoint records of where a part came from: a hub id as given, a local folder by name."""
    return Path(source).name if Path(source).exists() else source


def _normalisation(source: str) -> tuple[list, list] | None:
    """The part's own image mean and std, read from its preprocessor_config.json (no image processor class
    is instantiated: the fast ones need torchvision)."""
    import json

    from transformers.utils import cached_file

    try:
        path = cached_file(source, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False)
    except OSError:
        return None
    if not path:
        return None
    values = json.loads(Path(path).read_text(encoding="utf-8"))
    if "image_mean" in values and "image_std" in values:
        return list(values["image_mean"]), list(values["image_std"])
    return None


def write_from_parts(out: str | Path, sources: dict[str, str], *, lora_r: int = 64, lora_alpha: int = 16,
                     lora_dropout: float = 0.05, lora_targets=("q_proj", "v_proj"), face_frames: int = 8,
                     dtype: str = "bfloat16", seed: int = 0) -> Path:
    """A start checkpoint composed of pretrained parts (hub ids or local folders): ``sources`` maps
    audio / global / local / temporal / llm to them. The LLM's tokenizer gains ``<audio>`` and ``<video>``
    (its embeddings grow by two rows); the projections start random and LoRA at zero (its B matrices)."""
    import torch
    from torch import nn
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    from emo_core.models.emotion_llama import register
    from emo_core.models.emotion_llama.configuration import AUDIO_TOKEN, VIDEO_TOKEN, EmotionLlamaConfig
    from emo_core.models.emotion_llama.modeling import EmotionLlamaForConditionalGeneration

    from . import FinetuneError

    missing = [name for name in PARTS + ("llm",) if not sources.get(name)]
    if missing:
        raise FinetuneError(f"missing {', '.join('--' + name for name in missing)}")
    register()
    torch_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[dtype]
    try:
        tokenizer = AutoTokenizer.from_pretrained(sources["llm"])
        parts = {name: AutoModel.from_pretrained(sources[name], dtype=torch_dtype,
                                                 **({"add_pooling_layer": False} if name == "global" else {}))
                 for name in PARTS}
        llm = AutoModelForCausalLM.from_pretrained(sources["llm"], dtype=torch_dtype)
    except (OSError, ValueError) as exc:
        raise FinetuneError(f"cannot load a part: {exc}") from None
    tokenizer.add_tokens([AUDIO_TOKEN, VIDEO_TOKEN], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    if llm.get_input_embeddings().weight.shape[0] < len(tokenizer):
        llm.resize_token_embeddings(len(tokenizer))
    means, stds = {}, {}
    for view in ("global", "local", "temporal"):
        found = _normalisation(sources[view])
        if found:
            means[view], stds[view] = found
    defaults = EmotionLlamaConfig(face_frames=face_frames)
    config = EmotionLlamaConfig(
        audio_config=parts["audio"].config, global_config=parts["global"].config, local_config=parts["local"].config,
        temporal_config=parts["temporal"].config, text_config=llm.config,
        audio_token_id=tokenizer.convert_tokens_to_ids(AUDIO_TOKEN),
        video_token_id=tokenizer.convert_tokens_to_ids(VIDEO_TOKEN), face_frames=face_frames, lora_r=lora_r,
        lora_alpha=lora_alpha, lora_dropout=lora_dropout, lora_targets=list(lora_targets),
        image_mean={**defaults.image_mean, **means}, image_std={**defaults.image_std, **stds},
        sources={name: _source_name(sources[name]) for name in PARTS + ("llm",)},
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.device("meta"):  # the skeleton only: every part is replaced by its pretrained weights below
        model = EmotionLlamaForConditionalGeneration(config)
    for name in PARTS:
        setattr(model, f"{name}_encoder", parts[name])
    model.language_model = llm
    model._inject_lora()
    torch.manual_seed(seed)
    width = llm.config.hidden_size
    for name in PARTS:
        projection = nn.Linear(parts[name].config.hidden_size, width, dtype=torch_dtype)
        nn.init.normal_(projection.weight, 0.0, 0.02)
        nn.init.zeros_(projection.bias)
        setattr(model, f"{name}_projection", projection)
    for parameter in model.parameters():
        if parameter.dtype != torch_dtype and parameter.is_floating_point():
            parameter.data = parameter.data.to(torch_dtype)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
