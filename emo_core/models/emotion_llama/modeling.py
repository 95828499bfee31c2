"""The Emotion-LLaMA network: four encoders, a linear projection each, and a LoRA-adapted causal LM.

The prompt holds one ``<audio>`` token and three ``<video>`` tokens (``processing``); their embeddings
are replaced by the projected features, in the order global (peak frame), local (face sequence, frame
features averaged), temporal (face sequence through VideoMAE). Each encoder's output is pooled to one
vector: HuBERT's frames averaged, the ViT's class token, the MAE-ViT's patch tokens averaged per frame
then over frames, VideoMAE's tokens averaged (its own classification pooling).

``forward`` takes either the media (``audio_values``, ``global_pixel_values``, ``local_pixel_values``,
``temporal_pixel_values``) or the pooled features (``audio_features`` ... ``temporal_features``, what
``encode_media`` returns): training reads the frozen encoders' features from the on-disk cache. A call
whose ids hold no placeholder (a generation step after the first, a scoring continuation) needs neither.
LoRA adapters are injected into the LLM when the model is built (peft), so ``save_pretrained`` /
``from_pretrained`` carry them like any other weight.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration import ENCODERS, EmotionLlamaConfig

MEDIA_KEYS = {"audio": "audio_values", "global": "global_pixel_values", "local": "local_pixel_values",
              "temporal": "temporal_pixel_values"}
FEATURE_KEYS = {name: f"{name}_features" for name in ENCODERS}
PROJECTIONS = tuple(f"{name}_projection" for name in ENCODERS)


class EmotionLlamaForConditionalGeneration(PreTrainedModel, GenerationMixin):
    config_class = EmotionLlamaConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["LlamaDecoderLayer", "HubertEncoderLayer", "ViTLayer", "ViTMAELayer", "VideoMAELayer"]

    def __init__(self, config: EmotionLlamaConfig):
        super().__init__(config)
        self.audio_encoder = AutoModel.from_config(config.audio_config)
        self.global_encoder = AutoModel.from_config(config.global_config, add_pooling_layer=False)
        self.local_encoder = AutoModel.from_config(config.local_config)
        self.temporal_encoder = AutoModel.from_config(config.temporal_config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        width = config.text_config.hidden_size
        for name in ENCODERS:
            setattr(self, f"{name}_projection", nn.Linear(getattr(config, f"{name}_config").hidden_size, width))
        self._inject_lora()
        self.post_init()

    def _inject_lora(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(r=self.config.lora_r, lora_alpha=self.config.lora_alpha,
                          lora_dropout=self.config.lora_dropout, target_modules=list(self.config.lora_targets),
                          bias="none")
        inject_adapter_in_model(lora, self.language_model)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear) and any(module is getattr(self, name, None) for name in PROJECTIONS):
            module.weight.data.normal_(0.0, 0.02)
            module.bias.data.zero_()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    # -- the encoders ------------------------------------------------------------------------------

    def encode_media(self, audio_values=None, global_pixel_values=None, local_pixel_values=None,
                     temporal_pixel_values=None) -> dict[str, torch.Tensor]:
        """Pooled encoder outputs, one (batch, encoder width) tensor per encoder given."""
        features = {}
        if audio_values is not None:
            hidden = self.audio_encoder(audio_values).last_hidden_state
            features["audio"] = hidden.mean(dim=1)
        if global_pixel_values is not None:
            features["global"] = self.global_encoder(pixel_values=global_pixel_values).last_hidden_state[:, 0]
        if local_pixel_values is not None:
            batch, frames = local_pixel_values.shape[:2]
            flat = local_pixel_values.flatten(0, 1)
            patches = (self.config.local_config.image_size // self.config.local_config.patch_size) ** 2
            # a fixed patch order: MAE's random shuffle is only for pre-training's masking
            noise = torch.arange(patches, device=flat.device, dtype=torch.float32).expand(flat.shape[0], -1)
            hidden = self.local_encoder(pixel_values=flat, noise=noise).last_hidden_state
            features["local"] = hidden.mean(dim=1).view(batch, frames, -1).mean(dim=1)
        if temporal_pixel_values is not None:
            features["temporal"] = self.temporal_encoder(pixel_values=temporal_pixel_values).last_hidden_state.mean(dim=1)
        return features

    def media_tokens(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, 1, width) audio token and (batch, 3, width) visual tokens in the LLM's space."""
        dtype = self.audio_projection.weight.dtype
        project = lambda name: getattr(self, f"{name}_projection")(features[name].to(dtype))  # noqa: E731
        audio = project("audio").unsqueeze(1)
        visual = torch.stack([project(name) for name in ("global", "local", "temporal")], dim=1)
        return audio, visual

    # -- forward -----------------------------------------------------------------------------------

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, cache_position=None, logits_to_keep=0,
                audio_values=None, global_pixel_values=None, local_pixel_values=None, temporal_pixel_values=None,
                audio_features=None, global_features=None, local_features=None, temporal_features=None,
                **kwargs) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
            audio_at = input_ids == self.config.audio_token_id
            video_at = input_ids == self.config.video_token_id
            if bool(audio_at.any() or video_at.any()):
                given = {"audio": audio_features, "global": global_features, "local": local_features,
                         "temporal": temporal_features}
                media = {"audio": audio_values, "global": global_pixel_values, "local": local_pixel_values,
                         "temporal": temporal_pixel_values}
                missing = [name for name in ENCODERS if given[name] is None]
                if missing:
                    encoded = self.encode_media(**{MEDIA_KEYS[name]: media[name] for name in missing})
                    given.update(encoded)
                    missing = [name for name in ENCODERS if given[name] is None]
                if missing:
                    raise ValueError(f"the prompt holds media tokens but no {', '.join(missing)} input was given")
                audio, visual = self.media_tokens(given)
                batch = input_ids.shape[0]
                if not (bool((audio_at.sum(1) == 1).all()) and bool((video_at.sum(1) == 3).all())):
                    raise ValueError("every prompt must hold exactly one <audio> and three <video> tokens")
                inputs_embeds = inputs_embeds.clone()
                inputs_embeds[audio_at] = audio.reshape(batch, -1).to(inputs_embeds.dtype)
                inputs_embeds[video_at] = visual.reshape(batch * 3, -1).to(inputs_embeds.dtype)
        return self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                   position_ids=position_ids, past_key_values=past_key_values, labels=labels,
                                   use_cache=use_cache, cache_position=cache_position,
                                   logits_to_keep=logits_to_keep, **kwargs)

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None,
                                      inputs_embeds=None, cache_position=None, **kwargs):
        media = {key: kwargs.pop(key, None) for key in list(MEDIA_KEYS.values()) + list(FEATURE_KEYS.values())}
        inputs = super().prepare_inputs_for_generation(input_ids, past_key_values=past_key_values,
                                                       attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                                       cache_position=cache_position, **kwargs)
        # the media enter with the prompt only; later steps read them from the cache
        if inputs.get("input_ids") is not None:
            ids = inputs["input_ids"]
            if bool(((ids == self.config.audio_token_id) | (ids == self.config.video_token_id)).any()):
                inputs.update({key: value for key, value in media.items() if value is not None})
        return inputs
