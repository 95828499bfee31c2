"""The harness with real backends: a tiny transformers model (both methods, two instructions) and the
offline video analysis on a MER2023-style label file."""

from __future__ import annotations

import json

import pytest

from emo_core import Settings
from emo_core.backends.hf import HFBackend
from emo_core.evaluate import instructions, load_dataset, run_evaluation
from tests.eval_fakes import write_colour_dataset
from tests.tiny_models import tiny_model_dir


class CountingHF(HFBackend):
    """The real hf backend, counting the calls that reach the model."""

    def __init__(self, settings):
        super().__init__(settings)
        self.calls = 0

    def generate_stream(self, *args, **kwargs):
        self.calls += 1
        yield from super().generate_stream(*args, **kwargs)

    def score(self, *args, **kwargs):
        self.calls += 1
        return super().score(*args, **kwargs)


@pytest.fixture(scope="module")
def tiny_settings():
    return Settings(backend="hf", model=str(tiny_model_dir("llava")), preload=False)


@pytest.mark.parametrize("method", ["generate", "score"])
def test_a_tiny_hf_model_end_to_end_with_two_instructions(tmp_path, tiny_settings, method):
    data = load_dataset(write_colour_dataset(tmp_path / "data", [(10, "joy"), (90, "fear"), (200, "anger")]), "emotion6")
    chosen = instructions.by_ids("sensitivity_1,sensitivity_2")
    backend = CountingHF(tiny_settings)
    outcome = run_evaluation(data, tmp_path / "run", chosen, settings=tiny_settings, backend=backend, method=method,
                             n_boot=100)
    assert backend.calls == 6 and outcome.answered == 6
    records = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert {r["instruction"] for r in records} == {"sensitivity_1", "sensitivity_2"} and len(records) == 6
    for record in records:
        # random weights: any class, or an unparsed answer with its reason; never a silent default
        assert record["prediction"] in data.labels or (record["prediction"] is None and record["unparsed_reason"])
        assert ("distribution" in record) == (method == "score")
        if method == "score":
            assert record["prediction"] == max(record["distribution"], key=record["distribution"].get)
            assert sum(record["distribution"].values()) == pytest.approx(1.0, abs=1e-4)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["run"]["method"] == method and summary["run"]["reads_instruction"]
    assert summary["sensitivity"]["note"] == "" and summary["sensitivity"]["instructions"] == ["sensitivity_1",
                                                                                               "sensitivity_2"]
    again = CountingHF(tiny_settings)
    run_evaluation(data, tmp_path / "run", chosen, settings=tiny_settings, backend=again, method=method, n_boot=0)
    assert again.calls == 0


def test_video_through_the_same_harness_offline(tmp_path, clips):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "jaw_mute.mp4").write_bytes(clips["mute"].read_bytes())
    (tmp_path / "labels.txt").write_text("name label\njaw_mute surprise\n")
    data = load_dataset(tmp_path / "labels.txt", "mer2023", media_dir=folder)
    custom = instructions.parse_custom("Which emotion, of {classes}, does this person show?")
    outcome = run_evaluation(data, tmp_path / "run", instructions.by_ids("emotion_llama") + custom,
                             settings=Settings(preload=False), n_boot=0)
    assert outcome.answered == 1  # the offline fusion does not read the instruction: one analysis per clip
    records = outcome.records
    assert len(records) == 2 and records[0]["prediction"] == records[1]["prediction"]
    assert records[0]["prediction"] in data.labels and "distribution" in records[0]
    summary = outcome.summary
    assert summary["dataset"]["modality"] == "video" and summary["dataset"]["name"] == "MER2023"
    # the same answer under both phrasings: no spread (the ratio is undefined if that answer was wrong)
    assert summary["sensitivity"]["per_metric"]["accuracy"]["std_population"] == 0.0
    assert "by construction" in summary["sensitivity"]["note"]
