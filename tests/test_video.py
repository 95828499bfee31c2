"""analyze_video end to end on generated clips: a real face whose jaw drops at a known frame, real
espeak-ng speech, and clips without audio, without a face, too long, broken, stored sideways with
rotation metadata (a portrait phone clip), or with a variable frame rate."""

from dataclasses import replace

import numpy as np
import pytest

from emo_core import InvalidInputError, analyze_video
from emo_core.merr import validate_record
from tests import media, media_av
from tests.conftest import CLIP_FPS as FPS
from tests.conftest import CLIP_PEAK as PEAK

PORTRAIT_CROP = (288, 360, 144, 0)  # (width, height, x, y) of the 640x360 clip: the face, upright
MOUTH = (slice(150, 260), slice(200, 380))  # rows, columns around the astronaut's mouth and chin (640x360)


def test_peak_frame_transcript_and_merr(clips, settings):
    result = analyze_video(clips["speech"], "mer2023", settings=settings)
    assert abs(result.peak_index - PEAK) <= 1
    assert result.peak_time == pytest.approx(result.peak_index / FPS, abs=1e-3)
    assert {"AU25", "AU26"} <= set(result.peak_aus)
    assert "championship" in result.transcript.lower()
    assert result.audio["has_speech"] and result.tone
    assert validate_record(result.merr) == []
    assert result.merr["peak_index"] == result.peak_index and result.merr["text"] == result.transcript
    assert result.merr["smp_reason_caption"] == result.reason
    provenance = result.merr["provenance"]
    assert provenance["reason_source"] == ("small_lm" if result.reason_by_model else "template")
    assert provenance["au_source"] == "landmark_proxies" and provenance["tone_source"] == "rules"
    assert result.merr["multimodal_description"] == result.description and result.tone in result.description
    assert (result.class_set, result.dataset) == ("mer2023", "MER2023")
    assert result.answer.startswith(f"Predicted emotion: {result.label}. Reason: ")
    assert sum(result.distribution.values()) == pytest.approx(1.0)
    assert set(result.distribution) == {"neutral", "angry", "happy", "sad", "worried", "surprise"}
    assert result.peak_frame.shape == (360, 640, 3) and result.peak_box is not None
    assert len(result.au_series["time"]) == len(result.au_series["AU26"]) >= 15
    assert result.timings["until_reason"] > 0


def test_clip_without_audio_says_so(clips, settings):
    result = analyze_video(clips["mute"], "dfew7", settings=settings, task="emotion")
    assert not result.audio["has_audio"] and "no audio track" in result.tone
    assert result.transcript == "" and result.label in result.distribution
    assert abs(result.peak_index - PEAK) <= 1
    assert result.answer == f"Predicted emotion: {result.label}."


def test_clip_without_face_uses_the_voice_only(clips, settings):
    result = analyze_video(clips["no_face"], "mer2023", settings=settings, task="emotion")
    assert result.peak_index is None and result.merr["peak_index"] == -1
    assert "no face" in result.basis and result.confidence < 0.35
    assert any("no face" in note for note in result.notes)
    assert "championship" in result.transcript.lower()
    assert validate_record(result.merr) == []


def test_duration_limit_analyses_the_first_seconds(clips, settings):
    from dataclasses import replace

    short = replace(settings, max_video_seconds=1.5)
    result = analyze_video(clips["speech"], "mer2023", settings=short, task="emotion")
    assert any("only the first" in note for note in result.notes)
    assert result.video["analysed_seconds"] == pytest.approx(1.5)
    assert max(result.au_series["time"]) < 1.5


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"this is not a video at all", "not a video"),
                                               (None, "not a video")])
def test_bad_files_raise_typed_errors(tmp_path, clips, settings, content, message):
    path = tmp_path / "bad.mp4"
    if content is None:  # a truncated real video: the first kilobytes only
        path.write_bytes(clips["speech"].read_bytes()[:2000])
    else:
        path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message):
        analyze_video(path, settings=settings, task="emotion")


def test_streamed_recording_without_a_duration_is_read(clips, settings, tmp_path, monkeypatch):
    """A webcam recording from the browser declares no duration; the frame count needs one, so it is
    remuxed into a temporary file first (and that file is removed afterwards)."""
    import tempfile

    from emo_core.ffmpeg_input import read_header

    recording = media_av.streamed_recording(clips["speech"], tmp_path / "sample.webm")
    assert "Duration: N/A" in read_header(recording, "a video")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the remuxed copy goes: watched below
    result = analyze_video(recording, "mer2023", settings=settings)
    assert any("streamed recording" in note for note in result.notes)
    assert abs(result.peak_index - PEAK) <= 1 and {"AU25", "AU26"} <= set(result.peak_aus)
    assert "championship" in result.transcript.lower()
    assert validate_record(result.merr) == []
    assert not list(scratch.iterdir()), "the remuxed copy was left behind"


@pytest.mark.parametrize("family, sees", [("qwen2_5_omni", "video"), ("instructblip", "peak frame")])
def test_real_model_backends_answer_the_emotion_llama_prompt(clips, family, sees):
    from emo_core import Settings
    from emo_core.backends import get_backend
    from tests.tiny_models import tiny_model_dir

    settings = Settings(backend="hf", model=str(tiny_model_dir(family)), preload=False)
    result = analyze_video(clips["speech"], "mer2023", backend=get_backend("hf", settings), settings=settings)
    # the cues are measured whatever the backend; the label and reason come from the (random) model
    assert abs(result.peak_index - PEAK) <= 1 and "championship" in result.transcript.lower()
    assert result.reason_by_model and result.reason_note.startswith("written by")
    assert sum(result.distribution.values()) == pytest.approx(1.0)  # hf models score every label
    assert result.label in result.distribution and result.basis.startswith("model likelihood")
    assert validate_record(result.merr) == [] and result.merr["smp_reason_caption"] == result.reason
    assert result.merr["provenance"]["reason_source"] == "model"
    assert result.merr["provenance"]["reason_model"] == result.backend
    assert any("peak frame" in note for note in result.notes) == (sees == "peak frame")


def test_the_emotion_task_of_a_real_model_generates_no_reason(clips, monkeypatch):
    from emo_core import Settings, analyze_video_stream
    from emo_core.backends import get_backend
    from tests.tiny_models import tiny_model_dir

    settings = Settings(backend="hf", model=str(tiny_model_dir("instructblip")), preload=False)
    backend = get_backend("hf", settings)
    generated = []
    generate_stream = backend.generate_stream
    monkeypatch.setattr(backend, "generate_stream",
                        lambda messages, **options: generated.append(options) or generate_stream(messages, **options))
    result = analyze_video(clips["mute"], "mer2023", backend=backend, settings=settings, task="emotion")
    assert generated == []  # the label is scored; no reason is written only to be thrown away
    assert result.label == max(result.distribution, key=result.distribution.get)
    assert result.reason == "" and not result.reason_by_model and result.answer == f"Predicted emotion: {result.label}."

    # the [reason] task: one generation, continuing the answer that names the scored label, streamed
    updates = [(update.label, update.reason) for update in analyze_video_stream(clips["mute"], "mer2023", backend=backend,
                                                                                settings=settings, task="reason")]
    (options,) = generated
    assert options["answer_prefix"] == f"Predicted emotion: {result.label}. Reason:"
    assert {label for label, _ in updates} == {result.label} and len({reason for _, reason in updates}) > 2


@pytest.fixture(scope="module")
def phone_clips(clips, tmp_path_factory):
    """The jaw-drop clip as a portrait phone clip (stored sideways + rotation metadata, with the speech)
    and as a variable-frame-rate clip (frames 40-79 at 15 fps, the rest at 30; no audio)."""
    folder = tmp_path_factory.mktemp("phone_clips")
    return {"portrait": media_av.portrait_phone_clip(clips["speech"], folder / "portrait.mp4", PORTRAIT_CROP),
            "vfr": media_av.variable_rate_clip(clips["mute"], folder / "vfr.mp4", fps=FPS)}


@pytest.fixture(scope="module")
def source_frames():
    """The frames the clips were made of (frame n is shown at n / FPS in the constant-rate clips)."""
    return media.expression_frames(n_frames=4 * FPS, peak=PEAK)


def _nearest_source_frame(frame: np.ndarray, frames: list[np.ndarray]) -> int:
    """The index of the source frame closest to a decoded 640x360 frame around the mouth."""
    errors = [np.abs(frame[MOUTH].astype(np.int16) - source[MOUTH]).mean() for source in frames]
    return int(np.argmin(errors))


@pytest.mark.parametrize("max_side", [960, 240], ids=["full_size", "downscaled"])
def test_portrait_phone_clip_is_read_upright(phone_clips, source_frames, settings, max_side):
    """Stored 360x288 (sideways) with a -90 degree display matrix: frames must come out 288x360 (or
    downscaled to fit ``max_side``, as real 1080x1920 phone clips are), upright, and the face found."""
    from PIL import Image

    result = analyze_video(phone_clips["portrait"], "mer2023", settings=replace(settings, video_max_side=max_side),
                           task="emotion")
    width, height, x, y = PORTRAIT_CROP
    scale = min(1.0, max_side / max(width, height))
    size = [int(round(width * scale / 2) * 2), int(round(height * scale / 2) * 2)]
    assert result.video["size"] == size and size[1] > size[0]  # portrait, not the stored landscape
    assert any("rotated upright from its 90 degree rotation metadata" in note for note in result.notes)
    assert result.peak_index is not None and result.peak_box is not None and "no face" not in result.basis
    assert abs(result.peak_index - PEAK) <= 1
    assert result.peak_time == pytest.approx(result.peak_index / FPS, abs=1e-3)
    assert {"AU25", "AU26"} <= set(result.peak_aus)
    # upright, not turned or mirrored: the decoded peak frame matches the crop of the source frame
    assert result.peak_frame.shape == (size[1], size[0], 3)
    upright = np.asarray(Image.fromarray(source_frames[result.peak_index][y:y + height, x:x + width]).resize(size))
    error = lambda frame: np.abs(frame.astype(np.int16) - upright).mean()  # noqa: E731
    assert error(result.peak_frame) < 8 and 5 * error(result.peak_frame) < error(result.peak_frame[::-1, ::-1])
    left, top, right, bottom = result.peak_box  # the face sits in the upper middle of the upright picture
    assert 0.2 * size[0] < (left + right) / 2 < 0.8 * size[0] and (top + bottom) / 2 < 0.6 * size[1]
    assert "championship" in result.transcript.lower()  # the audio of the rotated file is read too


def test_variable_frame_rate_clip_is_timed_by_its_timestamps(phone_clips, source_frames, settings):
    """Frames 40-79 are 1/15 s apart, the others 1/30 s: ffmpeg reports 22.5 fps on average and 30 tbr,
    and hands moviepy a constant 30 fps stream (frames repeated in the slow part). The peak (source
    frame 60) is shown from 2.667 s for 1/15 s, so ``peak_time`` must land within 1/15 s of that
    (counting frames at the 22.5 fps average instead puts it at 3.56 s, and seeks elsewhere)."""
    true_time = media_av.vfr_frame_time(PEAK, FPS)
    result = analyze_video(phone_clips["vfr"], "mer2023", settings=settings, task="emotion")
    assert result.peak_index is not None and "no face" not in result.basis
    assert result.video["fps"] == pytest.approx(FPS) and result.video["duration"] == pytest.approx(16 / 3, abs=0.02)
    assert abs(result.peak_time - true_time) <= 1 / media_av.SLOW_FPS + 1e-3
    assert result.peak_time == pytest.approx(result.peak_index / FPS, abs=1e-3)
    # the peak frame (decoded by seeking) is the jaw-drop frame, as in the sequential read
    assert abs(_nearest_source_frame(result.peak_frame, source_frames) - PEAK) <= 1
    assert {"AU25", "AU26"} <= set(result.peak_aus)
    assert any("variable frame rate" in note and "22.5 fps" in note for note in result.notes)
    assert max(result.au_series["time"]) > 5.0  # the whole 5.33 s were analysed


def test_constant_rate_landscape_clip_is_downscaled_keeping_its_shape(clips):
    from emo_core.video.decode import frames_between, probe

    info = probe(clips["mute"], max_seconds=60, max_side=320)
    assert info.size == (320, 180) and info.fps == FPS and info.frame_count == 4 * FPS
    assert info.notes == []  # not rotated, not variable-rate
    assert frames_between(info, PEAK, PEAK).frames[0].shape == (180, 320, 3)


BLINKS = (18, 36, 60, 96)  # blink centres: on sampled frames (every 6th at 5 fps), one on the jaw-drop peak
CLOSED = {centre + offset for centre in BLINKS for offset in (-1, 0, 1)}  # media.BLINK_LEVELS at 1.0


@pytest.fixture(scope="module")
def blink_clip(tmp_path_factory):
    """The jaw-drop clip (peak at frame 60) with four blinks, no audio."""
    frames = media.expression_frames(n_frames=4 * FPS, peak=PEAK, blinks=BLINKS)
    path = tmp_path_factory.mktemp("blinks") / "blinks.mp4"
    return media_av.mux_video(media.frame_function(frames, FPS), None, path, FPS, duration=4.0)


def test_a_blink_is_not_a_lid_tightener_and_never_the_peak(blink_clip, settings):
    result = analyze_video(blink_clip, "mer2023", settings=settings, task="emotion")
    series = result.au_series
    at = {round(t * FPS): position for position, t in enumerate(series["time"])}
    assert set(BLINKS) <= set(at), "the blinks were not sampled"
    for frame in BLINKS:
        position = at[frame]
        assert series["AU45"][position] >= 1.0, (frame, "the blink was not seen")
        assert series["AU05"][position] == series["AU06"][position] == series["AU07"][position] == 0, frame
    open_frames = [p for f, p in at.items() if f not in CLOSED]
    assert max(series["AU45"][p] for p in open_frames) == 0
    assert max(series["AU07"][p] for p in open_frames) < 1.0
    # the peak: beside the blink that hides the jaw-drop peak, on open eyes, jaw dropped
    assert result.peak_index not in CLOSED and abs(result.peak_index - PEAK) <= 6
    assert "AU26" in result.peak_aus and not {"AU45", "AU07"} & set(result.peak_aus)
    assert not {"AU45", "AU07"} & set(result.rule_aus)
    assert "AU15" not in result.peak_aus  # the open jaw does not pull the lip corners down
    assert result.merr["pseu_emotion"] != "angry"


@pytest.mark.parametrize("hidden, missed, one_track", [((12, 18), 1, True), ((12, 24), 2, True),
                                                       ((12, 36), 4, False)])
def test_the_face_track_bridges_one_or_two_missed_detections(tmp_path, settings, hidden, missed, one_track):
    """The face is hidden (an empty dark frame) over frames [hidden): the detector misses it on
    ``missed`` sampled frames. One track still covers the whole clip after one or two misses; after
    four the face that comes back is a new track, and the longer piece (after the gap) is analysed."""
    frames = media.expression_frames(n_frames=4 * FPS, peak=PEAK)
    empty = np.full_like(frames[0], (30, 30, 40))
    frames = [empty if hidden[0] <= index < hidden[1] else frame for index, frame in enumerate(frames)]
    clip = media_av.mux_video(media.frame_function(frames, FPS), None, tmp_path / "hidden.mp4", FPS, duration=4.0)
    result = analyze_video(clip, "mer2023", settings=settings, task="emotion")
    assert result.video["faces_per_sampled_frame"].count(0) == missed
    times = result.au_series["time"]
    if one_track:
        assert times[0] == 0.0 and times[-1] > 3.5
        assert len(times) == len(result.video["faces_per_sampled_frame"]) - missed
    else:
        assert times[0] == pytest.approx(hidden[1] / FPS) and times[-1] > 3.5
    assert abs(result.peak_index - PEAK) <= 1


def test_sampled_frames_stream_out_of_one_pass_and_a_seeked_window_holds_the_same_frames(clips):
    """Sampling keeps every 6th frame of one ffmpeg pass, each in its own array; a window more than
    100 frames in is read by seeking (as the peak refinement does) and holds the very frames the pass
    decoded."""
    from contextlib import closing

    from emo_core.video.decode import frames_between, probe, read_frames

    info = probe(clips["mute"], max_seconds=60, max_side=640)
    with closing(read_frames(info, step=6)) as frames:
        sampled = dict(frames)
    assert list(sampled) == list(range(0, 4 * FPS, 6))
    assert all(frame.shape == (360, 640, 3) for frame in sampled.values())
    assert not np.shares_memory(sampled[0], sampled[6])
    window = frames_between(info, 102, 114)
    assert window.indices == list(range(102, 115)) and window.times[0] == pytest.approx(102 / FPS)
    for index in (102, 108, 114):
        assert np.array_equal(window.frames[window.indices.index(index)], sampled[index])


def test_a_truncated_clip_is_read_up_to_where_it_ends_and_says_so(clips, tmp_path):
    """Matroska declares the duration up front: cut in half, the file still opens, and the frames stop
    early instead of the last one being repeated to the declared end."""
    import subprocess
    from contextlib import closing

    from emo_core.ffmpeg_input import ffmpeg_binary
    from emo_core.video.decode import probe, read_frames

    whole = tmp_path / "whole.mkv"
    subprocess.run([ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-i", str(clips["mute"]), "-c", "copy",
                    str(whole)], check=True, timeout=60)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    info = probe(cut, max_seconds=60)
    assert info.frame_count == 4 * FPS
    with closing(read_frames(info, step=6)) as frames:
        indices = [index for index, _ in frames]
    assert indices and indices[-1] < info.frame_count - 6 - 1
    assert any(note.startswith("decoding stopped early at") for note in info.notes)


BIG, SMALL = 340, 220  # sides of the two face tiles (faces of about 120 and 75 px)


def two_face_frames(big_left: bool, big_peak: int, small_peak: int) -> tuple[list[np.ndarray], tuple[int, int]]:
    """4 s of two astronaut faces side by side on a 640x360 frame, a large one and a small one, each
    dropping its jaw at its own frame; and the (left, right) columns of the large face's tile."""
    from PIL import Image

    def tile(frame: np.ndarray, side: int) -> Image.Image:
        return Image.fromarray(frame).crop((140, 0, 500, 360)).resize((side, side))  # face_frame's face

    big_x, small_x = (10, 410) if big_left else (290, 10)
    frames = []
    for big, small in zip(media.expression_frames(4 * FPS, peak=big_peak),
                          media.expression_frames(4 * FPS, peak=small_peak)):
        canvas = Image.new("RGB", (640, 360), (30, 30, 40))
        canvas.paste(tile(big, BIG), (big_x, 10))
        canvas.paste(tile(small, SMALL), (small_x, 70))
        frames.append(np.asarray(canvas))
    return frames, (big_x, big_x + BIG)


@pytest.mark.parametrize("big_left, big_peak, small_peak", [(True, 80, 30), (False, 30, 80)],
                         ids=["large_face_left", "large_face_right"])
def test_of_two_faces_the_main_speakers_is_analysed(tmp_path, settings, big_left, big_peak, small_peak):
    """Two faces in every frame, both present throughout: the main speaker is the face with the largest
    summed area over the sampled frames (``video.tracking.main_track``: the face both biggest and longest
    present, not the one that moves its mouth most). Each face drops its jaw at its own frame; the peak
    must be the large face's, on the large face, whichever side it is on."""
    frames, (left_edge, right_edge) = two_face_frames(big_left, big_peak, small_peak)
    clip = media_av.mux_video(media.frame_function(frames, FPS), None, tmp_path / "two.mp4", FPS, duration=4.0)
    result = analyze_video(clip, "mer2023", settings=settings, task="emotion")
    counts = result.video["faces_per_sampled_frame"]
    assert len(counts) == 20 and counts.count(2) >= 18 and max(counts) == 2
    assert any("up to 2 faces per frame" in note and "main speaker" in note for note in result.notes)
    assert abs(result.peak_index - big_peak) <= 1, "the peak is not the large face's jaw drop"
    assert {"AU25", "AU26"} <= set(result.peak_aus)
    left, top, right, bottom = result.peak_box
    assert left_edge <= left < right <= right_edge and right - left > 0.33 * BIG  # the large face's box
    error = np.abs(result.peak_frame.astype(np.int16) - frames[result.peak_index]).mean()
    assert error < 8  # the peak frame is the clip's frame at peak_index
    assert len(result.au_series["time"]) >= 18  # one track: the large face's, over the whole clip
    assert validate_record(result.merr) == [] and result.merr["peak_index"] == result.peak_index
