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
