"""analyze_image / analyze_images end to end on real photos, through the offline backend."""

import csv
import io
import json

import pytest

from emo_core import (CLASS_SETS, IMAGE_CLASS_SETS, InvalidInputError, UnknownClassSetError, analyze_image,
                      analyze_images, rows_to_csv)
from emo_core.backends import BACKENDS, get_backend
from emo_core.errors import BackendError, CapabilityError

HAPPY_LABEL = {"mikels8": "amusement", "emotion6": "joy", "emotionroi": "joy", "unbiasedemo": "joy",
               "webemo7": "joy", "fer7": "happy"}


@pytest.mark.parametrize("class_set", IMAGE_CLASS_SETS)
def test_smiling_astronaut_in_every_class_set(images, settings, class_set):
    result = analyze_image(images["astronaut"], class_set, settings=settings)
    labels = CLASS_SETS[class_set].labels
    assert result.label == HAPPY_LABEL[class_set]
    assert list(result.distribution) == list(labels)
    assert sum(result.distribution.values()) == pytest.approx(1.0)
    assert result.confidence == pytest.approx(result.distribution[result.label], abs=1e-4)
    assert result.answer.startswith(f"Predicted emotion: {result.label}. Reason: ")
    assert "One face was found" in result.reason and "happy" in result.reason
    assert len(result.faces) == 1 and result.faces[0].expression == "happy"
    assert result.basis.startswith("face expressions")
    assert not result.reason_by_model and result.reason_note.startswith("template")
    assert result.abstained == ""


def test_answer_says_who_wrote_the_reason_and_what_the_set_cannot_tell_apart(images, settings):
    from tests.test_markdown_text import parts, render
    from ui.render import answer_markdown

    result = analyze_image(images["astronaut"], "unbiasedemo", settings=settings)
    assert any("joy / love" in note for note in result.limits)
    text = parts(render(answer_markdown(result))).text  # what the page shows
    assert text.startswith("joy") and "Reason: template" in text and "joy / love" in text
    blank = parts(render(answer_markdown(analyze_image(images["coffee"], "unbiasedemo", settings=settings)))).text
    assert blank.startswith("No label: no face was found") and "%" not in blank.splitlines()[0]


def test_result_is_json_ready(images, settings):
    result = analyze_image(images["astronaut"], settings=settings)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["label"] == "amusement" and "image" not in data
    assert set(data["cues"]) >= {"brightness", "colorfulness", "face_count", "facial_expressions",
                                 "object_classes", "human_action", "not_measured"}
    assert data["cues"]["not_measured"]["scene type"]
    assert data["timings"]["total"] > 0


def test_face_free_photo_says_only_low_level_cues(images, settings):
    result = analyze_image(images["coffee"], "emotion6", settings=settings)
    assert result.faces == [] and result.cues["face_count"] == 0
    assert result.basis.startswith("low-level cues only")
    assert result.label is None and result.confidence is None and "no face" in result.abstained
    assert result.answer.startswith("Predicted emotion: none. Reason: ")
    assert max(result.distribution.values()) < 0.25  # the weak prior is still there, for the chart
    assert "No face was found, so no model judged the emotion" in result.reason
    assert "espresso" in result.reason  # the object cue is reported


def test_group_photo(images, settings):
    result = analyze_image(images["group5"], "fer7", settings=settings)
    assert len(result.faces) == 5 and result.label == "happy"
    assert "5 faces were found" in result.reason


def test_exif_rotated_photo_finds_the_face(tmp_path, settings):
    from PIL import Image

    from tests import media

    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    path.write_bytes(media.jpeg_bytes(media.astronaut().rotate(90, expand=True), exif=exif.tobytes()))
    result = analyze_image(path, "fer7", settings=settings)
    assert len(result.faces) == 1 and result.label == "happy"
    assert any("EXIF" in note for note in result.notes)


def test_bad_inputs_raise_typed_errors(tmp_path, settings):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(InvalidInputError):
        analyze_image(bad, settings=settings)
    with pytest.raises(UnknownClassSetError):
        analyze_image(bad, "nope", settings=settings)


def test_batch_keeps_going_past_a_bad_file_and_writes_csv(images, tmp_path, settings):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    seen = []
    rows = analyze_images([images["astronaut"], bad, images["cat"]], "emotion6", settings=settings,
                          progress=lambda done, total, name: seen.append((done, total)))
    assert [row.file for row in rows] == ["astronaut.jpg", "broken.jpg", "cat.jpg"]
    assert rows[0].result.label == "joy" and rows[1].result is None and "not an image" in rows[1].error
    assert rows[0].result.image is None and rows[2].result.image is None  # no decoded image is kept
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    table = list(csv.DictReader(io.StringIO(rows_to_csv(rows, "emotion6"))))
    assert table[0]["label"] == "joy" and float(table[0]["p_joy"]) > 0.5
    assert table[1]["error"] and table[1]["label"] == ""
    assert table[2]["faces"] == "0" and table[2]["label"] == "none"


def test_backend_registry_is_explicit(settings):
    assert set(BACKENDS) >= {"offline"}
    backend = get_backend("offline", settings)
    assert backend is get_backend("offline", settings)  # one instance per process and options
    assert backend.supports("score") and not backend.supports("generate")
    with pytest.raises(CapabilityError):
        backend.generate([{"role": "user", "content": "hi"}])
    with pytest.raises(BackendError, match="unknown backend"):
        get_backend("gpt-from-nowhere", settings)


def test_offline_score_is_a_log_distribution(images, settings):
    import math

    from emo_core.backends import user_message

    backend = get_backend("offline", settings)
    scores = backend.score(user_message("any", image=str(images["astronaut"])), ["happy", "sad", "neutral"])
    assert sum(math.exp(v) for v in scores.values()) == pytest.approx(1.0)
    assert max(scores, key=scores.get) == "happy"


def test_results_report_the_class_set_key_and_the_dataset_asked_for(images, settings):
    by_dataset = analyze_image(images["astronaut"], "EmoSet", settings=settings)
    by_key = analyze_image(images["astronaut"], "mikels8", settings=settings)
    assert (by_dataset.class_set, by_dataset.dataset) == ("mikels8", "EmoSet")
    assert (by_key.class_set, by_key.dataset) == ("mikels8", "")
    assert by_dataset.distribution == by_key.distribution and by_dataset.to_dict()["dataset"] == "EmoSet"
    rows = analyze_images([images["astronaut"]], "fer2013", settings=settings)
    assert rows[0].result.class_set == "fer7" and rows[0].result.label == "happy"
    with pytest.raises(UnknownClassSetError):
        analyze_images([images["astronaut"]], "imagenet", settings=settings)
