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
    frames = [[big(0), small(0)], [small(3), big(5)], [big(10)], [], [big(12)], [], [], [], [big(14)]]
    tracks = build_tracks(frames)
    main = main_track(tracks)
    assert main.frames == [0, 1, 2, 4]  # one missed frame (3) is bridged, three (5-7) end the track
    assert [t.frames for t in tracks] == [[0, 1, 2, 4], [0, 1], [8]]
    assert main_track([]) is None


@pytest.mark.parametrize("missed, pieces", [(0, 1), (1, 1), (2, 1), (3, 2), (6, 2)])
def test_a_track_survives_one_or_two_missed_detections_but_not_more(missed, pieces):
    face = lambda dx: Face((100 + dx, 100, 300 + dx, 300), 0.9, (150, 150), (250, 150))
    frames = [[face(0)], [face(4)], *([[]] * missed), [face(8)], [face(12)]]
    tracks = build_tracks(frames)
    assert len(tracks) == pieces
    assert sum(len(t.frames) for t in tracks) == 4
    if pieces == 1:
        assert tracks[0].frames == [0, 1, 2 + missed, 3 + missed]


def test_a_gap_is_not_bridged_to_a_face_elsewhere():
    left = Face((0, 0, 100, 100), 0.9, (30, 30), (70, 30))
    right = Face((400, 0, 500, 100), 0.9, (430, 30), (470, 30))
    tracks = build_tracks([[left], [], [right], [left]])
    assert sorted(t.frames for t in tracks) == [[0, 3], [2]]


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


def _record(**changes):
    record = build_record(rule_aus=["AU26", "AU25"], peak_aus=["AU25", "AU26"], visual_texts=["lips parted"],
                          tone="calm voice", peak_index=50, pseudo_label="surprise", transcript="hello",
                          reason="because", description="The person's face shows lips parted.",
                          reason_source="template", class_set="mer2023", dataset="MER2023")
    record.update(changes)
    return record


def test_merr_record_validates():
    record = _record()
    assert validate_record(record) == []
    assert set(record) == {"AU_list", "visual_prior_list", "audio_prior_list", "peak_index", "peak_AU_list",
                           "pseu_emotion", "text", "smp_reason_caption", "multimodal_description", "provenance"}
    broken = dict(record, peak_index="50", AU_list=["smile"], extra=1)
    problems = validate_record(broken)
    assert any("peak_index" in p for p in problems) and any("AU_list" in p for p in problems)
    assert any("unexpected field extra" in p for p in problems)
    assert any("peak_index" in p for p in validate_record(dict(record, peak_index=True)))
    assert validate_record(["not", "a", "record"]) != []


def test_merr_record_says_how_it_was_made():
    record = _record()
    assert record["provenance"]["au_source"] == "landmark_proxies"  # not OpenFace
    assert record["provenance"]["tone_source"] == "rules"
    assert record["provenance"]["reason_source"] == "template"
    assert (record["provenance"]["class_set"], record["provenance"]["dataset"]) == ("mer2023", "MER2023")
    assert "not taken from the public MERR" in record["provenance"]["note"]
    assert record["multimodal_description"].startswith("The person's face")

    from emo_core.merr import set_reason

    set_reason(record, "Written by the model.", "small_lm", "Gemma 3 270M")
    assert record["smp_reason_caption"] == "Written by the model."
    assert (record["provenance"]["reason_source"], record["provenance"]["reason_model"]) == ("small_lm", "Gemma 3 270M")
    assert validate_record(record) == []
    with pytest.raises(ValueError):
        set_reason(record, "x", "gpt")


@pytest.mark.parametrize("changes, problem", [
    ({"provenance": None}, "provenance should be dict"),
    ({"multimodal_description": None}, "multimodal_description should be str"),
    ({"smp_reason_caption": ""}, "'template' but smp_reason_caption is empty"),
    ({"smp_reason_caption": "a reason", "provenance": {"reason_source": "none"}}, "au_source"),
])
def test_merr_records_without_honest_provenance_are_invalid(changes, problem):
    record = _record()
    if isinstance(changes.get("provenance"), dict):
        changes = dict(changes, provenance=dict(record["provenance"], au_source="openface", **changes["provenance"]))
    assert any(problem in p for p in validate_record(dict(record, **changes))), validate_record(dict(record, **changes))
    missing = {k: v for k, v in record.items() if k != "provenance"}
    assert "missing field provenance" in validate_record(missing)


# --- action units on a face drawn by hand --------------------------------------------------------
# A frontal face in pixels, eyes 100 px apart (so 1 px is 0.01 inter-ocular units), built here from
# the FaceMesh indices named in the AU table, not from the code under test. Eye opening 18 px over an
# eye width of 50 px; the lips just touch (gap 1 px); every other landmark sits on the nose.
NEUTRAL = {
    33: (175, 200), 133: (225, 200), 362: (275, 200), 263: (325, 200),  # eye corners
    468: (200, 200), 473: (300, 200),  # iris centres
    159: (200, 191), 386: (300, 191), 145: (200, 209), 374: (300, 209),  # upper and lower lids
    107: (215, 170), 336: (285, 170), 105: (195, 165), 334: (305, 165), 70: (172, 172), 300: (328, 172),  # brows
    50: (180, 245), 280: (320, 245),  # cheek apex
    129: (235, 255), 358: (265, 255), 1: (250, 260), 2: (250, 275),  # nose
    61: (215, 310), 291: (285, 310), 0: (250, 300), 13: (250, 310), 14: (250, 311), 17: (250, 322),  # lips
    152: (250, 370),  # chin
}


def face(moves: dict | None = None) -> np.ndarray:
    """478 landmarks of the neutral face with ``moves`` {index: (dx, dy)} applied (pixels)."""
    points = np.tile(np.array([250.0, 260.0, 0.0]), (478, 1))
    for index, (x, y) in NEUTRAL.items():
        points[index, :2] = (x, y)
    for index, (dx, dy) in (moves or {}).items():
        points[index, :2] += (dx, dy)
    return points


def both(dy: float, right: int, left: int, dx: float = 0.0) -> dict:
    """The same vertical move on both sides (``dx`` outwards: negative x on the subject's right)."""
    return {right: (-dx, dy), left: (dx, dy)}


BLINK = both(17, 159, 386)  # upper lids down to 1 px above the lower lids
# FaceMesh on a closed eye also lifts the lower lids and cheek points a little (seen on real output)
BLINK_AS_FACEMESH_SEES_IT = {**BLINK, **both(15, 159, 386), **both(-2, 145, 374), **both(-3, 50, 280)}
TIGHTENED_LIDS = both(-5, 145, 374)  # lower lids 5 px up, cheeks unchanged
CHEEK_RAISE = {**both(-5, 50, 280), **both(-5, 145, 374)}  # the cheek lifts the lower lid with it
WIDE_EYES = both(-4, 159, 386)  # upper lids 4 px up, the iris stays
SMILE = both(-5, 61, 291, dx=5)  # corners 5 px up and 5 px out
CORNERS_DOWN = both(4, 61, 291)
JAW_DROP = {14: (0, 20), 17: (0, 20), 152: (0, 20), **both(3, 61, 291)}  # corners follow the lower lip a little
BROWS_UP = {**both(-10, 107, 336), **both(-10, 105, 334), **both(-10, 70, 300)}


def au_values(moves: dict) -> dict[str, float]:
    """Intensities of the moved face against the rest of a track of ten neutral frames."""
    track = [au.measures(face())] * 10 + [au.measures(face(moves))]
    rest = au.rest_values(track)
    return dict(zip(au.AU_CODES, au.intensities(track, rest)[-1]))


def test_the_drawn_face_is_neutral():
    values = au_values({})
    assert all(value == 0 for value in values.values()), values


@pytest.mark.parametrize("moves, expected", [
    # AU05 = 5 * raise / 0.06 IOD; AU07 = 5 * lower-lid raise / 0.08; AU06 = 5 * cheek raise / 0.05;
    # AU12 = 5 * corner rise above the upper lip / 0.10; AU15 = 5 * corner fall below the lip centre / 0.06;
    # AU26 = 5 * chin drop / 0.25; AU45 = 5 * (closure - 0.5) / 0.3, closure = 1 - opening / 18 px.
    (WIDE_EYES, {"AU05": 5 * 0.04 / 0.06}),
    (TIGHTENED_LIDS, {"AU07": 5 * 0.05 / 0.08}),
    (CHEEK_RAISE, {"AU06": 5.0}),  # the lower lid rose with the cheek: not AU07
    (SMILE, {"AU12": 5 * 0.05 / 0.10, "AU20": 5 * 0.10 / 0.15 * (1 - 2.5 / 5)}),
    (CORNERS_DOWN, {"AU15": 5 * 0.04 / 0.06}),
    (JAW_DROP, {"AU26": 5 * 0.20 / 0.25, "AU25": 5.0, "AU17": 0.0}),  # no AU15 from the opening mouth
    (BROWS_UP, {"AU01": 5 * 0.10 / 0.12, "AU02": 5 * 0.10 / 0.12, "AU04": 0.0}),  # the lids did not move: no AU05
    (BLINK, {"AU45": 5.0}),
    (BLINK_AS_FACEMESH_SEES_IT, {"AU45": 5.0}),
    (both(6, 159, 386), {}),  # a third closed: a narrower eye, not yet a blink
])
def test_each_movement_raises_its_own_action_unit_only(moves, expected):
    values = au_values(moves)
    for code, value in values.items():
        assert value == pytest.approx(expected.get(code, 0.0), abs=1e-6), (code, value)


def test_a_blink_is_not_a_lid_tightener_or_an_eye_widener():
    for blink in (BLINK, BLINK_AS_FACEMESH_SEES_IT):
        values = au_values(blink)
        assert values["AU45"] >= au.ACTIVE_THRESHOLD
        assert values["AU05"] == values["AU06"] == values["AU07"] == 0
        assert pseudo_label(np.array([values[code] for code in au.AU_CODES]))[0] == "neutral"
    # a frown during a blink is a frown, not anger (AU04 + AU07)
    frown = {**BLINK_AS_FACEMESH_SEES_IT, **both(8, 105, 334), 107: (6, 6), 336: (-6, 6)}
    values = au_values(frown)
    assert values["AU04"] >= au.ACTIVE_THRESHOLD and values["AU07"] == 0
    assert pseudo_label(np.array([values[code] for code in au.AU_CODES]))[0] != "angry"


def test_no_two_action_units_share_a_measure():
    rng = np.random.default_rng(1)
    samples = [au.measures(face({i: tuple(rng.normal(0, 3, 2)) for i in NEUTRAL})) for _ in range(30)]
    series = np.array([[sample[code] for code in au.AU_CODES] for sample in samples])
    correlation = np.corrcoef(series.T)
    for a in range(len(au.AU_CODES)):
        for b in range(a + 1, len(au.AU_CODES)):
            assert abs(correlation[a, b]) < 0.95, (au.AU_CODES[a], au.AU_CODES[b])


def test_eye_rest_ignores_blinks_and_a_shut_eyed_track_has_no_blinks():
    track = [au.measures(face())] * 6 + [au.measures(face(BLINK))] * 4  # blinking in 40% of frames
    rest = au.rest_values(track)
    assert rest["AU05"] == pytest.approx(au.measures(face())["AU05"])
    assert rest["AU45"] == pytest.approx(18 / 50)
    wide = au.intensities([au.measures(face(WIDE_EYES))], rest)[0]
    assert wide[au.AU_CODES.index("AU05")] == pytest.approx(5 * 0.04 / 0.06)
    shut = au.rest_values([au.measures(face(BLINK))] * 10)
    assert shut["AU45"] == au.OPEN_EYE_FLOOR  # the floor, not the shut eye's gap


def test_the_peak_rule_never_picks_a_blink():
    closing = dict(AU45=4.0)
    rows = np.array([row(AU25=1.2, AU26=1.5), row(AU25=1.5, AU26=2.5), row(AU25=2.0, AU26=4.0, **closing),
                     row(AU25=1.4, AU26=2.0), row(**closing), row(**closing), row(**closing), row(**closing)])
    index, used = peak_frame(rows)
    assert index == 1 and "AU45" not in used  # AU45 is the most frequent AU, and row 2 has the largest sum
    assert set(used) == {"AU25", "AU26"}
    from emo_core.video.au_rules import peak_score

    assert peak_score(rows[2], used) == float("-inf") and peak_score(rows[1], used) == pytest.approx(4.0)
    all_blinks = np.array([row(AU45=2.0, AU26=1.0), row(AU45=2.0, AU26=3.0)])
    assert peak_frame(all_blinks)[0] == 1  # every frame blinks: the rule still answers


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
