"""The MERR folder annotator: records appended as they finish (JSONL), reruns skip what is done, a run
killed mid-way loses nothing, and bad videos or invalid records are reported without stopping the run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emo_core.merr import validate_record
from emo_core.merr_annotate import annotate_folder, main
from tests import media, media_av

ROOT = Path(__file__).resolve().parent.parent


def journal_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_annotates_resumes_and_reports_failures(tmp_path, clips, settings):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clips["mute"], folder / "a.mp4")
    shutil.copy(clips["no_face"], folder / "b.mp4")
    (folder / "broken.mp4").write_bytes(b"not a video")
    (folder / "notes.txt").write_text("ignored: not a video suffix")
    out = tmp_path / "merr.json"

    counts = annotate_folder(folder, out, task="emotion", settings=settings, show_progress=False)
    assert counts == {"done": 2, "skipped": 0, "failed": 1}
    records = json.loads(out.read_text())
    assert set(records) == {"a.mp4", "b.mp4"}
    assert all(validate_record(record) == [] for record in records.values())
    assert "broken.mp4" in json.loads((tmp_path / "merr.json.errors.json").read_text())
    assert [line["video"] for line in journal_lines(tmp_path / "merr.jsonl")] == ["a.mp4", "b.mp4"]

    counts = annotate_folder(folder, out, task="emotion", settings=settings, show_progress=False)
    assert counts == {"done": 0, "skipped": 2, "failed": 1}

    shutil.copy(clips["speech"], folder / "a.mp4")  # changed content: annotated again
    counts = annotate_folder(folder, out, task="emotion", settings=settings, show_progress=False)
    assert counts["done"] == 1 and counts["skipped"] == 1
    assert "championship" in json.loads(out.read_text())["a.mp4"]["text"].lower()
    lines = journal_lines(tmp_path / "merr.jsonl")  # one line per video again, the newer a.mp4
    assert sorted(line["video"] for line in lines) == ["a.mp4", "b.mp4"]
    assert "championship" in next(line for line in lines if line["video"] == "a.mp4")["record"]["text"].lower()


def test_records_say_how_they_were_made(tmp_path, clips, settings):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clips["mute"], folder / "face.mp4")
    out = tmp_path / "merr.jsonl"
    annotate_folder(folder, out, class_set="dfew", task="emotion", settings=settings, show_progress=False)
    (line,) = journal_lines(out)
    assert line["video"] == "face.mp4" and len(line["sha256"]) == 64
    record = line["record"]
    provenance = record["provenance"]
    assert (provenance["au_source"], provenance["tone_source"]) == ("landmark_proxies", "rules")
    assert provenance["reason_source"] == "none" and record["smp_reason_caption"] == ""  # the emotion task
    assert (provenance["class_set"], provenance["dataset"]) == ("dfew7", "DFEW")
    assert "face shows" in record["multimodal_description"]
    assert not (tmp_path / "merr.json").exists()  # a .jsonl out is the only output


def test_a_line_cut_short_by_a_kill_is_redone(tmp_path, clips, settings):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clips["mute"], folder / "a.mp4")
    shutil.copy(clips["no_face"], folder / "b.mp4")
    out = tmp_path / "merr.jsonl"
    annotate_folder(folder, out, task="emotion", settings=settings, show_progress=False)
    first, second = out.read_text().splitlines(keepends=True)
    out.write_text(first + second[: len(second) // 2])  # killed while writing b.mp4's line

    counts = annotate_folder(folder, out, task="emotion", settings=settings, show_progress=False)
    assert counts == {"done": 1, "skipped": 1, "failed": 0}
    assert [line["video"] for line in journal_lines(out)] == ["a.mp4", "b.mp4"]  # the cut line is gone


def test_an_invalid_record_is_reported_not_fatal(tmp_path, clips, settings, monkeypatch):
    from emo_core.tasks import video_emotion

    real = video_emotion.analyze_video

    def analyze_video(path, *args, **kwargs):
        result = real(path, *args, **kwargs)
        if Path(path).name == "a.mp4":
            result.merr["peak_index"] = "twenty"
        return result

    monkeypatch.setattr(video_emotion, "analyze_video", analyze_video)
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clips["mute"], folder / "a.mp4")
    shutil.copy(clips["no_face"], folder / "b.mp4")
    counts = annotate_folder(folder, tmp_path / "merr.json", task="emotion", settings=settings, show_progress=False)
    assert counts == {"done": 1, "skipped": 0, "failed": 1}
    errors = json.loads((tmp_path / "merr.json.errors.json").read_text())
    assert list(errors) == ["a.mp4"] and "invalid MERR record" in errors["a.mp4"] and "peak_index" in errors["a.mp4"]
    assert list(json.loads((tmp_path / "merr.json").read_text())) == ["b.mp4"]


def test_a_merr_json_from_before_journals_is_carried_over(tmp_path, clips, settings):
    """Records in an existing merr.json (with its .sha256.json side file) are neither redone nor dropped."""
    from emo_core.merr_annotate import file_sha256

    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clips["mute"], folder / "a.mp4")
    out = tmp_path / "merr.json"
    old = {"a.mp4": {"marker": "kept"}, "gone.mp4": {"marker": "video no longer in the folder"}}
    out.write_text(json.dumps(old))
    (tmp_path / "merr.json.sha256.json").write_text(json.dumps({"a.mp4": file_sha256(folder / "a.mp4")}))
    counts = annotate_folder(folder, out, task="emotion", settings=settings, show_progress=False)
    assert counts == {"done": 0, "skipped": 1, "failed": 0}
    assert json.loads(out.read_text()) == old


def test_cli_refuses_a_missing_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.json")])
    assert "is not a folder" in capsys.readouterr().err


def test_cli_refuses_an_unknown_class_set_before_any_work(tmp_path, clips, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clips["mute"], folder / "a.mp4")
    with pytest.raises(SystemExit):
        main([str(folder), "--out", str(tmp_path / "x.json"), "--class-set", "imagenet"])
    assert "unknown class set 'imagenet'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [folder]


@pytest.fixture(scope="module")
def short_clips(tmp_path_factory):
    """Six different 1 s clips of the face (jaw drops at a different frame in each), no audio."""
    folder = tmp_path_factory.mktemp("short_clips")
    for number in range(6):
        frames = media.expression_frames(n_frames=15, peak=3 + 2 * number, rise=3)
        media_av.mux_video(media.frame_function(frames, 15), None, folder / f"clip{number}.mp4", 15, duration=1.0)
    return folder


def test_a_run_killed_mid_way_loses_nothing_and_a_rerun_finishes_it(tmp_path, short_clips, settings):
    """The CLI (the contract: ``python -m emo_core.merr_annotate videos/ --out merr.json``) is killed
    with SIGKILL as soon as its first record is on disk; the rerun skips every record that was
    written, does the rest, and each video ends up exactly once in merr.jsonl and merr.json."""
    out = tmp_path / "merr.json"
    journal = tmp_path / "merr.jsonl"
    env = dict(os.environ, EMO_DATA_DIR=str(tmp_path / "data"), EMO_PRELOAD="false", EMO_VIDEO_CLASS_SET="merr")
    process = subprocess.Popen(
        [sys.executable, "-m", "emo_core.merr_annotate", str(short_clips), "--out", str(out), "--task", "emotion"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (journal.exists() and journal.read_text().count("\n") >= 1):
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no record was written in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    complete = [line for line in journal.read_text().splitlines(keepends=True) if line.endswith("\n")]
    written = [json.loads(line)["video"] for line in complete]  # a line being written at the kill is redone
    assert 1 <= len(written) < 6 and not out.exists()  # merr.json is written when a run completes

    counts = annotate_folder(short_clips, out, class_set="merr", task="emotion", settings=settings,
                             show_progress=False)
    assert counts == {"done": 6 - len(written), "skipped": len(written), "failed": 0}
    names = [f"clip{number}.mp4" for number in range(6)]
    lines = journal_lines(journal)
    assert sorted(line["video"] for line in lines) == names  # each video exactly once
    records = json.loads(out.read_text())
    assert sorted(records) == names
    assert all(validate_record(record) == [] for record in records.values())
    assert all(record["provenance"]["class_set"] == "merr9" for record in records.values())  # from EMO_VIDEO_CLASS_SET
