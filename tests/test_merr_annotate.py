"""The MERR folder annotator: records written as they finish, reruns skip what is done."""

import json
import shutil

from emo_core.merr import validate_record
from emo_core.merr_annotate import annotate_folder, main


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

    counts = annotate_folder(folder, out, task="emotion", settings=settings, show_progress=False)
    assert counts == {"done": 0, "skipped": 2, "failed": 1}

    shutil.copy(clips["speech"], folder / "a.mp4")  # changed content: annotated again
    counts = annotate_folder(folder, out, task="emotion", settings=settings, show_progress=False)
    assert counts["done"] == 1 and counts["skipped"] == 1
    assert "championship" in json.loads(out.read_text())["a.mp4"]["text"].lower()


def test_cli_refuses_a_missing_folder(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.json")])
    assert "is not a folder" in capsys.readouterr().err
