"""Evaluation runs: the records written, the summary, resuming after a kill, the cache, failures part-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emo_core.evaluate import EvaluationError, instructions, load_dataset, run_evaluation
from emo_core.evaluate.compare import compare_table, load_summaries
from emo_core.run_records import load_records
from tests.eval_fakes import KILL_DATA, ScriptedBackend, kill_answers, write_colour_dataset

RECORD_KEYS = {"key", "path", "sha256", "label", "instruction", "answer", "prediction", "unparsed_reason"}
ROOT = Path(__file__).resolve().parent.parent


def _scripted_case(tmp_path):
    """Six images; the categorical phrasing answers right, sensitivity_1 says "joy" or gives up."""
    data = load_dataset(write_colour_dataset(tmp_path / "data", KILL_DATA), "emotion6")
    return data, instructions.by_ids("categorical,sensitivity_1")


def test_records_and_summary_of_a_generated_run(tmp_path):
    data, chosen = _scripted_case(tmp_path)
    backend = ScriptedBackend(kill_answers())
    outcome = run_evaluation(data, tmp_path / "run", chosen, backend=backend, method="generate", n_boot=200)
    assert backend.calls == 12 and outcome.answered == 12 and outcome.cached == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 12 and all(set(r) == RECORD_KEYS for r in records)
    by = {(r["path"], r["instruction"]): r for r in records}
    assert by[("anger/img001.png", "categorical")]["prediction"] == "anger"
    gave_up = by[("sadness/img004.png", "sensitivity_1")]
    assert gave_up["prediction"] is None and gave_up["unparsed_reason"] == "not a class"
    assert gave_up["answer"] == "I cannot tell"

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    categorical, second = summary["per_instruction"]["categorical"], summary["per_instruction"]["sensitivity_1"]
    assert categorical["accuracy"] == 1.0
    # sensitivity_1: joy right twice (img000, img003), anger and fear read as joy, sadness/surprise unparsed
    assert second["accuracy"] == pytest.approx(2 / 6) and second["unparsed"] == 2
    assert second["uar"] == pytest.approx((1 + 0 + 0 + 0 + 0) / 5)  # five classes present; joy 2/2 right
    assert second["unparsed_reasons"] == {"not a class": 2}
    mean, std = (1 + 2 / 6) / 2, (1 - 2 / 6) / 2  # population std of two values: half their difference
    assert summary["sensitivity"]["value"] == pytest.approx(std / mean)
    assert summary["sensitivity"]["note"] == ""  # this backend reads the instruction
    pair = summary["paired"][0]
    assert (pair["a_only"], pair["b_only"], pair["p_exact"]) == (4, 0, pytest.approx(2 / 16))
    assert summary["changed_count"] == 4
    assert (tmp_path / "run" / "summary.md").read_text().count("| categorical |") == 1
    assert "sensitivity_1" in (tmp_path / "run" / "summary.csv").read_text()


def test_a_finished_rerun_asks_nothing_and_a_new_phrasing_only_itself(tmp_path):
    data, chosen = _scripted_case(tmp_path)
    run_evaluation(data, tmp_path / "run", chosen, backend=ScriptedBackend(kill_answers()), method="generate", n_boot=0)
    before = (tmp_path / "run" / "predictions.jsonl").read_bytes()
    again = ScriptedBackend(kill_answers())
    outcome = run_evaluation(data, tmp_path / "run", chosen, backend=again, method="generate", n_boot=0)
    assert again.calls == 0 and outcome.cached == 12
    assert (tmp_path / "run" / "predictions.jsonl").read_bytes() == before
    extra = instructions.parse_custom("Please select one of {classes}, honestly.")
    third = ScriptedBackend(kill_answers())
    run_evaluation(data, tmp_path / "run", chosen + extra, backend=third, method="generate", n_boot=0)
    assert third.calls == 6  # the new instruction text only


def test_a_backend_failing_part_way_keeps_what_was_written(tmp_path):
    data, chosen = _scripted_case(tmp_path)
    with pytest.raises(EvaluationError, match="kept in predictions.jsonl") as stopped:
        run_evaluation(data, tmp_path / "run", chosen, backend=ScriptedBackend(kill_answers(), fail_after=5),
                       method="generate", n_boot=0)
    assert "RuntimeError" in str(stopped.value) and str(tmp_path) not in str(stopped.value)
    assert len(load_records(tmp_path / "run" / "predictions.jsonl", "key")[0]) == 5
    resumed = ScriptedBackend(kill_answers())
    run_evaluation(data, tmp_path / "run", chosen, backend=resumed, method="generate", n_boot=0)
    assert resumed.calls == 7


def test_a_run_killed_with_sigkill_and_rerun_equals_an_uninterrupted_run(tmp_path):
    data_dir = write_colour_dataset(tmp_path / "data", KILL_DATA)
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def start(run_dir: Path, sleep: float) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tests.eval_fakes", str(data_dir), str(run_dir), str(sleep)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    killed = start(tmp_path / "killed", 0.4)
    journal = tmp_path / "killed" / "predictions.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count("\n") < 3):
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    written = journal.read_text().count("\n")
    assert 3 <= written < 12, "the kill came too late to test a resume"
    rerun = start(tmp_path / "killed", 0.0)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    assert f"calls={12 - written}" in out
    whole = start(tmp_path / "whole", 0.0)
    out, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err[-2000:]

    def lines(run: str) -> list[dict]:
        return sorted((json.loads(line) for line in (tmp_path / run / "predictions.jsonl").read_text().splitlines()),
                      key=lambda r: r["key"])

    assert lines("killed") == lines("whole")
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("killed", "whole")]
    assert summaries[0] == summaries[1]


def test_the_offline_backend_end_to_end_through_the_command_line(tmp_path, images, capsys):
    from emo_core.evaluate.__main__ import main

    root = tmp_path / "set"
    for label, name in (("happy", "astronaut"), ("happy", "group5"), ("neutral", "coffee"), ("neutral", "drawn")):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{name}.jpg").write_bytes(images[name].read_bytes())
    run = tmp_path / "run"
    assert main(["run", str(root), "--class-set", "fer2013", "--out", str(run),
                 "--instructions", "sensitivity_1,sensitivity_2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "0 by construction" in printed
    records = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(RECORD_KEYS | {"distribution"} <= set(r) for r in records)
    by = {(r["path"], r["instruction"]): r for r in records}
    assert by[("happy/astronaut.jpg", "sensitivity_1")]["prediction"] == "happy"
    no_face = by[("neutral/coffee.jpg", "sensitivity_2")]
    assert no_face["prediction"] is None and no_face["unparsed_reason"] == "not a class" and no_face["abstained"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["sensitivity"]["value"] == 0.0 and "by construction" in summary["sensitivity"]["note"]
    assert summary["per_instruction"]["sensitivity_1"]["unparsed"] == 2
    assert main(["run", str(root), "--class-set", "fer2013", "--out", str(run),
                 "--instructions", "sensitivity_1,sensitivity_2", "--quiet"]) == 0
    assert "0 answers asked, 8 from" in capsys.readouterr().out
    assert main(["compare", str(run)]) == 0
    assert "FER2013" in capsys.readouterr().out


def test_compare_shows_the_papers_numbers_labelled_as_published(tmp_path):
    data = load_dataset(write_colour_dataset(tmp_path / "data", [(10, "amusement"), (20, "awe")]), "emoset")
    answers = {(1, "Please select"): "Predict emotion: amusement", (2, "Please select"): "Predict emotion: fear",
               (1, "From the given"): "Predicted emotion: amusement", (2, "From the given"): "Predicted emotion: awe"}
    run_evaluation(data, tmp_path / "run", instructions.by_ids("categorical,sensitivity_1"),
                   backend=ScriptedBackend(answers), method="generate", n_boot=0)
    table = compare_table(load_summaries([tmp_path / "run"]))
    assert "| categorical | 50.00 |" in table and "| sensitivity_1 | 100.00 |" in table
    assert "| EmoVIT (published, EmoVIT Table 1, accuracy %) | not stated | 83.36 | – |" in table
    assert "| InstructBLIP (published, EmoVIT Table 1, accuracy %) | not stated | 42.20 | – |" in table
    assert "Emotion-LLaMA" not in table  # no MER2023/DFEW column here
    assert "Fig. 7" in table


def test_unusable_choices_are_refused_before_running(tmp_path):
    data, chosen = _scripted_case(tmp_path)
    with pytest.raises(Exception, match="cannot score"):
        run_evaluation(data, tmp_path / "run", chosen, backend=ScriptedBackend({}), method="score")
    assert not (tmp_path / "run" / "predictions.jsonl").exists()
