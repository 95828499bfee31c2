"""The instruction-data generator offline: inputs, attributes, answer checks, quotas, export, limits, CLI.

    .venv/bin/python -m pytest -q tests/test_datagen.py

LLM-written samples come from the local stub endpoint in tests/chat_stub.py; failure modes of the
endpoint, SIGKILL and the real local server are in tests/test_datagen_endpoint.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from emo_core import Settings
from emo_core.backends import Backend
from emo_core.datagen import SourceError, export, generate
from emo_core.datagen import __main__ as cli
from emo_core.datagen import llm_client
from emo_core.datagen.answers import AnswerRejected, parse_answer
from emo_core.datagen.attributes import context_text, describe_image
from emo_core.datagen.sources import read_source
from emo_core.errors import EmoError
from emo_core.run_records import RecordFile
from tests.chat_stub import ChatStub, good_answer
from tests.datagen_fixtures import as_csv, as_emoset, class_folders, read_jsonl, stub_settings, write_image

MIKELS = ("amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness")


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(llm_client, "BACKOFF_BASE_S", 0.01)


@pytest.fixture()
def stub():
    with ChatStub() as server:
        yield server


# -- inputs ---------------------------------------------------------------------------------------

def test_the_three_input_layouts_give_the_same_labelled_images(tmp_path):
    folders = class_folders(tmp_path / "folders", {"awe": 2, "sadness": 3})
    expected = sorted((f"{label}/{n}.png", label) for label, count in (("awe", 2), ("sadness", 3)) for n in range(count))
    from_folders = read_source(folders, "emoset")
    assert from_folders.format == "folder" and not from_folders.problems
    assert [(item.image, item.label) for item in from_folders.items] == expected

    table = as_csv(folders, tmp_path / "folders" / "labels.csv", extra={"awe/0.png": {"brightness": "0.8",
                                                                                     "caption": "A wide valley."}})
    from_csv = read_source(table, "mikels8")
    assert from_csv.format == "csv" and [(i.image, i.label) for i in from_csv.items] == expected
    first = from_csv.items[0]
    assert (first.given, first.caption) == ({"brightness": 0.8}, "A wide valley.")

    dataset = as_emoset(folders, tmp_path / "EmoSet", attributes={"scene": "valley", "object": ["tree", "river"],
                                                                   "facial_expression": None})
    for source in (dataset, dataset / "annotation"):
        from_json = read_source(source, "emoset")
        assert from_json.format == "emoset" and not from_json.problems
        assert [(i.image, i.label) for i in from_json.items] == [(f"image/{image}", label) for image, label in expected]
        assert from_json.items[0].given == {"scene": "valley", "object": ["tree", "river"]}  # a null is not given
    # EmoSet's own split file: [emotion, image, annotation] triples
    split = dataset / "train.json"
    split.write_text(json.dumps([["awe", "image/awe/1.png", "annotation/awe/1.json"]]))
    (item,) = read_source(split, "emoset").items
    assert (item.image, item.label, item.given["scene"]) == ("image/awe/1.png", "awe", "valley")


def test_bad_labels_missing_files_and_other_input_problems_are_listed(tmp_path):
    root = class_folders(tmp_path / "in", {"awe": 1, "joy": 1, "Sadness": 1})
    (root / "awe" / "notes.txt").write_text("not a picture")
    (root / "readme.md").write_text("hello")
    source = read_source(root, "mikels8")
    assert [(i.image, i.label) for i in source.items] == [("Sadness/0.png", "sadness"), ("awe/0.png", "awe")]
    reasons = {problem.where: problem.reason for problem in source.problems}
    assert "not in the mikels8 class set" in reasons["joy/"]
    assert "not an image file name (.txt)" in reasons["awe/notes.txt"]
    assert "one folder per class" in reasons["readme.md"]

    table = tmp_path / "in" / "t.csv"
    table.write_text("path,label\nawe/0.png,fear\nawe/0.png,fear\nmissing.png,fear\nawe/0.png,happy\n"
                     "../outside.png,fear\n,fear\nawe/0.png,awe\n")
    write_image(tmp_path / "outside.png", 99)
    source = read_source(table, "emotion6")
    assert [(i.image, i.label) for i in source.items] == [("awe/0.png", "fear")]
    problems = {p.where: p.reason for p in source.problems}
    assert problems["t.csv line 4"] == "no such image file"
    assert problems["t.csv line 5"].endswith("(did you mean 'joy'?)")  # Emotion6 calls happiness joy
    assert "outside the image root" in problems["t.csv line 6"]
    assert problems["t.csv line 7"] == "no path"
    assert problems["t.csv line 8"] == ("label 'awe' is not in the emotion6 class set (anger, disgust, fear, joy, "
                                        "sadness, surprise)")
    assert problems["awe/0.png"] == "listed twice; the first listing is used"
    assert len(source.problems) == 6


def test_a_csv_without_its_columns_is_refused_with_what_it_has(tmp_path, capsys):
    table = tmp_path / "bad.csv"
    table.write_text("file,emotion\na.png,awe\n")
    with pytest.raises(SourceError, match=r"lacks the columns path, label; it has: file, emotion"):
        read_source(table, "mikels8")
    assert cli.main(["generate", str(table), "--out", str(tmp_path / "run"), "--types", "categorical"]) == 1
    assert "lacks the columns path, label" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- attributes -----------------------------------------------------------------------------------

def test_attributes_record_whether_given_measured_or_not_measured():
    red = np.zeros((40, 60, 3), dtype=np.uint8)
    red[...] = (200, 50, 50)
    # Hasler-Süsstrunk on a flat colour: no spread, 0.3 * |(rg, yb)| with rg = 150, yb = 125 - 50 = 75
    expected_colorfulness = 0.3 * (150 ** 2 + 75 ** 2) ** 0.5
    attributes = describe_image({"brightness": 0.7, "object": ["dog", "ball"]}, red, "low-level")
    assert attributes["brightness"].to_dict() == {"value": 0.7, "source": "given", "text": "0.7", "note": ""}
    assert attributes["colorfulness"].source == "measured"
    assert attributes["colorfulness"].value == pytest.approx(expected_colorfulness, abs=0.1)
    assert attributes["object"].source == "given" and attributes["object"].text == "dog, ball"
    for name in ("scene", "facial_expression", "human_action"):
        assert (attributes[name].value, attributes[name].source, attributes[name].text) == (None, "not measured", "")
    assert "scene classifier" in attributes["scene"].note
    assert context_text("A red wall.", "anger", attributes) == (
        "A red wall.\n\nemotion: anger\nbrightness: 0.7\ncolorfulness: 50 (averagely colourful)\nobject: dog, ball")
    assert context_text("", "anger", describe_image({}, red, "none")) == "emotion: anger"


def test_the_offline_models_measure_a_real_smiling_face(images):
    from PIL import Image

    rgb = np.asarray(Image.open(images["astronaut"]).convert("RGB"))
    from emo_core.cues.perception import get_perceiver

    attributes = describe_image({"scene": "space center"}, rgb, "models", lambda: get_perceiver())
    faces = attributes["facial_expression"]
    assert faces.source == "measured" and faces.value[0]["expression"] == "happy"  # Eileen Collins smiles
    assert faces.text.startswith("happy")
    assert attributes["scene"].source == "given"
    assert attributes["object"].source == "measured" and attributes["human_action"].source == "measured"
    assert all(0 <= entry["probability"] <= 1 for entry in attributes["object"].value)


# -- answers --------------------------------------------------------------------------------------

GOOD = "Question:\nWhat is in the sky?\n===\nAnswer:\nA flock of birds.\n===\nQuestion:\nWhy calm?\n===\nAnswer:\nSoft light."


@pytest.mark.parametrize("text, repairs", [
    (GOOD, []),
    ("```\n" + GOOD + "\n```", ["removed the code fence around the answer"]),
    ("**Question 1:** What is in the sky?\n**Answer 1:** A flock of birds.\n\n**Question 2:** Why calm?\n"
     "**Answer 2:** Soft light.", ["repaired Markdown or numbering around the labels", "repaired numbered labels"]),
    ("Question: What is in the sky?\nAnswer: A flock of birds.\nComplex question: Why calm?\nAnswer: Soft light.",
     ["repaired 'Complex question' read as 'Question'"]),
])
def test_unambiguous_slips_are_repaired_and_named(text, repairs):
    parsed = parse_answer(text, "conversation", "contentment")
    assert parsed.turns == [("What is in the sky?", "A flock of birds."), ("Why calm?", "Soft light.")]
    assert parsed.repairs == repairs


@pytest.mark.parametrize("text, sample_type, reason", [
    ("", "conversation", "empty answer"),
    ("Sure! Here it is.\n" + GOOD, "conversation", "text before the first 'Question:'"),
    ("Answer:\nBirds fly.\nQuestion:\nWhat?", "conversation", "turn 1 is an answer where a question belongs"),
    ("Question:\nWhat is in the sky?\nAnswer:\nA flock of birds.", "conversation", "needs 2 to 6 question-answer"),
    (GOOD, "reasoning", "needs 1 question-answer pair; found 2"),
    ("Question:\nWhy?\nAnswer:\nThe soft light and open sky make it peaceful.", "reasoning", None),
    ("Question:\nWhy?\nAnswer:\nThe grey tones make the scene gloomy.", "reasoning", "never names the image's emotion"),
    ("Question:\nWhat is shown?\nAnswer:\nThe caption says birds.\nQuestion:\nWhy?\nAnswer:\nSoft light here.",
     "conversation", "speaks of the 'caption'"),
    ("Question:\nHow bright?\nAnswer:\nIts brightness is 0.71, quite bright.\nQuestion:\nWhy?\nAnswer:\nSoft light.",
     "conversation", "repeats the attribute value 0.71"),
    ("Question:\nWhat?\nAnswer:\nBirds\n```\ncode\n```", "conversation", "a code block inside the answer"),
])
def test_answers_that_cannot_become_samples_say_why(text, sample_type, reason):
    if reason is None:  # a synonym of the label counts as naming it
        assert parse_answer(text, sample_type, "contentment").turns
        return
    with pytest.raises(AnswerRejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_answer(text, sample_type, "contentment", quoted=["0.71"])


def test_an_answer_cut_off_at_the_token_limit_is_rejected():
    with pytest.raises(AnswerRejected, match=r"cut off at the token limit \(64 tokens\)"):
        parse_answer(GOOD, "conversation", "awe", finish_reason="length", max_tokens=64)


# -- runs -----------------------------------------------------------------------------------------

def test_categorical_samples_need_no_endpoint_and_ids_follow_the_image_bytes(tmp_path):
    root = class_folders(tmp_path / "in", {"awe": 2, "fear": 1})
    settings = Settings(datagen_measure="none")  # no model, no endpoint
    report = generate(root, tmp_path / "a", "emoset", types=["categorical"], settings=settings)
    assert (report.status, report.written, report.ledger["calls"]) == ("complete", 3, 0)
    samples = read_jsonl(tmp_path / "a" / "samples.jsonl")
    instruction = ("<image>\nPlease select the emotion closest to the image from the following options: amusement, "
                   "awe, contentment, excitement, anger, disgust, fear and sadness (Do not provide answers outside "
                   "of the candidates options.) Please answer in the following format: Predict emotion:")
    for sample in samples:
        assert sample["conversations"] == [{"from": "human", "value": instruction},
                                           {"from": "gpt", "value": f"Predict emotion: {sample['label']}"}]
        assert sample["label"] == sample["image"].split("/")[0]
        assert sample["image_sha256"] == hashlib.sha256((root / sample["image"]).read_bytes()).hexdigest()
        assert sample["provenance"]["model"] is None and sample["provenance"]["run_id"] == report.run_id
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["run_id"] == report.run_id and run["params"]["class_set"] == "mikels8"

    again = generate(root, tmp_path / "b", "mikels8", types=["categorical"], settings=settings)
    assert again.run_id != report.run_id
    assert sorted(s["id"] for s in read_jsonl(tmp_path / "b" / "samples.jsonl")) == sorted(s["id"] for s in samples)
    write_image(root / "awe" / "0.png", 1234)  # new bytes, new id
    changed = generate(root, tmp_path / "b", "mikels8", types=["categorical"], settings=settings)
    assert (changed.written, changed.already_done) == (1, 2)


def test_quotas_spread_over_images_and_repeated_questions_are_flagged(tmp_path, stub):
    root = class_folders(tmp_path / "in", {"awe": 2, "anger": 3})
    report = generate(root, tmp_path / "run", "mikels8", types=["categorical", "conversation"], per_class=5,
                      settings=stub_settings(stub.base_url))
    assert report.status == "complete" and report.planned == 2 + 3 + 5 + 5
    assert any("one per image, so 2 of the 5" in note for note in report.notes)
    samples = read_jsonl(tmp_path / "run" / "samples.jsonl")
    conversations = [s for s in samples if s["type"] == "conversation"]
    per_image = Counter(s["image"] for s in conversations)
    assert sorted(per_image[f"awe/{n}.png"] for n in range(2)) == [2, 3]  # 5 over 2 images
    assert sorted(per_image[f"anger/{n}.png"] for n in range(3)) == [1, 2, 2]
    assert len({(s["image"], s["index"]) for s in conversations}) == 10
    # the stub asks the same questions about an image each time: later samples of it are flagged
    by_image: dict[str, list[dict]] = {}
    for sample in conversations:
        by_image.setdefault(sample["image"], []).append(sample)
    for image_samples in by_image.values():
        flagged = [s for s in image_samples if s["provenance"]["near_duplicate_questions"]]
        assert len(flagged) == len(image_samples) - 1
        for sample in flagged:
            assert {d["in_sample"] for d in sample["provenance"]["near_duplicate_questions"]} <= {
                s["id"] for s in image_samples if s["id"] != sample["id"]}
    assert conversations[0]["conversations"][0]["value"].startswith("<image>\n")
    assert len(conversations[0]["conversations"]) == 6  # three question-answer turns
    provenance = conversations[0]["provenance"]
    assert provenance["model"] == "stub-model" and provenance["prompt"]["files"] == [
        "datagen_conversation_system.txt", "datagen_conversation_fewshot.txt"]
    assert provenance["raw_text"].startswith("Question:") and provenance["tokens"]["input"] > 0
    assert "emotion: " in provenance["context"]


def test_export_splits_by_image_and_takes_only_reviewed_versions(tmp_path, stub):
    root = class_folders(tmp_path / "in", {"awe": 4, "fear": 4, "anger": 2})
    generate(root, tmp_path / "run", "mikels8", settings=stub_settings(stub.base_url))
    samples = read_jsonl(tmp_path / "run" / "samples.jsonl")
    assert len(samples) == 30

    report = export(tmp_path / "run", "llava", tmp_path / "out" / "train.json", val_fraction=0.3, seed=1)
    train = json.loads((tmp_path / "out" / "train.json").read_text())
    val = json.loads((tmp_path / "out" / "train_val.json").read_text())
    assert (report.train_images, report.val_images) == (7, 3)
    assert not {s["image"] for s in train} & {s["image"] for s in val}
    assert sorted(s["id"] for s in train + val) == sorted(s["id"] for s in samples)
    assert set(train[0]) == {"id", "image", "conversations"}
    other = export(tmp_path / "run", "llava", tmp_path / "out" / "other.json", val_fraction=0.3, seed=2)
    assert other.val_images == 3

    report = export(tmp_path / "run", "instructblip", tmp_path / "blip.json")
    records = json.loads((tmp_path / "blip.json").read_text())
    assert report.val_file is None and len(records) == 10 * 1 + 10 * 3 + 10 * 1  # turns per type
    assert not any("<image>" in r["text_input"] for r in records)
    conversation = next(s for s in samples if s["type"] == "conversation")
    mine = [r for r in records if r["sample_id"] == conversation["id"]]
    assert [(r["text_input"], r["text_output"]) for r in mine] == [
        (conversation["conversations"][0]["value"].removeprefix("<image>\n"), conversation["conversations"][1]["value"]),
        (conversation["conversations"][2]["value"], conversation["conversations"][3]["value"]),
        (conversation["conversations"][4]["value"], conversation["conversations"][5]["value"])]

    # the review desk accepted three samples, one of them edited
    kept = [samples[3], samples[10], samples[20]]
    edited = json.loads(json.dumps(kept[1]))
    edited["conversations"][-1]["value"] = "An annotator's better answer."
    reviewed = {kept[0]["id"]: kept[0], kept[1]["id"]: edited, kept[2]["id"]: kept[2]}
    report = export(tmp_path / "run", "llava", tmp_path / "rev.json", val_fraction=0.0, reviewed=reviewed)
    written = json.loads((tmp_path / "rev.json").read_text())
    assert report.reviewed and [s["id"] for s in written] == [s["id"] for s in kept]
    assert written[1]["conversations"][-1]["value"] == "An annotator's better answer."
    assert written[0]["conversations"] == kept[0]["conversations"]


def test_export_takes_what_the_review_desk_accepted_in_its_latest_version(tmp_path, capsys):
    """Generator -> review desk (import, accept, edit then accept, reject) -> export: only accepted samples,
    edits applied; a run never imported exports everything."""
    from emo_core.review import ReviewDesk, import_run, to_text
    from emo_core.store import Store

    root = class_folders(tmp_path / "in", {"awe": 2, "fear": 2})
    generate(root, tmp_path / "run", "mikels8", types=["categorical"], settings=Settings(datagen_measure="none"))
    samples = {s["id"]: s for s in read_jsonl(tmp_path / "run" / "samples.jsonl")}
    out = tmp_path / "x.json"
    data_dir = tmp_path / "data"
    assert cli.main(["export", str(tmp_path / "run"), "--format", "llava", "--out", str(out),
                     "--data-dir", str(data_dir)]) == 0
    assert sorted(s["id"] for s in json.loads(out.read_text())) == sorted(samples)
    assert "all 4 generated samples (the run was not reviewed)" in capsys.readouterr().out

    store = Store.for_data_dir(data_dir)
    import_run(store, tmp_path / "run", overlap=0.0)
    desk = ReviewDesk(store, lease_seconds=60)
    decided = {}
    for action in ("accept", "edit", "reject", None):
        item = desk.next_item("ann")
        if action is None:  # the fourth stays pending
            break
        sample = samples[item.sample_id]
        if action == "edit":
            edited = json.loads(json.dumps(sample["conversations"]))
            edited[-1]["value"] = "Predict emotion: awe. Checked by a reviewer."
            desk.decide(item.item_id, "ann", "edit", edited_text=to_text(edited))
        elif action == "reject":
            desk.decide(item.item_id, "ann", "reject", reason="wrong emotion")
        else:
            desk.decide(item.item_id, "ann", "accept")
        decided[action] = item.sample_id
    assert cli.main(["export", str(tmp_path / "run"), "--format", "llava", "--out", str(out),
                     "--data-dir", str(data_dir)]) == 0
    written = {s["id"]: s for s in json.loads(out.read_text())}
    assert set(written) == {decided["accept"], decided["edit"]}
    assert written[decided["edit"]]["conversations"][-1]["value"] == "Predict emotion: awe. Checked by a reviewer."
    assert written[decided["accept"]]["conversations"] == samples[decided["accept"]]["conversations"]
    assert "latest accepted versions of 2 reviewed samples (of 4 generated)" in capsys.readouterr().out


def test_the_call_limit_and_the_budget_stop_cleanly_and_a_rerun_continues(tmp_path, stub):
    root = class_folders(tmp_path / "in", {"awe": 3, "fear": 3})
    report = generate(root, tmp_path / "run", "mikels8", types=["reasoning"], max_calls=4,
                      settings=stub_settings(stub.base_url))
    assert report.status == "stopped" and "--max-calls 4" in report.stop_reason
    assert (stub.request_count, report.written, report.pending) == (4, 4, 2)
    assert json.loads((tmp_path / "run" / "ledger.json").read_text())["totals"]["calls"] == 4

    priced = stub_settings(stub.base_url, datagen_price_input_per_1k=1.0, datagen_price_output_per_1k=2.0,
                           datagen_max_tokens=100, datagen_concurrency=1)
    with pytest.raises(EmoError, match="--budget-usd needs the prices"):
        generate(root, tmp_path / "run", "mikels8", types=["reasoning"], budget_usd=1.0,
                 settings=stub_settings(stub.base_url))
    report = generate(root, tmp_path / "run", "mikels8", types=["conversation"], budget_usd=2.0, settings=priced)
    assert report.status == "stopped" and "the budget is reached" in report.stop_reason
    ledger = json.loads((tmp_path / "run" / "ledger.json").read_text())
    spent = ledger["invocations"][-1]["cost_usd"]
    # the stub reports prompt characters / 4 and answer characters / 4 as tokens: cost them by hand
    by_hand = sum((sum(len(m["content"]) for m in r.body["messages"]) // 4 * 1.0 + len(good_answer(r)) // 4 * 2.0)
                  / 1000 for r in stub.requests[4:])
    assert spent == pytest.approx(by_hand, rel=1e-6) and spent <= 2.0
    assert 0 < report.written < 6
    finished = generate(root, tmp_path / "run", "mikels8", types=["reasoning", "conversation"], settings=priced,
                        budget_usd=100.0)
    assert finished.status == "complete"
    ids = [s["id"] for s in read_jsonl(tmp_path / "run" / "samples.jsonl")]
    assert len(ids) == len(set(ids)) == 12


def test_a_full_disk_stops_the_run_and_keeps_the_samples_written(tmp_path, stub, monkeypatch):
    root = class_folders(tmp_path / "in", {"awe": 4, "fear": 4})
    original = RecordFile.append
    writes = Counter()

    def append(self, record):
        if self.path.name == "samples.jsonl":
            writes["n"] += 1
            if writes["n"] > 5:
                raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, record)

    monkeypatch.setattr(RecordFile, "append", append)
    report = generate(root, tmp_path / "run", "mikels8", types=["categorical", "reasoning"],
                      settings=stub_settings(stub.base_url))
    assert report.status == "stopped" and "cannot write to the run folder (No space left on device)" in report.stop_reason
    assert len(read_jsonl(tmp_path / "run" / "samples.jsonl")) == 5
    monkeypatch.setattr(RecordFile, "append", original)
    report = generate(root, tmp_path / "run", "mikels8", types=["categorical", "reasoning"],
                      settings=stub_settings(stub.base_url))
    assert (report.status, report.already_done, report.written) == ("complete", 5, 11)


def test_an_image_that_does_not_open_is_recorded_and_retried_once_replaced(tmp_path):
    root = class_folders(tmp_path / "in", {"awe": 2})
    (root / "awe" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    settings = Settings(datagen_measure="low-level")
    report = generate(root, tmp_path / "run", "mikels8", types=["categorical"], settings=settings)
    assert (report.status, report.written, report.pending) == ("stopped", 2, 1)
    (rejected,) = read_jsonl(tmp_path / "run" / "rejected.jsonl")
    assert rejected["stage"] == "input" and rejected["image"] == "awe/broken.jpg"
    assert rejected["reason"].startswith("the image does not open") and "/" not in rejected["reason"].split(":", 1)[1]
    write_image(root / "awe" / "broken.jpg", 77)
    report = generate(root, tmp_path / "run", "mikels8", types=["categorical"], settings=settings)
    assert (report.status, report.written, report.already_done) == ("complete", 1, 2)


def test_cli_generate_then_export(tmp_path, stub, capsys, monkeypatch):
    root = class_folders(tmp_path / "in", {"awe": 2, "sadness": 2})
    monkeypatch.setenv("EMO_DATAGEN_MEASURE", "low-level")
    monkeypatch.setenv("EMO_DATAGEN_CONCURRENCY", "99")  # the flag wins
    code = cli.main(["generate", str(root), "--out", str(tmp_path / "run"), "--class-set", "emoset", "--base-url",
                     stub.base_url, "--model", "stub-model", "--concurrency", "2", "--no-progress",
                     "--types", "categorical,reasoning"])
    printed = capsys.readouterr().out
    assert code == 0 and "8 samples written, 0 rejected" in printed and "requests: 4 (0 retries" in printed
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["params"]["types"] == ["categorical", "reasoning"] and run["invocations"][0]["status"] == "complete"
    assert cli.main(["export", str(tmp_path / "run"), "--format", "instructblip", "--out", str(tmp_path / "t.json"),
                     "--val-fraction", "0.5"]) == 0
    assert "val: 4 samples, 2 images" in capsys.readouterr().out


@pytest.mark.parametrize("env", [{"EMO_DATAGEN_CONCURRENCY": "0"}, {"EMO_DATAGEN_TEMPERATURE": "3"},
                                 {"EMO_DATAGEN_MEASURE": "guess"}, {"EMO_DATAGEN_CAPTIONER": "blip"},
                                 {"EMO_DATAGEN_PRICE_INPUT_PER_1K": "-1"}, {"EMO_DATAGEN_MAX_TOKENS": "2"}])
def test_bad_generator_settings_are_refused(env):
    (variable,) = env
    with pytest.raises(ValueError, match=variable.removeprefix("EMO_").lower()):
        Settings.from_env(env)


def test_a_missing_model_or_key_fails_before_the_run_folder_is_touched(tmp_path, monkeypatch):
    root = class_folders(tmp_path / "in", {"awe": 1})
    with pytest.raises(EmoError, match="needs a model name"):
        generate(root, tmp_path / "run", "mikels8", settings=Settings(datagen_measure="none"))
    monkeypatch.delenv("EMOLENS_TEST_DATAGEN_KEY", raising=False)
    with pytest.raises(EmoError, match="set the environment variable EMOLENS_TEST_DATAGEN_KEY"):
        generate(root, tmp_path / "run", "mikels8", settings=Settings(datagen_model="gpt-x",
                                                                      datagen_api_key_env="EMOLENS_TEST_DATAGEN_KEY"))
    with pytest.raises(EmoError, match="the offline backend has no captioner"):
        generate(root, tmp_path / "run", "mikels8", types=["categorical"],
                 settings=Settings(datagen_captioner="backend"))
    assert not (tmp_path / "run").exists()


class FakeCaptioner(Backend):
    """A captioning backend that names the file it was shown."""

    name = "fake"
    capabilities = frozenset({"image", "generate"})

    def generate(self, messages, **options):
        (part,) = [p for p in messages[0]["content"] if p["type"] == "image"]
        return f"  A picture called {Path(part['path']).stem}.  "


def test_captions_come_from_the_input_or_a_captioning_backend(tmp_path, stub):
    root = class_folders(tmp_path / "in", {"awe": 2})
    table = as_csv(root, root / "t.csv", extra={"awe/0.png": {"caption": "A quiet valley at dawn."}})
    generate(table, tmp_path / "run", "mikels8", types=["reasoning"], settings=stub_settings(stub.base_url),
             captioner=FakeCaptioner())
    captions = {s["image"]: s["caption"] for s in read_jsonl(tmp_path / "run" / "samples.jsonl")}
    assert captions["awe/0.png"] == {"text": "A quiet valley at dawn.", "source": "given", "note": ""}
    assert captions["awe/1.png"] == {"text": "A picture called 1.", "source": "captioner", "note": "written by fake"}
    contexts = sorted(request.context for request in stub.requests)
    assert contexts[0].startswith("A picture called 1.\n\nemotion: awe\nbrightness: ")
    assert contexts[1].startswith("A quiet valley at dawn.\n\nemotion: awe\nbrightness: ")
