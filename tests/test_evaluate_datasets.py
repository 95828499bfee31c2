"""Dataset layouts, their checks before a run, the instructions, and safe unpacking of uploads."""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile

import pytest

from emo_core.errors import InputTooLargeError, InvalidInputError
from emo_core.evaluate import DatasetError, instructions, load_dataset, parse_aliases
from emo_core.evaluate.archive import dataset_entry, extract_zip, folder_under_root
from tests.eval_fakes import write_colour_dataset


def test_folder_layout_with_hashes_and_dataset_name(tmp_path):
    write_colour_dataset(tmp_path / "d", [(10, "joy"), (20, "fear"), (30, "joy")])
    data = load_dataset(tmp_path / "d", "Emotion6")
    assert [(s.name, s.label) for s in data.samples] == [("fear/img001.png", "fear"), ("joy/img000.png", "joy"),
                                                         ("joy/img002.png", "joy")]
    for sample in data.samples:
        assert sample.sha256 == hashlib.sha256(sample.path.read_bytes()).hexdigest()
    manifest = data.manifest()
    assert manifest["class_set"] == "emotion6" and manifest["dataset"] == "Emotion6" and len(manifest["samples"]) == 3


def test_csv_json_and_label_file_layouts(tmp_path):
    write_colour_dataset(tmp_path, [(10, "joy"), (20, "anger")])
    (tmp_path / "list.csv").write_text("path,label\njoy/img000.png,joy\nanger/img001.png,Anger\n")
    assert [s.label for s in load_dataset(tmp_path / "list.csv", "emotion6").samples] == ["anger", "joy"]
    emoset = [["joy", "joy/img000.png", "annotation/joy/img000.json"], ["anger", "anger/img001.png", "x.json"]]
    (tmp_path / "test.json").write_text(json.dumps(emoset))
    assert len(load_dataset(tmp_path / "test.json", "emotion6").samples) == 2
    (tmp_path / "objects.json").write_text(json.dumps([{"image": "joy/img000.png", "emotion": "joy"}]))
    assert load_dataset(tmp_path / "objects.json", "emotion6").samples[0].label == "joy"
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "sample_001.mp4").write_bytes(b"not decoded before the run")
    (clips / "sample_002.webm").write_bytes(b"another clip")
    (tmp_path / "labels.txt").write_text("name label\nsample_001 happy\nsample_002.webm worried\n")
    video = load_dataset(tmp_path / "labels.txt", "mer2023", media_dir=clips)
    assert video.video and [(s.name, s.label) for s in video.samples] == [("clips/sample_001.mp4", "happy"),
                                                                         ("clips/sample_002.webm", "worried")]


def test_aliases_are_explicit_and_counted(tmp_path):
    write_colour_dataset(tmp_path / "d", [(10, "happiness"), (20, "happiness"), (30, "sadness"), (40, "calm")])
    with pytest.raises(DatasetError) as refused:
        load_dataset(tmp_path / "d", "fer7")  # "calm" is no class of FER-7 and has no alias
    assert "'calm' (1 sample(s)) is not a class" in str(refused.value)
    data = load_dataset(tmp_path / "d", "fer7", aliases=parse_aliases(["calm=neutral"]))
    assert data.aliases_used == {"happiness -> happy": 2, "sadness -> sad": 1, "calm -> neutral": 1}
    with pytest.raises(InvalidInputError):
        parse_aliases(["calm"])


def test_every_problem_is_reported_before_anything_runs(tmp_path):
    root = write_colour_dataset(tmp_path / "d", [(10, "joy"), (20, "fear"), (30, "love")])
    (root / "joy" / "copy.png").write_bytes((root / "joy" / "img000.png").read_bytes())
    (root / "fear" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "list.csv").write_text("d/joy/img000.png,joy\nd/joy/gone.png,joy\n")
    with pytest.raises(DatasetError) as refused:
        load_dataset(root, "emotion6")
    problems = " | ".join(refused.value.problems)
    assert "'love' (1 sample(s)) is not a class" in problems
    assert "duplicate files (same content): joy/copy.png, joy/img000.png" in problems
    assert "fear/broken.jpg: not an image that can be read" in problems
    with pytest.raises(DatasetError, match="joy/gone.png: missing"):
        load_dataset(tmp_path / "list.csv", "emotion6")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(tmp_path / "empty", "emotion6")


def test_files_outside_a_confined_dataset_are_refused(tmp_path):
    write_colour_dataset(tmp_path / "outside", [(10, "joy")])
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "list.csv").write_text("../outside/joy/img000.png,joy\n")
    assert load_dataset(upload / "list.csv", "emotion6").samples  # a local user's own CSV may point anywhere
    with pytest.raises(DatasetError, match="outside the dataset's folder"):
        load_dataset(upload / "list.csv", "emotion6", confine_to=upload)
    (upload / "joy").mkdir()
    (upload / "joy" / "link.png").symlink_to(tmp_path / "outside" / "joy" / "img000.png")
    (upload / "list.csv").unlink()
    with pytest.raises(DatasetError, match="outside the dataset's folder"):
        load_dataset(upload, "emotion6", confine_to=upload)


def test_limit_keeps_a_fixed_subset(tmp_path):
    write_colour_dataset(tmp_path / "d", [(r, "joy" if r % 20 else "fear") for r in range(10, 200, 10)])
    first = load_dataset(tmp_path / "d", "emotion6", limit=5)
    assert len(first.samples) == 5 and first.total == 19
    assert [s.sha256 for s in first.samples] == [s.sha256 for s in load_dataset(tmp_path / "d", "emotion6", limit=5).samples]


def test_built_in_instructions_are_the_papers_verbatim():
    labels = ["amusement", "awe", "contentment"]
    # EmoVIT Sec. 4.3.2, with "cls_1, cls_2, cls_3, etc." filled in
    assert instructions.BUILTIN["sensitivity_1"].render(labels) == (
        "From the given options: amusement, awe and contentment, identify the emotion that most accurately reflects "
        "the image. Ensure your selection is confined to the listed options. Respond in the format: Predicted emotion:")
    assert instructions.BUILTIN["sensitivity_2"].render(labels) == (
        "Please choose the emotion that best corresponds to the image from the following options: amusement, awe and "
        "contentment (Do not provide answers beyond the provided candidates.) Please reply in the following format: "
        "Predict emotion:")
    assert instructions.BUILTIN["categorical"].render(labels).startswith(
        "Please select the emotion closest to the image from the following options: amusement, awe and contentment "
        "(Do not provide answers outside of the candidates options.)")
    assert [i.id for i in instructions.by_ids(list(instructions.default_ids(video=False)))] == [
        "categorical", "sensitivity_1", "sensitivity_2"]


def test_user_phrasings_one_per_paragraph(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("Which of {classes} fits\nthis picture?\n\n\nName the feeling ({classes}).\n")
    found = instructions.read_file(path)
    assert [i.id for i in found] == ["custom_1", "custom_2"]
    assert found[0].render(["joy", "fear"]) == "Which of joy and fear fits this picture?"
    with pytest.raises(InvalidInputError, match="instruction 2 has no"):
        instructions.parse_custom("About {classes}?\n\nNo slot here.")
    with pytest.raises(InvalidInputError, match="unknown instruction"):
        instructions.by_ids("categorical,nope")


def _zip(path, entries: dict[str, bytes], symlink: str | None = None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_a_zip_unpacks_and_its_dataset_is_found(tmp_path):
    source = write_colour_dataset(tmp_path / "src", [(10, "joy"), (20, "fear")])
    entries = {f"mydata/{p.relative_to(source).as_posix()}": p.read_bytes() for p in source.rglob("*.png")}
    entries["__MACOSX/mydata/._junk"] = b"metadata"
    root = extract_zip(_zip(tmp_path / "ok.zip", entries), tmp_path / "out", max_bytes=10**6, max_files=10)
    data = load_dataset(dataset_entry(root), "emotion6", confine_to=root)
    assert sorted(s.label for s in data.samples) == ["fear", "joy"]


@pytest.mark.parametrize("entries,symlink,message", [
    ({"../escape.png": b"x"}, None, "points outside"),
    ({"/abs/escape.png": b"x"}, None, "points outside"),
    ({"a/../../escape.png": b"x"}, None, "points outside"),
    ({"C:/windows/escape.png": b"x"}, None, "points outside"),
    ({"ok/a.png": b"x"}, "ok/link.png", "symbolic link"),
])
def test_zip_entries_escaping_the_root_are_refused(tmp_path, entries, symlink, message):
    with pytest.raises(InvalidInputError, match=message):
        extract_zip(_zip(tmp_path / "bad.zip", entries, symlink), tmp_path / "out", max_bytes=10**6, max_files=10)
    assert not (tmp_path / "escape.png").exists()


def test_zip_bombs_and_too_many_entries_are_refused(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {"a/zeros.png": bytes(5_000_000)})
    assert bomb.stat().st_size < 20_000
    with pytest.raises(InputTooLargeError, match="more than 1 MB"):
        extract_zip(bomb, tmp_path / "out", max_bytes=1_000_000, max_files=10)
    many = _zip(tmp_path / "many.zip", {f"a/{i}.png": b"x" for i in range(12)})
    with pytest.raises(InputTooLargeError, match="12 entries"):
        extract_zip(many, tmp_path / "out2", max_bytes=10**6, max_files=10)
    (tmp_path / "not.zip").write_bytes(b"plain text")
    with pytest.raises(InvalidInputError, match="not a zip"):
        extract_zip(tmp_path / "not.zip", tmp_path / "out3", max_bytes=10**6, max_files=10)


def test_a_zip_that_lies_about_its_sizes_stops_at_the_limit(tmp_path):
    path = _zip(tmp_path / "liar.zip", {"a/zeros.png": bytes(3_000_000)})
    data = bytearray(path.read_bytes())
    # shrink the declared uncompressed size in the local header (offset 22) and the central directory (offset 24)
    data[22:26] = (100).to_bytes(4, "little")
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError):
        extract_zip(path, tmp_path / "out", max_bytes=1_000_000, max_files=10)
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written <= 1_000_000


def test_server_folders_only_under_the_allowed_root(tmp_path):
    (tmp_path / "root" / "sets" / "a").mkdir(parents=True)
    assert folder_under_root("sets/a", str(tmp_path / "root")) == (tmp_path / "root" / "sets" / "a").resolve()
    with pytest.raises(InvalidInputError, match="outside"):
        folder_under_root("../", str(tmp_path / "root"))
    with pytest.raises(InvalidInputError, match="turned off"):
        folder_under_root("sets/a", "")
    with pytest.raises(InvalidInputError) as missing:
        folder_under_root("nothing/here", str(tmp_path / "root"))
    assert str(tmp_path) not in str(missing.value)
