"""finetune/ set-up, without training: the data layouts, type mixing and fractions, bad input refused
before any step, configuration files and flags, accelerate configs, quantisation rules, memory.

    .venv/bin/python -m pytest -q tests/test_finetune_setup.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from finetune import FinetuneError, config as ft_config
from finetune.data import read_examples, select
from finetune.trainer import run
from tests.finetune_fixtures import samples, write_dataset
from tests.tiny_models import tiny_model_dir

CONFIGS = Path(__file__).resolve().parent.parent / "finetune" / "configs"


def expected_turns(count: int) -> list[tuple[str, str]]:
    """(type, answer) of every turn the fixture writes, in file order."""
    return [(s["type"], s["conversations"][2 * t + 1]["value"]) for s in samples(count)
            for t in range(len(s["conversations"]) // 2)]


@pytest.mark.parametrize("layout", ["llava", "emovit", "instructblip"])
def test_every_layout_reads_the_same_examples(tmp_path, layout):
    data = write_dataset(tmp_path, 3, layout)
    examples = read_examples(data)
    assert [(e.type, e.answer) for e in examples] == expected_turns(3)
    assert len({e.id for e in examples}) == len(examples)
    assert all("<image>" not in e.question for e in examples)
    categorical = [e for e in examples if e.type == "categorical"]
    assert [e.label for e in categorical] == [s["label"] for s in samples(3) if s["type"] == "categorical"]


def test_type_inference_of_untyped_records(tmp_path):
    """EmoVIT's all.json has no type: the answer's form decides (see finetune/data.py)."""
    records = [
        {"id": "1", "image": "a.png", "conversations": [{"from": "human", "value": "Pick one"},
                                                       {"from": "gpt", "value": "Predict emotion: awe"}]},
        {"id": "2", "image": "a.png", "conversations": [{"from": "human", "value": "Why is it calm?"},
                                                       {"from": "gpt", "value": "Soft light."}]},
        {"id": "3", "image": "a.png", "conversations": [{"from": "human", "value": "Describe it"},
                                                       {"from": "gpt", "value": "Predicted emotion: fear. Reason: dark."}]},
        {"id": "4", "image": "a.png", "conversations": [{"from": "human", "value": "What colour is the sky?"},
                                                       {"from": "gpt", "value": "Predict emotion is not asked; blue."}]},
    ]
    path = tmp_path / "all.json"
    path.write_text(json.dumps(records))
    assert [(e.type, e.label) for e in read_examples(path)] == [
        ("categorical", "awe"), ("reasoning", None), ("reasoning", None), ("conversation", None)]


@pytest.mark.parametrize("types", [["categorical"], ["categorical", "conversation"],
                                   ["categorical", "conversation", "reasoning"], ["reasoning"]])
def test_type_mixing_keeps_exactly_the_chosen_types(tmp_path, types):
    examples = read_examples(write_dataset(tmp_path, 5, "llava"))
    chosen = select(examples, types, 1.0, seed=0)
    per_type = {"categorical": 1, "conversation": 2, "reasoning": 1}  # turns per image in the fixture
    assert len(chosen) == 5 * sum(per_type[t] for t in types)
    assert {e.type for e in chosen} == set(types)
    assert [e.id for e in chosen] == [e.id for e in examples if e.type in types]  # file order kept


def test_fractions_choose_whole_samples_by_seeded_hash(tmp_path):
    examples = read_examples(write_dataset(tmp_path, 10, "instructblip"))  # 30 samples, 40 turns
    sample_of = {e.id: e.sample for e in examples}

    def expected(fraction: float, seed: int) -> set[str]:
        keys = sorted({e.sample for e in examples},
                      key=lambda s: hashlib.sha256(json.dumps([seed, s], separators=(",", ":")).encode()).hexdigest())
        return set(keys[:round(len(keys) * fraction)])

    for fraction in (0.1, 0.25, 0.5, 1.0):
        chosen = select(examples, ["categorical", "conversation", "reasoning"], fraction, seed=7)
        assert {sample_of[e.id] for e in chosen} == expected(fraction, 7)
        # all turns of a chosen sample are kept together
        assert len(chosen) == sum(1 for e in examples if e.sample in expected(fraction, 7))
    small = {e.id for e in select(examples, ["conversation", "reasoning"], 0.25, 7)}
    large = {e.id for e in select(examples, ["conversation", "reasoning"], 0.5, 7)}
    assert small < large
    seeded = [{e.id for e in select(examples, ["categorical"], 0.5, seed)} for seed in (1, 2)]
    assert seeded[0] != seeded[1]


# ------------------------------------------------------------------------------------------------
# bad input: a clear error before any step


def base_overrides(tmp_path, recipe="emovit", **extra) -> dict:
    data = write_dataset(tmp_path, 2, "llava")
    family = "instructblip" if recipe == "emovit" else "llava"
    return {"model": str(tiny_model_dir(family)), "data": str(data), "image_folder": str(tmp_path / "images"),
            "output_dir": str(tmp_path / "out"), "max_steps": 2, "warmup_steps": 0, **extra}


def test_missing_and_unreadable_images_are_listed(tmp_path):
    overrides = base_overrides(tmp_path)
    (tmp_path / "images" / "img000.png").unlink()
    (tmp_path / "images" / "img001.png").write_bytes(b"not an image")
    with pytest.raises(FinetuneError, match=r"2 images .*img000.png: missing; img001.png: not a readable image"):
        run(ft_config.build("emovit", overrides=overrides))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, message", [
    ([{"file": "a.png", "caption": "x"}], "unrecognised record format"),
    ({"id": 1}, "non-empty JSON list"),
    ([{"id": "1", "image": "a.png", "conversations": [{"from": "human", "value": "q"}]}], "question-answer pairs"),
    ([{"id": "1", "image": "a.png", "conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}]}],
     "\"human\" question then a \"gpt\" answer"),
    ([{"image": "a.png", "text_input": "q", "text_output": "", "type": "categorical"}], "empty or missing text"),
    ([{"image": "a.png", "text_input": "q", "text_output": "a", "type": "humour"}], "unknown type"),
])
def test_wrong_formats_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(FinetuneError, match=message):
        read_examples(path)


def test_not_json_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("id,image\n1,a.png\n")
    with pytest.raises(FinetuneError, match="not a JSON file"):
        read_examples(path)


@pytest.mark.parametrize("recipe, family, hint", [
    ("emovit", "llava", "finetune.llava_lora"), ("emovit", "blip2", "'blip-2' model"),
    ("llava_lora", "instructblip", "finetune.emovit"), ("llava_lora", "qwen2_vl", "'qwen2_vl' model"),
])
def test_a_model_of_another_kind_is_refused(tmp_path, recipe, family, hint):
    overrides = base_overrides(tmp_path, recipe, model=str(tiny_model_dir(family)))
    with pytest.raises(FinetuneError, match=hint):
        run(ft_config.build(recipe, overrides=overrides))
    assert not (tmp_path / "out" / "log.csv").exists()


def test_a_memory_estimate_over_the_limit_stops_before_training(tmp_path, capsys):
    overrides = base_overrides(tmp_path, memory_limit_gb=0.001)
    with pytest.raises(FinetuneError, match=r"needs about .* GiB but --memory-limit-gb 0.001"):
        run(ft_config.build("emovit", overrides=overrides))
    assert "memory estimate: weights" in capsys.readouterr().out
    assert not (tmp_path / "out" / "log.csv").exists()


def test_fp16_on_cpu_is_refused(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(FinetuneError, match="fp16 training needs a CUDA GPU"):
        run(ft_config.build("emovit", overrides=base_overrides(tmp_path, precision="fp16")))


# ------------------------------------------------------------------------------------------------
# configuration


def test_unknown_keys_are_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  learning_rat: 1.0e-5\n")
    with pytest.raises(FinetuneError, match="unknown setting learning_rat in c.yaml \\[optim\\]"):
        ft_config.read_yaml(path)
    path.write_text("trainer:\n  x: 1\n")
    with pytest.raises(FinetuneError, match="unknown setting trainer"):
        ft_config.read_yaml(path)
    with pytest.raises(SystemExit):
        ft_config.parser("emovit").parse_args(["--learning-rat", "1"])


@pytest.mark.parametrize("overrides, message", [
    ({"types": ["categorical", "humour"]}, "types must be some of"),
    ({"fraction": 0.0}, "fraction must be above 0"),
    ({"precision": "fp8"}, "precision must be one of"),
    ({"quantization": "3bit"}, "quantization must be one of"),
    ({"warmup_ratio": 1.5}, "warmup_ratio"),
    ({"class_set": "nope"}, "class_set"),
])
def test_values_are_validated(overrides, message):
    with pytest.raises(FinetuneError, match=message):
        ft_config.build("emovit", overrides=overrides)


def test_precedence_defaults_recipe_yaml_flags(tmp_path):
    assert ft_config.build("emovit").optim.learning_rate == 1e-5  # InstructBLIP's default
    assert ft_config.build("emovit").optim.warmup() == 1000
    lora = ft_config.build("llava_lora")
    assert (lora.optim.learning_rate, lora.optim.warmup_ratio, lora.data.max_length) == (2e-4, 0.03, 2048)
    path = tmp_path / "c.yaml"
    path.write_text("model: some/model\noptim:\n  learning_rate: 8.0e-6\n  warmup_steps: 30000\n  max_steps: 100\n")
    values = ft_config.read_yaml(path)
    from_yaml = ft_config.build("emovit", values)
    assert (from_yaml.model, from_yaml.optim.learning_rate, from_yaml.optim.warmup()) == ("some/model", 8e-6, 100)
    config = ft_config.from_args("emovit", ["--config", str(path), "--learning-rate", "2e-5", "--data", "d.json",
                                            "--image-folder", "i", "--output-dir", "o", "--types", "categorical,reasoning",
                                            "--gradient-checkpointing"])
    assert config.optim.learning_rate == 2e-5 and config.optim.warmup_steps == 30000
    assert config.data.types == ["categorical", "reasoning"] and config.run.gradient_checkpointing
    with pytest.raises(FinetuneError, match="missing --data"):
        ft_config.from_args("emovit", ["--model", "m", "--image-folder", "i", "--output-dir", "o"])


@pytest.mark.parametrize("name, recipe", [("emovit.yaml", "emovit"), ("llava_lora.yaml", "llava_lora"),
                                          ("emotion_llama.yaml", "emotion_llama")])
def test_shipped_recipe_configs_load(name, recipe):
    config = ft_config.build(recipe, ft_config.read_yaml(CONFIGS / name))
    assert config.recipe == recipe and config.model
    with pytest.raises(FinetuneError, match="is for the"):
        ft_config.build("llava_lora" if recipe == "emovit" else "emovit", ft_config.read_yaml(CONFIGS / name))


def test_written_config_reloads(tmp_path):
    config = ft_config.build("llava_lora", overrides={"lora_r": 4, "types": ["categorical"], "model": "m"})
    ft_config.write_yaml(config, tmp_path / "config.yaml")
    assert ft_config.build("llava_lora", ft_config.read_yaml(tmp_path / "config.yaml")) == config


@pytest.mark.parametrize("name, kind, stage", [
    ("single_gpu.yaml", "NO", None), ("multi_gpu.yaml", "MULTI_GPU", None), ("deepspeed_zero2.yaml", "DEEPSPEED", 2),
    ("deepspeed_zero3.yaml", "DEEPSPEED", 3), ("fsdp.yaml", "FSDP", None)])
def test_accelerate_configs_parse(name, kind, stage):
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(CONFIGS / "accelerate" / name))
    assert str(loaded.distributed_type).endswith(kind)
    assert loaded.mixed_precision == "bf16"
    if stage is not None:
        assert loaded.deepspeed_config["zero_stage"] == stage
    if kind == "FSDP":
        assert loaded.fsdp_config["fsdp_use_orig_params"] is True  # most parameters are frozen


# ------------------------------------------------------------------------------------------------
# quantisation rules (the loads themselves need CUDA for real speed; the rules are checked here)


def test_quantisation_combinations():
    import torch

    from finetune import models

    config = ft_config.build("emovit", overrides={"quantization": "4bit"})
    with pytest.raises(FinetuneError, match="ZeRO-3"):
        models.quantization_config(config, torch.bfloat16, "DEEPSPEED_ZERO3")
    fsdp = models.quantization_config(config, torch.bfloat16, "FSDP")
    assert fsdp.load_in_4bit and fsdp.bnb_4bit_quant_storage == torch.bfloat16
    ddp = models.quantization_config(config, torch.bfloat16, "MULTI_GPU")
    assert ddp.bnb_4bit_quant_storage == torch.uint8 and "qformer" in ddp.llm_int8_skip_modules
    eight = ft_config.build("llava_lora", overrides={"quantization": "8bit"})
    assert models.quantization_config(eight, torch.bfloat16, "DEEPSPEED").load_in_8bit
    with pytest.raises(FinetuneError, match="FSDP"):
        models.quantization_config(eight, torch.bfloat16, "FSDP")
    assert models.quantization_config(ft_config.build("emovit"), torch.bfloat16, "NO") is None


# ------------------------------------------------------------------------------------------------
# memory


def test_parameter_counts_match_the_model():
    import transformers

    from finetune import memory, models

    path = tiny_model_dir("instructblip")
    model = transformers.InstructBlipForConditionalGeneration.from_pretrained(path)
    hf_config = model.config
    dead = models.unreachable_qformer_parts(hf_config)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(models.QFORMER_PARTS) and not name.startswith(dead))
    counts = memory.counts_of(model, "language_model.")
    total = sum(p.numel() for p in model.parameters())
    assert counts.trained + counts.frozen_other + counts.frozen_llm_linear == total
    assert counts.trained == sum(p.numel() for n, p in model.named_parameters()
                                 if n.startswith(("qformer.", "query_tokens", "language_projection."))) \
        - sum(p.numel() for n, p in model.named_parameters() if n.startswith(dead))
    text = hf_config.text_config  # 2 layers x (q, k, v, o, gate, up, down)
    h_dim = text.hidden_size // text.num_attention_heads
    h, i, kv = text.hidden_size, text.intermediate_size, text.num_key_value_heads * h_dim
    assert counts.frozen_llm_linear == 2 * (2 * h * h + 2 * h * kv + 3 * h * i)
    assert h_dim == 8


def test_estimate_formula_by_hand():
    from finetune import memory

    counts = memory.Counts(trained=1_000_000, frozen_other=2_000_000, frozen_llm_linear=8_000_000)
    plain = memory.estimate(counts, "none", seq_len=100, hidden=64, layers=4, vocab=1000, batch_size=2,
                            checkpointing=False)
    assert plain.weights == 2_000_000 * 2 + 8_000_000 * 2
    assert plain.trained_states == 16_000_000
    assert plain.activations_per_example == 34 * 100 * 64 * 4 + 10 * 100 * 1000
    assert plain.total == 20_000_000 + 16_000_000 + 2 * (870_400 + 1_000_000) + 1024**3
    four = memory.estimate(counts, "4bit", 100, 64, 4, 1000, 1, True)
    assert four.weights == pytest.approx(4_000_000 + 8_000_000 * 0.515875)
    assert four.activations_per_example == 2 * 100 * 64 * 4 + 34 * 100 * 64 + 1_000_000
    assert memory.max_micro_batch(1, 0.5 * 1024**3, 0.1 * 1024**3) == 5


def test_readme_memory_table_is_the_generators():
    from finetune import memory

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert memory.table() in readme
