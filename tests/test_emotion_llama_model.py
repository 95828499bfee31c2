"""The Emotion-LLaMA model on a tiny random checkpoint written by ``python -m finetune.emotion_llama init --tiny``:
where the media tokens go, that every encoder's features reach the LLM, and save/load.

    .venv/bin/python -m pytest -q tests/test_emotion_llama_model.py
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emo_core.models.emotion_llama import register
from emo_core.models.emotion_llama.clip_views import ClipViews
from emo_core.models.emotion_llama.processing import EmotionLlamaProcessor
from finetune.emotion_llama import main as emotion_llama_main

PROMPT = "The person in video says: nothing. [emotion] What is the emotion?"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("emotion_llama") / "tiny"
    assert emotion_llama_main(["init", "--tiny", str(out)]) == 0
    register()
    from transformers import AutoModelForImageTextToText

    return out, AutoModelForImageTextToText.from_pretrained(out).eval(), EmotionLlamaProcessor.from_pretrained(out)


def views(seed: int = 0, faces: int = 6) -> ClipViews:
    rng = np.random.default_rng(seed)
    return ClipViews(rng.integers(0, 256, (72, 96, 3), dtype=np.uint8),
                     [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(faces)],
                     rng.standard_normal(12000).astype(np.float32) * 0.1)


def logits(model, processor, clip: ClipViews) -> torch.Tensor:
    with torch.no_grad():
        return model(**processor(text=[PROMPT], videos=[clip])).logits[0]


def test_one_audio_and_three_visual_tokens_where_the_template_says(tiny):
    _, model, processor = tiny
    tokenizer = processor.tokenizer
    inputs = processor(text=[PROMPT], videos=[views()])
    ids = inputs["input_ids"][0].tolist()
    audio_id, video_id = tokenizer.convert_tokens_to_ids("<audio>"), tokenizer.convert_tokens_to_ids("<video>")
    assert ids.count(audio_id) == 1 and ids.count(video_id) == 3
    # the template "[INST] <audio> <video> {prompt} [/INST]": BOS, "[INST] ", the audio token, a space,
    # the three visual tokens, then the prompt's own tokens
    before = tokenizer("[INST] ", add_special_tokens=False)["input_ids"]
    space = tokenizer(" ", add_special_tokens=False)["input_ids"]
    audio_at = 1 + len(before)
    assert ids[0] == tokenizer.bos_token_id and ids[1:audio_at] == before and ids[audio_at] == audio_id
    first_video = audio_at + 1 + len(space)
    assert ids[first_video:first_video + 3] == [video_id] * 3
    assert tokenizer.decode(ids[first_video + 3:]).strip() == f"{PROMPT} [/INST]"

    # what the LLM receives at those positions: each encoder's pooled output through its projection,
    # computed here directly from the sub-models
    seen = {}
    model.language_model.register_forward_pre_hook(lambda module, args, kwargs: seen.update(kwargs), with_kwargs=True)
    with torch.no_grad():
        model(**inputs)
        embeds = seen["inputs_embeds"][0]
        audio = model.audio_projection(model.audio_encoder(inputs["audio_values"]).last_hidden_state.mean(1))[0]
        peak = model.global_projection(model.global_encoder(inputs["global_pixel_values"]).last_hidden_state[:, 0])[0]
        video = model.temporal_encoder(inputs["temporal_pixel_values"]).last_hidden_state.mean(1)
        temporal = model.temporal_projection(video)[0]
        text_rows = model.get_input_embeddings()(inputs["input_ids"])[0]
    torch.testing.assert_close(embeds[audio_at], audio)
    torch.testing.assert_close(embeds[first_video], peak)
    torch.testing.assert_close(embeds[first_video + 2], temporal)
    others = [i for i in range(len(ids)) if i != audio_at and not first_video <= i < first_video + 3]
    torch.testing.assert_close(embeds[others], text_rows[others])
    for row in (audio_at, first_video, first_video + 1, first_video + 2):
        assert embeds[row].abs().sum() > 0 and not torch.allclose(embeds[row], text_rows[row])


@pytest.mark.parametrize("change", ["face sequence", "peak frame", "audio"])
def test_each_encoders_features_reach_the_llm(tiny, change):
    _, model, processor = tiny
    base = views()
    changed = views()
    rng = np.random.default_rng(7)
    if change == "face sequence":
        changed.face_frames = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(6)]
    elif change == "peak frame":
        changed.peak_frame = rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)
    else:
        changed.audio = rng.standard_normal(12000).astype(np.float32) * 0.1
    assert not torch.allclose(logits(model, processor, base), logits(model, processor, changed), atol=1e-6)
    features = model.encode_media(**{k: v for k, v in processor(text=[PROMPT], videos=[base]).items()
                                     if k.endswith("_values")})
    assert set(features) == {"audio", "global", "local", "temporal"}
    assert all(value.abs().sum() > 0 for value in features.values())


def test_the_local_view_averages_the_face_frames(tiny):
    """Four face crops of which the local encoder sees the mean of its per-frame features."""
    _, model, processor = tiny
    clip = views(faces=4)
    pixels = processor(text=[PROMPT], videos=[clip])["local_pixel_values"]
    with torch.no_grad():
        each = [model.encode_media(local_pixel_values=pixels[:, i:i + 1])["local"] for i in range(4)]
        together = model.encode_media(local_pixel_values=pixels)["local"]
    torch.testing.assert_close(together, torch.stack(each).mean(0))


def test_save_and_load_give_the_same_logits_and_the_checkpoint_describes_itself(tiny, tmp_path):
    path, model, processor = tiny
    clip = views(3)
    before = logits(model, processor, clip)
    model.save_pretrained(tmp_path / "again")
    processor.save_pretrained(tmp_path / "again")
    from transformers import AutoModelForImageTextToText

    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "again").eval()
    torch.testing.assert_close(logits(loaded, EmotionLlamaProcessor.from_pretrained(tmp_path / "again"), clip), before)
    config_text = (path / "config.json").read_text()
    config = json.loads(config_text)
    assert {config[f"{part}_config"]["model_type"] for part in ("audio", "global", "local", "temporal", "text")} \
        == {"hubert", "vit", "vit_mae", "videomae", "llama"}
    assert str(path) not in config_text and str(tmp_path) not in (tmp_path / "again" / "config.json").read_text()
    lora = [name for name, _ in loaded.named_parameters() if "lora_" in name]
    assert lora and all(name.startswith("language_model.") for name in lora)


def test_init_from_pretrained_parts_keeps_their_weights(tiny, tmp_path):
    """Parts saved as separate checkpoints (a tokenizer without the media tokens) compose a start checkpoint."""
    from transformers import AutoModelForImageTextToText, PreTrainedTokenizerFast

    from finetune.emotion_llama_init import tiny_tokenizer

    _, model, _ = tiny
    parts = {"audio": model.audio_encoder, "global": model.global_encoder, "local": model.local_encoder,
             "temporal": model.temporal_encoder}
    for name, module in parts.items():
        module.save_pretrained(tmp_path / name)
    from transformers import AutoModelForCausalLM

    plain_llm = AutoModelForCausalLM.from_config(model.config.text_config)
    plain_llm.save_pretrained(tmp_path / "llm")
    tokenizer = tiny_tokenizer()
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    tokenizer.save_pretrained(tmp_path / "llm")
    args = ["init", "--output", str(tmp_path / "start"), "--dtype", "float32", "--lora-r", "4", "--face-frames", "3"]
    for name in ("audio", "global", "local", "temporal", "llm"):
        args += [f"--{name}", str(tmp_path / name)]
    assert emotion_llama_main(args) == 0
    start = AutoModelForImageTextToText.from_pretrained(tmp_path / "start").eval()
    for name, module in parts.items():
        expected = module.state_dict()
        got = getattr(start, f"{name}_encoder").state_dict()
        assert set(got) == set(expected) and all(torch.equal(got[k], expected[k]) for k in expected)
    base = {k.replace(".base_layer", ""): v for k, v in start.language_model.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(base[k], v) for k, v in plain_llm.state_dict().items())
    assert start.config.lora_r == 4 and start.config.face_frames == 3
    assert start.config.sources == {"audio": "audio", "global": "global", "local": "local", "temporal": "temporal",
                                    "llm": "llm"}  # folder names, not where they are
    processor = EmotionLlamaProcessor.from_pretrained(tmp_path / "start")
    inputs = processor(text=[PROMPT], videos=[views()])
    assert inputs["local_pixel_values"].shape[1] == 3
    with torch.no_grad():
        assert torch.isfinite(start(**inputs).logits).all()
