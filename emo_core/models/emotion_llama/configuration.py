"""The Emotion-LLaMA model's configuration: five sub-model configs, the LoRA set-up and the media sizes.

Every sub-model's config is carried inside ``config.json`` (``audio_config`` HuBERT, ``global_config`` a
ViT on the peak frame, ``local_config`` a MAE-pretrained ViT on the face sequence, ``temporal_config``
VideoMAE on the face sequence, ``text_config`` a LLaMA-family causal LM), so a checkpoint describes
itself; ``sources`` only records which public checkpoint each part started from (a hub id, never a
local path), for people reading the file.
"""

from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig

MODEL_TYPE = "emotion_llama"
AUDIO_TOKEN = "<audio>"
VIDEO_TOKEN = "<video>"
VISUAL_VIEWS = ("global", "local", "temporal")  # the order of the three visual tokens
ENCODERS = ("audio",) + VISUAL_VIEWS
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# defaults of the sub-model types, used when a config does not say
_DEFAULT_TYPES = {"audio_config": "hubert", "global_config": "vit", "local_config": "vit_mae",
                  "temporal_config": "videomae", "text_config": "llama"}


class EmotionLlamaConfig(PretrainedConfig):
    model_type = MODEL_TYPE
    sub_configs = {name: AutoConfig for name in _DEFAULT_TYPES}

    def __init__(self, audio_config=None, global_config=None, local_config=None, temporal_config=None,
                 text_config=None, audio_token_id: int = 0, video_token_id: int = 0, face_frames: int = 8,
                 lora_r: int = 64, lora_alpha: int = 16, lora_dropout: float = 0.05,
                 lora_targets=("q_proj", "v_proj"), image_mean=None, image_std=None, sources=None,
                 max_audio_seconds: float = 30.0, **kwargs):
        from transformers import CONFIG_MAPPING

        given = {"audio_config": audio_config, "global_config": global_config, "local_config": local_config,
                 "temporal_config": temporal_config, "text_config": text_config}
        for name, value in given.items():
            if isinstance(value, dict):
                values = dict(value)
                value = CONFIG_MAPPING[values.pop("model_type", _DEFAULT_TYPES[name])](**values)
            elif value is None:
                value = CONFIG_MAPPING[_DEFAULT_TYPES[name]]()
            setattr(self, name, value)
        self.local_config.mask_ratio = 0.0  # features of every patch: no MAE masking outside pre-training
        self.audio_token_id = audio_token_id
        self.video_token_id = video_token_id
        self.face_frames = face_frames  # face crops averaged by the local encoder
        self.lora_r, self.lora_alpha, self.lora_dropout = lora_r, lora_alpha, lora_dropout
        self.lora_targets = list(lora_targets)
        # per view: the normalisation its encoder was pre-trained with
        self.image_mean = image_mean or {"global": [0.5] * 3, "local": IMAGENET_MEAN, "temporal": IMAGENET_MEAN}
        self.image_std = image_std or {"global": [0.5] * 3, "local": IMAGENET_STD, "temporal": IMAGENET_STD}
        self.sources = dict(sources or {})
        self.max_audio_seconds = max_audio_seconds
        super().__init__(**kwargs)
        if self.face_frames < 1 or self.lora_r < 1:
            raise ValueError("face_frames and lora_r must be at least 1")

    @property
    def temporal_frames(self) -> int:
        return int(self.temporal_config.num_frames)

    def image_size(self, view: str) -> int:
        size = getattr(self, f"{view}_config").image_size
        return int(size if isinstance(size, int) else size[0])
