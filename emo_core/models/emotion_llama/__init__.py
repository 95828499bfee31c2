"""Emotion-LLaMA (Cheng et al., 2024): one audio token (HuBERT) and three visual tokens (a ViT on the peak
frame, a MAE-pretrained ViT on the face sequence averaged, VideoMAE on the face sequence) projected into a
LLaMA-family causal LM with LoRA, placed by the paper's template.

    from emo_core.models.emotion_llama import register
    register()   # then AutoConfig / AutoModelForImageTextToText load "emotion_llama" checkpoints

Modules: ``configuration`` (the config), ``modeling`` (the network), ``processing`` (the template,
tokens and the arrays the encoders take, with numpy/PIL only), ``clip_views`` (a clip's peak frame, face
sequence and audio, from the MERR pipeline). Nothing heavy is imported by this file.
"""

from __future__ import annotations

_REGISTERED = False


def register() -> None:
    """Make the transformers Auto classes know the ``emotion_llama`` model type (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AutoConfig, AutoModelForImageTextToText

    from .configuration import MODEL_TYPE, EmotionLlamaConfig
    from .modeling import EmotionLlamaForConditionalGeneration

    AutoConfig.register(MODEL_TYPE, EmotionLlamaConfig, exist_ok=True)
    AutoModelForImageTextToText.register(EmotionLlamaConfig, EmotionLlamaForConditionalGeneration, exist_ok=True)
    _REGISTERED = True
