"""finetune/: real optimiser steps on tiny random InstructBLIP (Vicuna-style and T5) and LLaVA models.

Each recipe trains once per module (a few steps on generated data) and the tests read what it wrote:
the loss falls, what should train changed and everything else is bit-identical, checkpoints resume to
the same batches and losses, OUT/final loads in the ``hf`` backend and answers the image tab's question,
the LoRA adapter loads and merges, and ``accelerate launch`` runs the same entry point.

    .venv/bin/python -m pytest -q tests/test_finetune.py
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from finetune import FinetuneError, config as ft_config, models
from finetune.batches import Encoder
from finetune.data import read_examples
from finetune.emovit import main as emovit_main
from finetune.trainer import run
from tests.finetune_fixtures import sharpened_copy, write_dataset
from tests.tiny_models import tiny_model_dir

STEPS = 8


def train_args(model: Path, root: Path, out: str, *extra: str) -> list[str]:
    return ["--model", str(model), "--data", str(root / "train.json"), "--image-folder", str(root / "images"),
            "--output-dir", str(root / out), "--max-steps", str(STEPS), "--warmup-steps", "0", "--warmup-ratio", "0",
            "--batch-size", "4", "--save-every", "4", "--eval-every", "4", "--log-every", "1",
            "--no-keep-best", "--max-new-tokens", "6", *extra]


def log_rows(out: Path, name: str = "log.csv") -> list[dict]:
    with open(out / name, newline="") as handle:
        return list(csv.DictReader(handle))


def safetensors_state(folder: Path) -> dict:
    from safetensors.torch import load_file

    state = {}
    for file in sorted(folder.glob("*.safetensors")):
        state.update(load_file(file))
    return state


def train_set_loss(model_dir: Path, recipe: str, root: Path) -> float:
    """Mean answer-token loss of a saved model over the training examples (no dropout)."""
    import torch

    config = ft_config.build(recipe, overrides={"model": str(model_dir), "data": str(root / "train.json"),
                                                "image_folder": str(root / "images"), "output_dir": str(root)})
    prepared = models.load(config, "no", None)
    model = prepared.model
    encoder = Encoder(prepared.processor, prepared.family, root / "images", 512 if recipe == "emovit" else 2048, 128,
                      prepared.encoder_decoder)
    model.eval()
    examples = read_examples(root / "train.json")
    with torch.no_grad():
        losses = [model(**encoder.collate([encoder(e)])).loss.item() for e in examples]
    return sum(losses) / len(losses)


def assert_answers_in_the_image_tab(model_folder: Path, image: Path) -> None:
    """The image tab's question, through the ``hf`` backend on a trained folder, answered by the model:
    a Mikels label with the model's class scores."""
    from emo_core import Settings, analyze_image
    from emo_core.backends import get_backend
    from emo_core.labels import get_class_set

    settings = Settings(backend="hf", model=str(model_folder), preload=False)
    result = analyze_image(str(image), "mikels8", backend=get_backend("hf", settings), settings=settings,
                           with_reason=False)
    labels = set(get_class_set("mikels8").labels)
    assert result.complete and result.label in labels
    assert result.distribution_kind == "model scores" and set(result.distribution) == labels
    assert sum(result.distribution.values()) == pytest.approx(1.0, abs=1e-3)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ftdata")
    write_dataset(root, 4, "llava")  # 4 images x (1 categorical + 2 conversation turns + 1 reasoning) = 16 examples
    write_dataset(root, 2, "instructblip", first_seed=20, name="val.json")
    return root


@pytest.fixture(scope="module")
def emovit_run(dataset):
    model = sharpened_copy(tiny_model_dir("instructblip"), dataset / "instructblip-sharp")
    args = train_args(model, dataset, "emovit", "--learning-rate", "3e-3", "--val-data", str(dataset / "val.json"))
    assert emovit_main(args) == 0
    return dataset / "emovit", model


@pytest.fixture(scope="module")
def llava_run(dataset):
    model = tiny_model_dir("llava")
    args = train_args(model, dataset, "llava", "--learning-rate", "3e-3", "--merge", "--lora-r", "8",
                      "--lora-alpha", "16", "--lora-dropout", "0")
    assert emovit_main(args, recipe="llava_lora") == 0
    return dataset / "llava", model


# ------------------------------------------------------------------------------------------------
# InstructBLIP, Q-Former only


def test_emovit_loss_falls(emovit_run, dataset):
    out, model = emovit_run
    before = train_set_loss(model, "emovit", dataset)
    after = train_set_loss(out / "final", "emovit", dataset)
    assert after < before - 0.2, (before, after)
    rows = log_rows(out)
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    assert all(float(r["samples_per_s"]) > 0 and float(r["tokens_per_s"]) > 0 and float(r["peak_memory_mib"]) > 0
               for r in rows)
    evaluations = log_rows(out, "eval.csv")
    assert [int(r["step"]) for r in evaluations] == [4, 8]
    assert all(int(r["n"]) == 2 and 0 <= int(r["unparsed"]) <= 2 for r in evaluations)


def test_emovit_trains_only_the_qformer(emovit_run):
    out, model = emovit_run
    base, trained = safetensors_state(model), safetensors_state(out / "final")
    assert set(base) == set(trained)
    # the Q-Former (query tokens, projection) minus its last text feed-forward block, whose output never
    # reaches the LLM (2 layers here: layer 1 is the last)
    last_text_ffn = ("qformer.encoder.layer.1.intermediate.", "qformer.encoder.layer.1.output.")
    trainable = [n for n in base if n.startswith(("qformer.", "query_tokens", "language_projection."))
                 and not n.startswith(last_text_ffn)]
    frozen = [n for n in base if n not in trainable]
    assert len(trainable) > 20 and any(n.startswith("vision_model.") for n in frozen) \
        and any(n.startswith("language_model.") for n in frozen)
    import torch

    unchanged = [n for n in trainable if torch.equal(base[n], trained[n])]
    assert not unchanged, unchanged
    moved = [n for n in frozen if not torch.equal(base[n], trained[n])]
    assert not moved, moved


def test_emovit_final_answers_in_the_hf_backend(emovit_run, images):
    out, _ = emovit_run
    assert_answers_in_the_image_tab(out / "final", images["astronaut"])


def test_resume_gives_the_same_batches_and_losses(emovit_run, dataset):
    out, model = emovit_run
    resumed = dataset / "emovit-resumed"
    args = train_args(model, dataset, "emovit-resumed", "--learning-rate", "3e-3", "--val-data",
                      str(dataset / "val.json"), "--resume", str(out / "checkpoint-4"))
    assert emovit_main(args) == 0
    straight = {r["step"]: r for r in log_rows(out)}
    again = log_rows(resumed)
    assert [int(r["step"]) for r in again] == [5, 6, 7, 8]
    for row in again:
        assert row["samples"] == straight[row["step"]]["samples"]
        assert float(row["loss"]) == pytest.approx(float(straight[row["step"]]["loss"]), abs=1e-5)
        assert float(row["lr"]) == pytest.approx(float(straight[row["step"]]["lr"]), rel=1e-9)


def test_resume_refuses_another_runs_checkpoint(emovit_run, dataset):
    out, model = emovit_run
    args = train_args(model, dataset, "emovit-other", "--learning-rate", "1e-3", "--resume", str(out / "checkpoint-4"))
    config = ft_config.from_args("emovit", args)
    with pytest.raises(FinetuneError, match="another run.*optim.learning_rate"):
        run(config)
    assert not (dataset / "emovit-other" / "log.csv").exists()


def test_existing_checkpoints_need_resume(emovit_run, dataset):
    out, model = emovit_run
    config = ft_config.from_args("emovit", train_args(model, dataset, "emovit", "--learning-rate", "3e-3"))
    with pytest.raises(FinetuneError, match="--resume latest"):
        run(config)


def test_t5_instructblip_trains(dataset):
    import torch

    model = tiny_model_dir("instructblip_t5")
    # also: gradient accumulation (2 micro-batches of 2 per step) and gradient checkpointing
    args = train_args(model, dataset, "t5", "--learning-rate", "3e-3", "--max-steps", "4", "--save-every", "0",
                      "--batch-size", "2", "--gradient-accumulation", "2", "--gradient-checkpointing")
    assert emovit_main(args) == 0
    out = dataset / "t5"
    rows = log_rows(out)
    assert [len(r["samples"].split()) for r in rows] == [4, 4, 4, 4]
    assert len({i for r in rows for i in r["samples"].split()}) == 16  # 4 steps x 4 = one epoch, each example once
    base, trained = safetensors_state(model), safetensors_state(out / "final")
    assert all(torch.equal(base[n], trained[n]) for n in base if n.startswith(("vision_model.", "language_model.")))
    assert not any(torch.equal(base[n], trained[n]) for n in base if n.startswith(("qformer.", "language_projection."))
                   and ".layer.1.intermediate." not in n and ".layer.1.output." not in n)
    assert train_set_loss(out / "final", "emovit", dataset) < train_set_loss(model, "emovit", dataset) - 0.03


# ------------------------------------------------------------------------------------------------
# LLaVA, LoRA


def test_llava_lora_loss_falls_and_base_is_untouched(llava_run, dataset):
    import torch
    from accelerate.utils import set_seed

    out, model = llava_run
    assert train_set_loss(out / "final", "llava_lora", dataset) < train_set_loss(model, "llava_lora", dataset) - 0.05
    config = ft_config.build("llava_lora", overrides={
        "model": str(model), "data": "x", "image_folder": "x", "output_dir": "x", "lora_r": 8, "lora_alpha": 16,
        "lora_dropout": 0.0})
    set_seed(42)  # the trainer's seed: the same LoRA initialisation
    initial = {n: t.clone() for n, t in models.load(config, "no", None).model.state_dict().items()}
    trained = safetensors_state(out / f"checkpoint-{STEPS}" / "state")
    assert set(trained) == set(initial)
    lora = [n for n in initial if ".lora_" in n]
    assert len(lora) == 2 * 7 * 2  # A and B of 7 targets in 2 layers
    assert not [n for n in lora if torch.equal(initial[n], trained[n])]
    assert not [n for n in initial if n not in lora and not torch.equal(initial[n], trained[n])]


def test_llava_adapter_loads_and_merges(llava_run, dataset):
    import torch
    from peft import PeftModel
    from transformers import LlavaForConditionalGeneration

    out, model = llava_run
    adapter = out / f"checkpoint-{STEPS}" / "model"
    assert (adapter / "adapter_config.json").is_file()
    config = ft_config.build("llava_lora", overrides={"model": str(model), "data": "x", "image_folder": "x",
                                                      "output_dir": "x"})
    prepared = models.load(config, "no", None)
    encoder = Encoder(prepared.processor, prepared.family, dataset / "images", 2048, 128, False)
    batch = encoder.collate([encoder(e) for e in read_examples(dataset / "train.json")[:3]])
    batch.pop("labels")
    with torch.no_grad():
        base = LlavaForConditionalGeneration.from_pretrained(model).eval()
        plain = base(**batch).logits
        with_adapter = PeftModel.from_pretrained(base, adapter).eval()(**batch).logits
        merged = LlavaForConditionalGeneration.from_pretrained(out / "final").eval()(**batch).logits
    assert not torch.allclose(plain, with_adapter, atol=1e-3)
    torch.testing.assert_close(merged, with_adapter, atol=1e-4, rtol=1e-4)


def test_llava_merged_final_answers_in_the_hf_backend(llava_run, images):
    out, _ = llava_run
    assert_answers_in_the_image_tab(out / "final", images["astronaut"])


def test_accelerate_launch_runs(dataset, tmp_path):
    model = tiny_model_dir("llava")
    args = train_args(model, dataset, "launched", "--max-steps", "2", "--save-every", "0", "--lora-r", "4")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu",
                           "--mixed_precision", "no", "-m", "finetune.llava_lora", *args],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training on the CPU" in done.stdout
    assert (dataset / "launched" / "final" / "adapter_model.safetensors").is_file()
    assert [int(r["step"]) for r in log_rows(dataset / "launched")] == [1, 2]
    shutil.rmtree(dataset / "launched")


@pytest.mark.parametrize("quantization, layer_class", [("8bit", "Linear8bitLt"), ("4bit", "Linear4bit")])
def test_quantised_llm_trains_on_cpu(dataset, quantization, layer_class):
    """bitsandbytes >= 0.45 has CPU kernels: the LLM loads quantised, the Q-Former trains, and OUT/final is
    written unquantised with the frozen weights the base's own."""
    import torch

    model = tiny_model_dir("instructblip")
    overrides = {"model": str(model), "data": "x", "image_folder": "x", "output_dir": "x", "quantization": quantization}
    prepared = models.load(ft_config.build("emovit", overrides=overrides), "no", None)
    kinds = {type(m).__name__ for n, m in prepared.model.named_modules() if n.startswith("language_model.model.")}
    assert layer_class in kinds
    assert not any(type(m).__name__ == layer_class for n, m in prepared.model.named_modules()
                   if n.startswith(("vision_model", "qformer", "language_projection")))
    args = train_args(model, dataset, f"q{quantization}", "--learning-rate", "3e-3", "--max-steps", "2",
                      "--save-every", "0", "--quantization", quantization)
    assert emovit_main(args) == 0
    base, trained = safetensors_state(model), safetensors_state(dataset / f"q{quantization}" / "final")
    assert all(torch.equal(base[n], trained[n]) for n in base if n.startswith(("vision_model.", "language_model.")))
    assert not torch.equal(base["language_projection.weight"], trained["language_projection.weight"])
