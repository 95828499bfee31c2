"""Emotion-LLaMA's two training stages on the shared trainer, on generated clips and a tiny checkpoint:
the loss falls, only the projections and LoRA change, the feature cache is hit after the first epoch
and shared by stage 2, and the stage decides the default learning rate.

    .venv/bin/python -m pytest -q tests/test_emotion_llama_train.py
"""

from __future__ import annotations

import csv

import pytest
import torch

from finetune import config as ft_config
from finetune.emotion_llama import main as emotion_llama_main
from finetune.emotion_llama_data import read_merr_examples
from tests.emotion_llama_fixtures import RECORDS, write_clips, write_merr

STEPS = 6


def weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def losses(out):
    with open(out / "log.csv", newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("el_train")
    write_clips(root / "clips")
    merr = write_merr(root / "merr.json")
    assert emotion_llama_main(["init", "--tiny", str(root / "tiny")]) == 0
    from emo_core.models.emotion_llama import clip_views

    reads = []
    real = clip_views.read_clip_views
    monkeypatch_module.setattr(clip_views, "read_clip_views",
                               lambda path, *a, **k: reads.append(path.name) or real(path, *a, **k))
    common = ["--merr", str(merr), "--videos", str(root / "clips"), "--max-steps", str(STEPS), "--batch-size", "8",
              "--warmup-steps", "0", "--log-every", "1", "--save-every", "0", "--learning-rate", "3e-2", "--scheduler", "constant_with_warmup",
              "--weight-decay", "0", "--feature-cache", str(root / "features")]
    assert emotion_llama_main(["train", "--stage", "1", "--model", str(root / "tiny"),
                               "--output-dir", str(root / "stage1"), *common]) == 0
    stage1_reads = list(reads)
    assert emotion_llama_main(["train", "--stage", "2", "--model", str(root / "stage1" / "final"),
                               "--output-dir", str(root / "stage2"), *common]) == 0
    return root, stage1_reads, reads[len(stage1_reads):]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_stage_examples_follow_the_merr_records(tmp_path):
    write_merr(tmp_path / "merr.json")
    for name in RECORDS:
        (tmp_path / name).write_bytes(b"x")
    coarse = read_merr_examples(tmp_path / "merr.json", tmp_path, 1, "mer2023")
    fine = read_merr_examples(tmp_path / "merr.json", tmp_path, 2, "mer2023")
    # talk: visual, audio, description; quiet: visual and description (no audio prior)
    assert sorted(e.id for e in coarse) == ["quiet.mp4|reason", "quiet.mp4|visual", "talk.mp4|audio",
                                            "talk.mp4|reason", "talk.mp4|visual"]
    talk_reason = next(e for e in coarse if e.id == "talk.mp4|reason")
    assert talk_reason.answer == RECORDS["talk.mp4"]["multimodal_description"]
    assert talk_reason.question.startswith("The person in video says: we won today. [reason]")
    assert next(e for e in coarse if e.id == "quiet.mp4|visual").question.startswith(
        "The person in video says: nothing. [visual]")
    assert {e.id: e.answer for e in fine if e.type == "categorical"} == {
        "talk.mp4|emotion": "Predicted emotion: surprise.", "quiet.mp4|emotion": "Predicted emotion: neutral."}
    assert next(e for e in fine if e.id == "talk.mp4|reason").answer == (
        "Predicted emotion: surprise. Reason: " + RECORDS["talk.mp4"]["smp_reason_caption"])


def test_the_stage_sets_the_default_learning_rate():
    assert ft_config.build("emotion_llama", {}, {"stage": 1}).optim.learning_rate == 1e-5
    assert ft_config.build("emotion_llama", {}, {"stage": 2}).optim.learning_rate == 1e-6
    assert ft_config.build("emotion_llama", {}, {"stage": 2, "learning_rate": 5e-5}).optim.learning_rate == 5e-5
    with pytest.raises(ft_config.FinetuneError):
        ft_config.build("emotion_llama", {}, {"stage": 3})


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_the_loss_falls(runs, stage):
    root, _, _ = runs
    values = losses(root / stage)
    assert len(values) == STEPS and values[-1] < values[0] - 0.05


def test_only_the_projections_and_lora_change(runs):
    root, _, _ = runs
    start, stage1, stage2 = weights(root / "tiny"), weights(root / "stage1" / "final"), weights(root / "stage2" / "final")
    assert set(start) == set(stage1) == set(stage2)
    trained = {name for name in start if name.split(".")[0].endswith("_projection") or ".lora_" in name}
    assert any(name.startswith("audio_projection") for name in trained) and any(".lora_A" in n for n in trained)
    for name in start:
        for before, after in ((start, stage1), (stage1, stage2)):
            if name in trained:
                assert not torch.equal(before[name], after[name]), f"{name} did not train"
            else:
                assert torch.equal(before[name], after[name]), f"{name} changed but is frozen"


def test_the_feature_cache_is_hit_after_the_first_epoch_and_shared_by_stage_2(runs):
    root, stage1_reads, stage2_reads = runs
    # stage 1: 5 examples in a batch of 8 -> every step is an epoch; each clip is read and encoded once
    assert sorted(stage1_reads) == ["quiet.mp4", "talk.mp4"]
    assert stage2_reads == []  # the same encoders and clips: every feature comes from the cache
    files = sorted((root / "features").rglob("*.npy"))
    assert len(files) == 2 * 4 and len({f.parent.name for f in files}) == 4
