"""Emotion-LLaMA's processor: the paper's template, the placeholder tokens, and the encoders' arrays.

    processor = EmotionLlamaProcessor.from_pretrained(checkpoint_dir)
    inputs = processor(text=["The person in video says: ... [emotion] ..."], videos=[clip_views(path)])

The text is wrapped as ``[INST] <audio> <video> {text} [/INST]`` (``prompts/emotion_llama_model.txt``)
and ``<video>`` becomes three tokens (global, local, temporal), so the ids hold exactly one audio and
three visual placeholders. Images are resized with PIL (bicubic) and normalised with each encoder's
mean and standard deviation; the audio is 16 kHz mono, zero mean and unit variance as HuBERT's feature
extractor makes it. No torchvision or torchaudio: neither loads beside this torch build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import prompts
from .configuration import VIDEO_TOKEN, EmotionLlamaConfig

VISUAL_TOKENS = 3


class EmotionLlamaProcessor:
    chat_template = None  # the template is the paper's, applied here (hf_families then passes the text as is)

    def __init__(self, tokenizer, config: EmotionLlamaConfig):
        self.tokenizer = tokenizer
        self.config = config

    @classmethod
    def from_pretrained(cls, source: str | Path, **kwargs) -> "EmotionLlamaProcessor":
        from transformers import AutoTokenizer

        from . import register

        register()
        config = EmotionLlamaConfig.from_pretrained(source, **kwargs)
        return cls(AutoTokenizer.from_pretrained(source, **kwargs), config)

    def save_pretrained(self, directory: str | Path) -> None:
        self.tokenizer.save_pretrained(directory)

    # -- text --------------------------------------------------------------------------------------

    def prompt_text(self, text: str) -> str:
        wrapped = prompts.render("emotion_llama_model", prompt=text)
        return wrapped.replace(VIDEO_TOKEN, VIDEO_TOKEN * VISUAL_TOKENS)

    def prompt_ids(self, text: str) -> list[int]:
        # as LLaMA's tokenizer would, the prompt starts with the beginning-of-sequence token
        ids = self.tokenizer(self.prompt_text(text), add_special_tokens=False)["input_ids"]
        bos = self.tokenizer.bos_token_id
        return ([bos] if bos is not None else []) + list(ids)

    # -- media -------------------------------------------------------------------------------------

    def media_arrays(self, views) -> dict[str, np.ndarray]:
        """The four encoders' inputs for one clip (``clip_views.ClipViews``), without a batch axis."""
        config = self.config
        local = _even(views.face_frames, config.face_frames)
        temporal = _even(views.face_frames, config.temporal_frames)
        return {
            "audio_values": _normalised_audio(views.audio),
            "global_pixel_values": self._image(views.peak_frame, "global"),
            "local_pixel_values": np.stack([self._image(frame, "local") for frame in local]),
            "temporal_pixel_values": np.stack([self._image(frame, "temporal") for frame in temporal]),
        }

    def _image(self, frame: np.ndarray, view: str) -> np.ndarray:
        from PIL import Image

        size = self.config.image_size(view)
        resized = Image.fromarray(np.asarray(frame, dtype=np.uint8)).convert("RGB").resize((size, size),
                                                                                           Image.Resampling.BICUBIC)
        pixels = np.asarray(resized, dtype=np.float32) / 255.0
        mean = np.asarray(self.config.image_mean[view], dtype=np.float32)
        std = np.asarray(self.config.image_std[view], dtype=np.float32)
        return ((pixels - mean) / std).transpose(2, 0, 1)

    def __call__(self, text=None, videos=None, return_tensors: str = "pt", **_unused):
        import torch

        texts = [text] if isinstance(text, str) else list(text or [])
        if len(texts) != 1:
            raise ValueError("the Emotion-LLaMA processor takes one conversation at a time")
        if not videos or len(videos) != 1:
            raise ValueError("an Emotion-LLaMA prompt needs exactly one video")
        ids = torch.tensor([self.prompt_ids(texts[0])], dtype=torch.long)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        for key, array in self.media_arrays(videos[0]).items():
            inputs[key] = torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(0)
        return inputs


def _even(frames: list, count: int) -> list:
    """``count`` frames spread evenly over ``frames`` (repeating frames when there are fewer)."""
    if not frames:
        raise ValueError("no frames to sample")
    positions = np.linspace(0, len(frames) - 1, count) if count > 1 else [(len(frames) - 1) / 2]
    return [frames[int(round(p))] for p in positions]


def _normalised_audio(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    return (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)

