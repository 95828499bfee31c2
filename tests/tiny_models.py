"""Tiny randomly initialised image/video-text models, saved like hub checkpoints, for offline tests.

Each builder writes a directory (config, safetensors weights, tokenizer, processor, chat template when
the family has one) with ``save_pretrained``, so the ``hf`` backend loads it through exactly the code
path a real hub id takes. Nothing is downloaded: the tokenizer is a byte-level BPE trained here on a
few sentences, and the weights are random. The answers are therefore noise; tests check behaviour
(shapes, normalisation, determinism, end-to-end plumbing), not quality.

    .venv/bin/python -m tests.tiny_models /tmp/tiny     # writes one directory per family and lists them
"""

from __future__ import annotations

import atexit
import functools
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

_BASE_SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]

# A plain chat template for the families whose real checkpoints ship one (LLaVA, Idefics3/SmolVLM,
# Qwen-Omni). It is fixture data standing in for the checkpoint's own template, so the backend's
# chat-template path runs; media parts become the family's placeholder token.
_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}:"
    "{% if message['content'] is string %} {{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ IMAGE }}"
    "{% elif part['type'] == 'video' %}{{ VIDEO }}"
    "{% elif part['type'] == 'audio' %}{{ AUDIO }}"
    "{% elif part['type'] == 'text' %} {{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def chat_template(image: str = "", video: str = "", audio: str = "") -> str:
    return _CHAT_TEMPLATE.replace("{{ IMAGE }}", image).replace("{{ VIDEO }}", video).replace("{{ AUDIO }}", audio)


def _training_text() -> list[str]:
    """The project's own prompts over every class set: candidate labels become a few tokens each (as with
    a real vocabulary), not dozens of bytes."""
    from emo_core import prompts
    from emo_core.labels import CLASS_SETS

    return [prompts.render(name, options=class_set.labels) for name in ("categorical", "reasoning")
            for class_set in CLASS_SETS.values()]


def train_tokenizer(extra_special_tokens: list[str] = (), vocab_size: int = 400):
    """A byte-level BPE tokenizer trained offline, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=_BASE_SPECIAL + list(extra_special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    core.train_from_iterator(_training_text(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
    )


def _llama_text_config(tokenizer, hidden_size: int = 32, **overrides):
    from transformers import LlamaConfig

    values = dict(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    values.update(overrides)
    return LlamaConfig(**values)


def _vision_tower(width: int) -> dict:
    """A 2-layer ViT on 32x32 images in 8x8 patches (16 patches)."""
    return dict(image_size=32, patch_size=8, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                num_attention_heads=4)


def _save(model, processor, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def _random_init(model_class, config):
    import torch

    torch.manual_seed(0)
    return model_class(config).eval()


# ------------------------------------------------------------------------------------------------
# one builder per family: (directory, hidden size) -> directory


def build_llava(directory: Path, width: int = 32) -> Path:
    from transformers import (CLIPImageProcessorPil, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor)

    tokenizer = train_tokenizer(["<image>"])
    vision = CLIPVisionConfig(**_vision_tower(width), projection_dim=width)
    config = LlavaConfig(
        vision_config=vision, text_config=_llama_text_config(tokenizer, width),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=chat_template(image="<image>"),
    )
    return _save(_random_init(LlavaForConditionalGeneration, config), processor, directory)


def build_llava_next(directory: Path, width: int = 32) -> Path:
    from transformers import (CLIPVisionConfig, LlavaNextConfig, LlavaNextForConditionalGeneration,
                              LlavaNextImageProcessorPil, LlavaNextProcessor)

    tokenizer = train_tokenizer(["<image>"])
    vision = CLIPVisionConfig(**_vision_tower(width), projection_dim=width)
    pinpoints = [[32, 32], [32, 64], [64, 32]]
    config = LlavaNextConfig(
        vision_config=vision, text_config=_llama_text_config(tokenizer, width),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
        vision_feature_select_strategy="default", image_grid_pinpoints=pinpoints,
    )
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=pinpoints,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=chat_template(image="<image>"),
    )
    return _save(_random_init(LlavaNextForConditionalGeneration, config), processor, directory)


def _blip_vision_and_qformer(vision_class, qformer_class, vocab_size: int, width: int):
    vision = vision_class(**_vision_tower(width))
    qformer = qformer_class(vocab_size=vocab_size, hidden_size=width, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=2 * width, encoder_hidden_size=width, max_position_embeddings=512)
    return vision, qformer


def build_blip2(directory: Path, width: int = 32) -> Path:
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, Blip2QFormerConfig,
                              Blip2VisionConfig, BlipImageProcessorPil)

    # The processor adds its own <image> token; a tokenizer that already has one breaks it.
    tokenizer = train_tokenizer()
    processor = Blip2Processor(BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer, num_query_tokens=4)
    vision, qformer = _blip_vision_and_qformer(Blip2VisionConfig, Blip2QFormerConfig, len(tokenizer), width)
    config = Blip2Config(
        vision_config=vision, qformer_config=qformer, text_config=_llama_text_config(tokenizer, width),
        num_query_tokens=4, image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    return _save(_random_init(Blip2ForConditionalGeneration, config), processor, directory)


def _instructblip_parts(width: int):
    """(tokenizer, processor, vision config, Q-Former config) shared by both InstructBLIP builds."""
    from transformers import (BlipImageProcessorPil, InstructBlipProcessor, InstructBlipQFormerConfig,
                              InstructBlipVisionConfig)

    tokenizer = train_tokenizer()
    qformer_tokenizer = train_tokenizer()
    processor = InstructBlipProcessor(
        BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer, qformer_tokenizer, num_query_tokens=4,
    )
    vision, qformer = _blip_vision_and_qformer(InstructBlipVisionConfig, InstructBlipQFormerConfig,
                                               len(qformer_tokenizer), width)
    return tokenizer, processor, vision, qformer


def build_instructblip(directory: Path, width: int = 32) -> Path:
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration

    tokenizer, processor, vision, qformer = _instructblip_parts(width)
    config = InstructBlipConfig(
        vision_config=vision, qformer_config=qformer, text_config=_llama_text_config(tokenizer, width),
        num_query_tokens=4, image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    return _save(_random_init(InstructBlipForConditionalGeneration, config), processor, directory)


def build_idefics3(directory: Path, width: int = 32) -> Path:
    """SmolVLM (v1) checkpoints are Idefics3 models."""
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil,
                              Idefics3Processor, Idefics3VisionConfig)

    grid_tokens = [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
    tokenizer = train_tokenizer(["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
                                + grid_tokens)
    vision = Idefics3VisionConfig(**_vision_tower(width))
    scale_factor = 2
    config = Idefics3Config(
        vision_config=vision, text_config=_llama_text_config(tokenizer, width), scale_factor=scale_factor,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), pad_token_id=tokenizer.pad_token_id,
    )
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 64}, max_image_size={"longest_edge": 32}, do_image_splitting=True,
    )
    processor = Idefics3Processor(
        image_processor, tokenizer, image_seq_len=(32 // 8) ** 2 // scale_factor**2,
        chat_template=chat_template(image="<image>"),
    )
    return _save(_random_init(Idefics3ForConditionalGeneration, config), processor, directory)


def build_instructblip_t5(directory: Path, width: int = 32) -> Path:
    """InstructBLIP on an encoder-decoder language model (as the Flan-T5 checkpoints are)."""
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration, T5Config

    tokenizer, processor, vision, qformer = _instructblip_parts(width)
    text = T5Config(
        vocab_size=len(tokenizer), d_model=width, d_kv=width // 4, d_ff=2 * width, num_layers=2, num_decoder_layers=2,
        num_heads=4, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    config = InstructBlipConfig(
        vision_config=vision, qformer_config=qformer, text_config=text, num_query_tokens=4,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    return _save(_random_init(InstructBlipForConditionalGeneration, config), processor, directory)


def _save_processor_parts(directory: Path, processor_class: str, tokenizer, template: str, **parts) -> None:
    """What ``processor.save_pretrained`` writes, for processors that cannot be built without torchvision
    (their video processor needs it): the tokenizer, one processor_config.json naming the processor with
    its other parts inside, and the chat template."""
    import json

    tokenizer.save_pretrained(directory)
    config = {"processor_class": processor_class}
    for name, part in parts.items():
        values = part.to_dict()
        if "resample" in values:
            values["resample"] = int(values["resample"])
        config[name] = values
    (directory / "processor_config.json").write_text(json.dumps(config, indent=2))
    (directory / "chat_template.jinja").write_text(template)


def _named_token_tokenizer(named: dict[str, str]):
    """The trained tokenizer with ``named`` special tokens reachable as attributes (tokenizer.image_token)."""
    trained = train_tokenizer(list(named.values()))
    return type(trained)(
        tokenizer_object=trained.backend_tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", extra_special_tokens=dict(named),
    )


def _mrope_text_config(tokenizer, width: int) -> dict:
    head_dim = width // 4
    return dict(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        # multimodal rotary sections (temporal, height, width) must add up to half a head
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                         "mrope_section": [head_dim // 8, head_dim // 8, head_dim // 2 - 2 * (head_dim // 8)]},
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )


def build_qwen2_vl(directory: Path, width: int = 32) -> Path:
    """Qwen2-VL: a model type the backend has no entry for, so it takes the default family."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    named = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
             "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"}
    tokenizer = _named_token_tokenizer(named)
    token_id = {name: tokenizer.convert_tokens_to_ids(token) for name, token in named.items()}
    config = Qwen2VLConfig(
        text_config=_mrope_text_config(tokenizer, width),
        vision_config=dict(depth=2, embed_dim=width, hidden_size=width, num_heads=4, mlp_ratio=2, patch_size=8,
                           spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=token_id["image_token"], video_token_id=token_id["video_token"],
        vision_start_token_id=token_id["vision_start_token"], vision_end_token_id=token_id["vision_end_token"],
    )
    model = _random_init(Qwen2VLForConditionalGeneration, config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    _save_processor_parts(
        directory, "Qwen2VLProcessor", tokenizer,
        chat_template(image="<|vision_start|><|image_pad|><|vision_end|>",
                      video="<|vision_start|><|video_pad|><|vision_end|>"),
        image_processor=Qwen2VLImageProcessorPil(patch_size=8, merge_size=2, temporal_patch_size=2,
                                                 min_pixels=16 * 16, max_pixels=64 * 64),
    )
    return directory


_OMNI_TOKENS = {
    "image_token": "<|IMAGE|>", "audio_token": "<|AUDIO|>", "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
}


def build_qwen2_5_omni(directory: Path, width: int = 32) -> Path:
    """Qwen2.5-Omni (vision + audio encoders, text "thinker"), saved without its speech "talker"."""
    import torch
    from transformers import (Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration, Qwen2_5OmniThinkerConfig,
                              Qwen2VLImageProcessorPil, WhisperFeatureExtractor)

    tokenizer = _named_token_tokenizer(_OMNI_TOKENS)
    token_id = {name: tokenizer.convert_tokens_to_ids(token) for name, token in _OMNI_TOKENS.items()}
    text = _mrope_text_config(tokenizer, width)
    vision = dict(depth=2, hidden_size=width, intermediate_size=2 * width, num_heads=4, patch_size=8,
                  spatial_merge_size=2, temporal_patch_size=2, window_size=32, out_hidden_size=width,
                  fullatt_block_indexes=[1])
    audio = dict(num_mel_bins=128, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=2 * width,
                 d_model=width, output_dim=width, max_source_positions=1500, n_window=100)
    thinker = Qwen2_5OmniThinkerConfig(
        text_config=text, vision_config=vision, audio_config=audio,
        audio_token_index=token_id["audio_token"], image_token_index=token_id["image_token"],
        video_token_index=token_id["video_token"], audio_start_token_id=token_id["audio_bos_token"],
        audio_end_token_id=token_id["audio_eos_token"], vision_start_token_id=token_id["vision_bos_token"],
        user_token_id=tokenizer.bos_token_id,
    )
    config = Qwen2_5OmniConfig(thinker_config=thinker.to_dict(), enable_audio_output=False)
    model = _random_init(Qwen2_5OmniForConditionalGeneration, config)

    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    # Real checkpoints ship the talker's voices; from_pretrained insists on the file even without a talker.
    torch.save({"Chelsie": {"bos_token": 0}}, directory / "spk_dict.pt")
    _save_processor_parts(
        directory, "Qwen2_5OmniProcessor", tokenizer,
        chat_template(image="<|vision_bos|><|IMAGE|><|vision_eos|>", video="<|vision_bos|><|VIDEO|><|vision_eos|>",
                      audio="<|audio_bos|><|AUDIO|><|audio_eos|>"),
        image_processor=Qwen2VLImageProcessorPil(patch_size=8, merge_size=2, temporal_patch_size=2,
                                                 min_pixels=16 * 16, max_pixels=64 * 64),
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
    )
    return directory


BUILDERS: dict[str, Callable[[Path, int], Path]] = {
    "llava": build_llava,
    "llava_next": build_llava_next,
    "blip2": build_blip2,
    "instructblip": build_instructblip,
    "idefics3": build_idefics3,
    "instructblip_t5": build_instructblip_t5,
    "qwen2_vl": build_qwen2_vl,
    "qwen2_5_omni": build_qwen2_5_omni,
}


def build(family: str, directory: Path, width: int = 32) -> Path:
    return BUILDERS[family](Path(directory), width)


_BUILT: dict[tuple[str, int], Path] = {}


def tiny_model_dir(family: str, width: int = 32) -> Path:
    """The family's tiny checkpoint, built once per process into a temporary folder removed at exit.

    A process-wide cache rather than a fixture so that several test modules (and the benchmark) share
    one build without a conftest.
    """
    key = (family, width)
    if key not in _BUILT:
        _BUILT[key] = build(family, _build_root() / f"{family}-{width}", width)
    return _BUILT[key]


@functools.lru_cache(maxsize=1)
def _build_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="emolens-tiny-models-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-models")
    for name in BUILDERS:
        print(name, build(name, root / name))
