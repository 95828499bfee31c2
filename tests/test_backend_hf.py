"""The ``hf`` backend on tiny random checkpoints of every supported family, loaded from local directories
through the same ``from_pretrained`` path a hub id takes (nothing is downloaded).

    .venv/bin/python -m pytest -q tests/test_backend_hf.py
"""

from __future__ import annotations

import math

import pytest

from emo_core import Settings, analyze_image, analyze_image_stream, prompts
from emo_core.backends import get_backend, user_message
from emo_core.backends import hf_families, hf_loading
from emo_core.backends.hf import HFBackend
from emo_core.errors import BackendError, CapabilityError
from emo_core.labels import get_class_set
from tests.tiny_models import tiny_model_dir

MIKELS = list(get_class_set("mikels8").labels)
# family -> (model class, processor class) that a real checkpoint of the family loads as
FAMILIES = {
    "instructblip": ("InstructBlipForConditionalGeneration", "InstructBlipProcessor"),
    "instructblip_t5": ("InstructBlipForConditionalGeneration", "InstructBlipProcessor"),
    "blip2": ("Blip2ForConditionalGeneration", "Blip2Processor"),
    "llava": ("LlavaForConditionalGeneration", "LlavaProcessor"),
    "llava_next": ("LlavaNextForConditionalGeneration", "LlavaNextProcessor"),
    "idefics3": ("Idefics3ForConditionalGeneration", "Idefics3Processor"),
    "qwen2_vl": ("Qwen2VLForConditionalGeneration", "Qwen2VLProcessor"),
    "qwen2_5_omni": ("Qwen2_5OmniForConditionalGeneration", "Qwen2_5OmniProcessor"),
}


def hf_settings(family: str, width: int = 32, **overrides) -> Settings:
    return Settings(backend="hf", model=str(tiny_model_dir(family, width)), preload=False, **overrides)


def backend_for(family: str, width: int = 32, **overrides) -> HFBackend:
    return HFBackend(hf_settings(family, width, **overrides))


@pytest.fixture(scope="session")
def photo(images):
    return str(images["astronaut"])


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A 2 s video (red, green, blue, red: half a second each) with a 440 Hz tone on a 44.1 kHz audio track."""
    import numpy as np
    from moviepy import AudioArrayClip, ImageSequenceClip

    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 40, 40)]
    frames = [np.full((48, 64, 3), colour, dtype=np.uint8) for colour in colours for _ in range(5)]
    rate = 44100
    t = np.arange(2 * rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    video = ImageSequenceClip(frames, fps=10).with_audio(AudioArrayClip(np.stack([tone, tone], axis=1), fps=rate))
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    video.write_videofile(str(path), codec="libx264", audio_codec="aac", logger=None)
    return str(path)


def reference_log_likelihood(loaded, inputs, candidate: str) -> float:
    """One candidate, unbatched and unpadded, the textbook way: the check on the batched ``score``."""
    import torch

    ids = torch.tensor([loaded.tokenizer(candidate, add_special_tokens=False)["input_ids"]])
    media = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    with torch.inference_mode():
        if loaded.is_encoder_decoder:
            start = loaded.text_model.config.get_text_config().decoder_start_token_id
            decoder_ids = torch.cat([torch.tensor([[start]]), ids[:, :-1]], dim=1)
            logits = loaded.text_model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                       decoder_input_ids=decoder_ids, **media).logits[0]
        else:
            full = torch.cat([inputs["input_ids"], ids], dim=1)
            for key in ("token_type_ids", "mm_token_type_ids"):  # per-token modality: the candidate is text
                if key in media:
                    media[key] = torch.cat([media[key], torch.zeros_like(ids, dtype=media[key].dtype)], dim=1)
            logits = loaded.text_model(input_ids=full, attention_mask=torch.ones_like(full), **media).logits[0]
            logits = logits[inputs["input_ids"].shape[1] - 1: -1]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        return float(log_probs.gather(-1, ids[0].unsqueeze(-1)).sum())


# ------------------------------------------------------------------------------------------------
# every family


@pytest.mark.parametrize("family", FAMILIES)
def test_loads_with_the_auto_classes_from_a_directory(family):
    backend = backend_for(family).load()
    loaded = hf_loading.acquire(backend.options)
    model_class, processor_class = FAMILIES[family]
    assert type(loaded.model).__name__ == model_class
    assert processor_class in [cls.__name__ for cls in type(loaded.processor).__mro__]
    assert loaded.placement.device_map == {"": "cpu"}
    assert str(next(loaded.model.parameters()).dtype) == "torch.float32"  # fp32 on a CPU
    assert {"image", "generate", "score"} <= backend.capabilities


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_returns_text_and_the_stream_spells_the_same(family, photo):
    backend = backend_for(family)
    messages = user_message("Please select the emotion closest to the image.", image=photo)
    text = backend.generate(messages, max_new_tokens=8)
    assert isinstance(text, str) and text.strip()
    assert backend.generate(messages, max_new_tokens=8) == text  # greedy: deterministic
    pieces = list(backend.generate_stream(messages, max_new_tokens=8))
    assert "".join(pieces) == text


def greedy_continuation(loaded, inputs, prefix: str, steps: int) -> str:
    """The textbook greedy loop (a full forward per token, no cache): the check on ``answer_prefix``."""
    import torch

    written = loaded.tokenizer(prefix, add_special_tokens=False)["input_ids"]
    new_ids = []
    media = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    with torch.inference_mode():
        for _ in range(steps):
            tail = torch.tensor([written + new_ids])
            if loaded.is_encoder_decoder:
                start = loaded.text_model.config.get_text_config().decoder_start_token_id
                decoder_ids = torch.cat([torch.tensor([[start]]), tail], dim=1)
                logits = loaded.text_model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                           decoder_input_ids=decoder_ids, **media).logits
            else:
                full = torch.cat([inputs["input_ids"], tail], dim=1)
                extra = dict(media)
                for key in ("token_type_ids", "mm_token_type_ids"):
                    if key in extra:
                        extra[key] = torch.cat([extra[key], torch.zeros_like(tail, dtype=extra[key].dtype)], dim=1)
                logits = loaded.text_model(input_ids=full, attention_mask=torch.ones_like(full), **extra).logits
            token = int(logits[0, -1].argmax())
            if token == loaded.tokenizer.eos_token_id:
                break
            new_ids.append(token)
    return loaded.tokenizer.decode(new_ids, skip_special_tokens=True)


@pytest.mark.parametrize("family", ["instructblip", "instructblip_t5", "llava", "qwen2_vl"])
def test_generation_continues_the_answer_prefix(family, photo):
    backend = backend_for(family)
    assert backend.supports("continue")
    messages = user_message("Which emotion does this image evoke, and why?", image=photo)
    loaded, inputs = backend.model_inputs(messages)
    prefix = "Predicted emotion: awe. Reason:"
    continuation = backend.generate(messages, max_new_tokens=6, answer_prefix=prefix)
    assert continuation == greedy_continuation(loaded, inputs, prefix, 6)
    assert "".join(backend.generate_stream(messages, max_new_tokens=6, answer_prefix=prefix)) == continuation
    other = "Predicted emotion: fear."
    assert backend.generate(messages, max_new_tokens=6, answer_prefix=other) == greedy_continuation(loaded, inputs,
                                                                                                  other, 6)


MEDIA_KEYS = ("pixel_values", "input_features")


@pytest.mark.parametrize("family", FAMILIES)
def test_score_runs_the_media_once_and_gives_each_candidates_log_likelihood(family, photo):
    backend = backend_for(family)
    messages = user_message("Please select the emotion closest to the image.", image=photo)
    loaded, inputs = backend.model_inputs(messages)

    calls = []  # (batch size, whether media went in) of every forward of the text model
    original_forward = loaded.text_model.forward

    def counting_forward(*args, **kwargs):
        media = [key for key in MEDIA_KEYS if kwargs.get(key) is not None]
        rows = (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs["decoder_input_ids"]).shape[0]
        calls.append((rows, bool(media)))
        return original_forward(*args, **kwargs)

    loaded.text_model.forward = counting_forward
    try:
        scores = backend.score(messages, MIKELS)
    finally:
        del loaded.text_model.forward
    # the prompt and its media go through the model once, as a batch of one, whatever the class count
    assert [call for call in calls if call[1]] == [(1, True)]
    assert len(calls) <= 2
    assert list(scores) == MIKELS
    assert all(value < 0 and math.isfinite(value) for value in scores.values())
    for label in MIKELS:  # the numbers of the textbook computation (and of the earlier batched pass)
        assert scores[label] == pytest.approx(reference_log_likelihood(loaded, inputs, label), abs=2e-4)
    # the task's softmax over them is a distribution; the scores are deterministic
    top = max(scores.values())
    total = sum(math.exp(v - top) for v in scores.values())
    assert sum(math.exp(v - top) / total for v in scores.values()) == pytest.approx(1.0)
    assert backend.score(messages, MIKELS) == scores


def test_score_of_one_token_candidates_needs_no_continuation(photo):
    backend = backend_for("llava")
    loaded = hf_loading.acquire(backend.options)
    tokenizer = loaded.tokenizer
    one_token = [word for word in ("a", "e", "o", "s") if len(tokenizer(word, add_special_tokens=False)["input_ids"]) == 1]
    assert len(one_token) >= 2
    messages = user_message("Which emotion?", image=photo)
    _, inputs = backend.model_inputs(messages)
    scores = backend.score(messages, one_token)
    for word in one_token:
        assert scores[word] == pytest.approx(reference_log_likelihood(loaded, inputs, word), abs=2e-4)


@pytest.mark.parametrize("family", ["instructblip", "llava", "idefics3", "qwen2_vl", "qwen2_5_omni"])
def test_image_task_end_to_end(family, photo):
    settings = hf_settings(family)
    result = analyze_image(photo, "mikels8", backend=get_backend("hf", settings), settings=settings)
    assert result.label in MIKELS
    assert list(result.distribution) == MIKELS
    assert sum(result.distribution.values()) == pytest.approx(1.0)
    assert result.confidence == pytest.approx(max(result.distribution.values()), abs=1e-4)
    assert result.basis == "model likelihood of each label"
    assert result.backend.startswith("hf: ") and result.raw_text  # the reason came from the model
    assert result.timings["classify"] > 0 and result.timings["reason"] > 0


def test_the_reason_continues_the_scored_label_and_streams(photo, monkeypatch, tmp_path):
    import shutil

    settings = hf_settings("llava")
    backend = get_backend("hf", settings)
    asked = []
    generate_stream = backend.generate_stream

    def recording_stream(messages, **options):
        shutil.copy(messages[0]["content"][0]["path"], tmp_path / "shown.jpg")  # the task's normalised image
        asked.append((user_message(messages[0]["content"][-1]["text"], image=str(tmp_path / "shown.jpg")), options))
        return generate_stream(messages, **options)

    monkeypatch.setattr(backend, "generate_stream", recording_stream)
    seen = [(result.label, result.reason, result.complete)
            for result in analyze_image_stream(photo, "mikels8", backend=backend, settings=settings)]
    label, reason, _ = seen[-1]

    # the label is the best-scored class of the categorical prompt
    categorical = user_message(prompts.render("categorical", options=MIKELS), image=str(tmp_path / "shown.jpg"))
    scores = backend.score(categorical, MIKELS)
    assert label == max(scores, key=scores.get)
    # one generation, asked to continue the answer that names that label, with the reasoning prompt
    ((messages, options),) = asked
    prefix = f"Predicted emotion: {label}. Reason:"
    assert options["answer_prefix"] == prefix
    assert messages[0]["content"][-1]["text"] == prompts.render("reasoning", options=MIKELS)
    continuation = backend.generate(messages, max_new_tokens=options["max_new_tokens"], answer_prefix=prefix)
    result = analyze_image(photo, "mikels8", backend=backend, settings=settings)
    assert result.raw_text == prefix + continuation
    assert result.reason == continuation.split("Predicted emotion")[0].strip()
    assert result.answer.startswith(f"Predicted emotion: {label}.")
    # streamed: the label is known before the reason, never changes, and the reason grows piece by piece
    assert seen[0] == (None, "", False) and len(seen) > 4
    assert all(seen_label == label for seen_label, _, _ in seen[1:])
    reasons = [seen_reason for _, seen_reason, _ in seen]
    assert len(set(reasons)) > 2 and not any(done for *_, done in seen[:-1]) and seen[-1][2]


# ------------------------------------------------------------------------------------------------
# video and audio


def test_a_video_becomes_frames_plus_its_audio_for_a_model_that_hears(clip):
    loaded = hf_loading.acquire(backend_for("qwen2_5_omni").options)
    prompt = hf_families.prompt_and_media(user_message("What is the speaker feeling?", video=clip),
                                          loaded.family, loaded.processor)
    assert len(prompt.images) == hf_families.FRAMES_PER_VIDEO and len(prompt.audios) == 1
    # frames at the centres of four half-second slices: one per colour, in order
    dominant = [max(range(3), key=lambda c: frame.getpixel((32, 24))[c]) for frame in prompt.images]
    assert dominant == [0, 1, 2, 0]
    audio = prompt.audios[0]
    assert audio.dtype.name == "float32" and abs(audio.size - 32000) < 1600  # 2 s at 16 kHz
    assert 0.15 < float(abs(audio).max()) < 0.45  # the tone, not near-silence
    assert prompt.text.count("<|IMAGE|>") == 4 and prompt.text.count("<|AUDIO|>") == 1


def test_video_and_audio_generate_and_score_with_qwen_omni(clip):
    backend = backend_for("qwen2_5_omni")
    assert {"video", "audio"} <= backend.capabilities
    messages = user_message("What is the speaker feeling?", video=clip)
    assert backend.generate(messages, max_new_tokens=4).strip()
    scores = backend.score(messages, ["happy", "sad", "neutral"])
    assert list(scores) == ["happy", "sad", "neutral"] and all(v < 0 for v in scores.values())


def test_a_model_that_does_not_hear_gets_frames_only_and_refuses_audio(clip):
    loaded = hf_loading.acquire(backend_for("llava").options)
    prompt = hf_families.prompt_and_media(user_message("Feeling?", video=clip), loaded.family, loaded.processor)
    assert len(prompt.images) == hf_families.FRAMES_PER_VIDEO and prompt.audios == []
    with pytest.raises(CapabilityError, match="audio"):
        backend_for("llava").generate(user_message("Feeling?", audio=clip), max_new_tokens=2)


def test_one_image_families_refuse_videos_and_image_free_prompts(clip):
    backend = backend_for("blip2")
    assert "video" not in backend.capabilities
    with pytest.raises(CapabilityError, match="video"):
        backend.generate(user_message("Feeling?", video=clip), max_new_tokens=2)
    with pytest.raises(CapabilityError, match="exactly one image"):
        backend.score(user_message("Feeling?"), ["joy"])


# ------------------------------------------------------------------------------------------------
# cache, unload, sampling


def test_models_are_loaded_once_per_options_and_unloaded_on_switch(monkeypatch):
    loads = []
    real_load = hf_loading._load
    monkeypatch.setattr(hf_loading, "_load", lambda options: loads.append(options) or real_load(options))
    for family in ("blip2", "llava_next"):  # start cold, whatever earlier tests loaded
        hf_loading.release(HFBackend(hf_settings(family)).options)
    first = get_backend("hf", hf_settings("blip2", port=7001))
    first.load()
    HFBackend(hf_settings("blip2", port=7002)).load()  # another instance, same load options
    first.load()
    assert len(loads) == 1 and first.options in hf_loading.loaded_options()

    second = get_backend("hf", hf_settings("llava_next", port=7003))  # the user picks another model
    assert first.options not in hf_loading.loaded_options()
    second.load()
    assert loads[-1] == second.options and second.options in hf_loading.loaded_options()
    second.unload()
    assert second.options not in hf_loading.loaded_options()
    assert hf_loading.release(second.options) is False


def test_sampling_is_reproducible_per_seed(photo):
    backend = backend_for("llava")
    messages = user_message("Describe the image.", image=photo)
    runs = [backend.generate(messages, max_new_tokens=12, temperature=1.0, seed=seed) for seed in (3, 3, 4)]
    assert runs[0] == runs[1]
    assert runs[0] != backend.generate(messages, max_new_tokens=12)  # sampling, not greedy


# ------------------------------------------------------------------------------------------------
# quantised loading (bitsandbytes on the CPU)


@pytest.mark.parametrize("quantization, layer_class", [("8bit", "Linear8bitLt"), ("4bit", "Linear4bit")])
def test_quantised_loading_on_cpu(quantization, layer_class, photo):
    backend = backend_for("llava", width=64, quantization=quantization)
    loaded = hf_loading.acquire(backend.options)
    layer_types = {type(module).__name__ for module in loaded.model.modules()}
    assert layer_class in layer_types
    messages = user_message("Which emotion?", image=photo)
    assert isinstance(backend.generate(messages, max_new_tokens=4), str)
    scores = backend.score(messages, MIKELS)
    assert all(math.isfinite(v) and v < 0 for v in scores.values())
    backend.unload()


# ------------------------------------------------------------------------------------------------
# settings -> placement, and the errors a person sees


def placement(cuda=False, mps=False, bf16=False, **options):
    return hf_loading.resolve_placement(hf_loading.LoadOptions("m", **options), cuda, mps, bf16)


def test_placement_and_dtype_follow_the_settings_and_the_hardware():
    import torch

    assert placement() == hf_loading.Placement({"": "cpu"}, torch.float32, None, False)
    gpu = placement(cuda=True, bf16=True, max_memory="0:10GiB, cpu:30GiB")
    assert gpu.device_map == "auto" and gpu.dtype == torch.bfloat16
    assert gpu.max_memory == {0: "10GiB", "cpu": "30GiB"}
    assert placement(cuda=True, bf16=False).dtype == torch.float16
    assert placement(mps=True).device_map == {"": "mps"}
    assert placement(cuda=True, device="cpu").device_map == {"": "cpu"}
    assert placement(cuda=True, dtype="float32").dtype == torch.float32


@pytest.mark.parametrize("options, message", [
    (dict(device="cuda"), "no CUDA GPU"),
    (dict(device="mps"), "no Apple GPU"),
    (dict(max_memory="0:10GiB"), "max_memory only bounds"),
    (dict(max_memory="10GiB"), "is not 'device:amount'"),
])
def test_impossible_placements_are_refused_clearly(options, message):
    with pytest.raises(BackendError, match=message):
        placement(**options)


def test_quantisation_where_it_cannot_work_is_refused_clearly(monkeypatch):
    with pytest.raises(BackendError, match="no Apple-GPU"):
        placement(mps=True, quantization="4bit")
    monkeypatch.setattr(hf_loading, "bitsandbytes_version", lambda: None)
    with pytest.raises(BackendError, match="needs the bitsandbytes package"):
        placement(quantization="8bit")
    monkeypatch.setattr(hf_loading, "bitsandbytes_version", lambda: "0.43.1")
    with pytest.raises(BackendError, match="no CPU kernels"):
        placement(quantization="4bit")
    assert placement(cuda=True, quantization="4bit").device_map == "auto"  # fine on a GPU


def test_missing_or_unknown_models_are_clear_errors(tmp_path):
    with pytest.raises(BackendError, match="EMO_MODEL"):
        HFBackend(Settings(backend="hf"))
    constructed = HFBackend(Settings(backend="hf", model=str(tmp_path / "no-such-model")))  # loads nothing yet
    with pytest.raises(BackendError, match="cannot read the configuration"):
        constructed.load()

    from transformers import LlamaForCausalLM

    from tests.tiny_models import _llama_text_config, train_tokenizer

    text_only = tmp_path / "text-only"
    LlamaForCausalLM(_llama_text_config(train_tokenizer())).save_pretrained(text_only)
    with pytest.raises(BackendError, match="cannot load a model of type 'llama'"):
        HFBackend(Settings(backend="hf", model=str(text_only))).capabilities
