"""Emotion-LLaMA examples -> model inputs: the prompt in the model's template, the answer with the loss,
and the frozen encoders' features from the cache (computed once per clip and encoder).

The prompt is built by the checkpoint's processor exactly as the ``hf`` backend builds it at inference
(``EmotionLlamaProcessor``), the answer is appended with the end-of-sequence token and the loss covers
it only (``batches.Encoder``). Instead of the media, each example carries the four pooled features
(``audio_features`` ... ``temporal_features``), which the model projects (its trained part).
"""

from __future__ import annotations

from pathlib import Path

from emo_core.run_records import file_sha256

from .batches import Encoder
from .data import Example
from .feature_cache import FeatureCache, encoder_id


class ClipEncoder(Encoder):
    def __init__(self, model, processor, clip_folder: str | Path, max_length: int, cache_folder: str | Path,
                 settings=None):
        from emo_core.models.emotion_llama.configuration import ENCODERS
        from emo_core.settings import Settings

        super().__init__(processor, None, clip_folder, max_length, 8, False)
        self.model = model
        self.cache = FeatureCache(cache_folder)
        self.settings = settings or Settings()
        config = model.config
        preparation = {"audio": {"max_audio_seconds": config.max_audio_seconds}}
        for view in ("global", "local", "temporal"):
            preparation[view] = {"size": config.image_size(view), "mean": config.image_mean[view],
                                 "std": config.image_std[view]}
        preparation["local"]["frames"] = config.face_frames
        preparation["temporal"]["frames"] = config.temporal_frames
        self.encoder_ids = {name: encoder_id(name, getattr(model, f"{name}_encoder"), preparation[name])
                            for name in ENCODERS}
        self._digests: dict[str, str] = {}

    def features(self, video: str) -> dict:
        """The four pooled features of a clip, each (1, width), from the cache or the encoders."""
        import torch

        from emo_core.models.emotion_llama.clip_views import read_clip_views

        path = self.image_folder / video
        if video not in self._digests:
            self._digests[video] = file_sha256(path)
        clip = self._digests[video]
        found = {name: self.cache.get(clip, key) for name, key in self.encoder_ids.items()}
        missing = [name for name, value in found.items() if value is None]
        if missing:
            views = read_clip_views(path, self.settings, self.model.config.max_audio_seconds)
            arrays = self.processor.media_arrays(views)
            from emo_core.models.emotion_llama.modeling import MEDIA_KEYS

            device = self.model.audio_projection.weight.device
            dtype = next(self.model.global_encoder.parameters()).dtype
            inputs = {MEDIA_KEYS[name]: torch.from_numpy(arrays[MEDIA_KEYS[name]]).unsqueeze(0).to(device, dtype)
                      for name in missing}
            training = self.model.training
            self.model.eval()  # the frozen encoders' features without dropout
            try:
                with torch.no_grad():
                    encoded = self.model.encode_media(**inputs)
            finally:
                self.model.train(training)
            for name in missing:
                found[name] = encoded[name][0].float().cpu().numpy()
                self.cache.put(clip, self.encoder_ids[name], found[name])
        return {f"{name}_features": torch.from_numpy(found[name]).float().unsqueeze(0) for name in found}

    def prompt_inputs(self, example: Example) -> dict:
        import torch

        ids = torch.tensor([self.processor.prompt_ids(example.question)], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **self.features(example.image)}
