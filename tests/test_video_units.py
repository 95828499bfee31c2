"""Units of the video pipeline: AU measures and rules, the peak rule, tracking, fusion, MERR records."""

import numpy as np
import pytest

from emo_core.cues.faces import Face
from emo_core.merr import build_record, validate_record
from emo_core.video import action_units as au
from emo_core.video.au_rules import AU_COMBINATIONS, AU_TEXT, describe, peak_frame, pseudo_label
from emo_core.video.fusion import fuse
from emo_core.video.tracking import build_tracks, main_track

MER = ["neutral", "angry", "happy", "sad", "worried", "surprise"]


def row(**values):
    out = np.zeros(len(au.AU_CODES))
    for code, value in values.items():
        out[au.AU_CODES.index(code)] = value
    return out


def test_every_au_is_documented_and_described():
    assert len(au.AU_CODES) == 16
    assert set(AU_TEXT) == set(au.AU_CODES)
    for combination_list in AU_COMBINATIONS.values():
        for combination in combination_list:
            assert set(combination) <= set(au.AU_CODES)
    assert describe(["AU04"]) == "frowns, furrowed brows"
    assert describe([]) == "a neutral, relaxed face"


@pytest.mark.parametrize("values, expected", [
    ({"AU06": 3, "AU12": 4}, "happy"), ({"AU05": 3, "AU26": 4}, "surprise"), ({"AU01": 2, "AU04": 2, "AU15": 3}, "sad"),
    ({"AU04": 3, "AU07": 2, "AU23": 2}, "angry"), ({"AU09": 2, "AU10": 2}, "disgust"), ({}, "neutral"),
    ({"AU12": 0.5}, "neutral"),  # below the active threshold
])
def test_pseudo_labels_follow_the_combinations(values, expected):
    assert pseudo_label(row(**values))[0] == expected


def test_peak_rule_uses_the_most_frequent_active_aus():
    # AU26, AU25 and AU01 are active in several frames and peak together at row 3; AU12 is active
    # once, strongly, at row 1, but it is not among the three most frequent.
    rows = np.array([row(AU26=1.5, AU01=1.1), row(AU12=5, AU26=1.2), row(AU26=2.0, AU25=1.1, AU01=1.2),
                     row(AU26=4.0, AU25=1.5, AU01=1.5), row(AU26=1.1, AU25=1.0), row(AU25=1.2)])
    index, used = peak_frame(rows)
    assert set(used) == {"AU26", "AU25", "AU01"} and index == 3


def test_peak_rule_without_active_aus_takes_the_largest_total():
    index, used = peak_frame(np.array([row(AU01=0.2), row(AU01=0.5, AU02=0.4), row()]))
    assert used == [] and index == 1


def test_au_measures_are_invariant_to_face_size_and_roll():
    rng = np.random.default_rng(0)
    points = rng.random((478, 3)) * 100 + 200
    points[[33, 133], :2] = [[150, 200], [180, 200]]
    points[[362, 263], :2] = [[220, 200], [250, 200]]
    base = au.measures(points)
    angle = np.radians(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = points.copy()
    moved[:, :2] = (points[:, :2] - 200) @ rotation.T * 2.5 + 640
    for code, value in au.measures(moved).items():
        assert value == pytest.approx(base[code], abs=1e-9), code


def test_intensities_are_zero_at_rest_and_grow_with_the_movement():
    rest_measures = [{code: 0.5 for code in au.AU_CODES} for _ in range(10)]
    rest = au.rest_values(rest_measures)
    opened = dict(rest_measures[0], AU26=0.5 + au.AU_SPECS["AU26"].full_range / 2)
    values = au.intensities(rest_measures[:1] + [opened], rest)
    column = au.AU_CODES.index("AU26")
    assert values[0, column] == 0 and values[1, column] == pytest.approx(2.5)
    big = dict(opened, AU26=5.0)
    assert au.intensities([big], rest)[0, column] == 5.0  # saturates
    assert au.intensities([big], rest, saturate=False)[0, column] > 5.0


def test_tracks_follow_the_same_face_and_pick_the_main_one():
    big = lambda dx: Face((100 + dx, 100, 300 + dx, 300), 0.9, (150, 150), (250, 150))
    small = lambda dx: Face((500 + dx, 50, 560 + dx, 110), 0.9, (520, 70), (540, 70))
    frames = [[big(0), small(0)], [small(3), big(5)], [big(10)], [], [big(12)]]
    tracks = build_tracks(frames)
    main = main_track(tracks)
    assert main.frames == [0, 1, 2]  # the gap at frame 3 ends the track
    assert len(tracks) == 3
    assert main_track([]) is None


def test_fusion_combines_face_au_and_voice():
    happy_face = {"angry": 0, "disgust": 0, "fear": 0, "happy": 0.9, "sad": 0, "surprise": 0, "neutral": 0.1}
    probs, basis = fuse(MER, happy_face, happy_face, "happy", arousal=0.0)
    assert MER[int(np.argmax(probs))] == "happy" and probs.sum() == pytest.approx(1)
    neutral_face = {k: (1.0 if k == "neutral" else 0.0) for k in happy_face}
    calm, _ = fuse(MER, neutral_face, neutral_face, "neutral", arousal=-1.0)
    excited, _ = fuse(MER, neutral_face, neutral_face, "neutral", arousal=1.0)
    assert calm[MER.index("neutral")] > excited[MER.index("neutral")]
    assert excited[MER.index("angry")] > calm[MER.index("angry")]
    voice_only, basis = fuse(MER, None, None, None, arousal=0.5)
    assert "no face" in basis and voice_only.max() < 0.3


def test_merr_record_validates():
    record = build_record(rule_aus=["AU26", "AU25"], peak_aus=["AU25", "AU26"], visual_texts=["lips parted"],
                          tone="calm voice", peak_index=50, pseudo_label="surprise", transcript="hello",
                          reason="because")
    assert validate_record(record) == []
    assert set(record) == {"AU_list", "visual_prior_list", "audio_prior_list", "peak_index", "peak_AU_list",
                           "pseu_emotion", "text", "smp_reason_caption"}
    broken = dict(record, peak_index="50", AU_list=["smile"], extra=1)
    problems = validate_record(broken)
    assert any("peak_index" in p for p in problems) and any("AU_list" in p for p in problems)
    assert any("unexpected field extra" in p for p in problems)


def test_streamed_reason_is_not_called_a_template_while_the_model_writes(monkeypatch):
    from types import SimpleNamespace

    from emo_core import Settings
    from emo_core.llm import reason_writer, small_lm
    from emo_core.tasks import video_emotion

    class FakeStream:  # what write_reason returns: the text so far, then the outcome
        result = SimpleNamespace(text="The brows are drawn together.", by_model=True, problem="")

        def __iter__(self):
            yield "The brows"
            yield "The brows are drawn together."

    monkeypatch.setattr(reason_writer, "write_reason", lambda *args, **kwargs: FakeStream())
    monkeypatch.setattr(small_lm, "get_small_lm", lambda settings: None)
    monkeypatch.setattr(video_emotion, "_cue_phrases", lambda *args: [])
    result = SimpleNamespace(label="angry", expression_text="", merr={"smp_reason_caption": "template text"},
                             reason="", reason_by_model=False, reason_note="template reason from the measured cues")
    notes = [r.reason_note for r in video_emotion._stream_offline_reason(result, None, None, Settings(preload=False))]
    assert len(notes) == 2 and all("language model" in note and "template" not in note for note in notes)
    assert result.reason_by_model and result.reason_note.startswith("written by")
