"""analyze_video end to end on generated clips: a real face whose jaw drops at a known frame, real
espeak-ng speech, and clips without audio, without a face, too long, or broken."""

import pytest

from emo_core import InvalidInputError, analyze_video
from emo_core.merr import validate_record
from tests.conftest import CLIP_FPS as FPS
from tests.conftest import CLIP_PEAK as PEAK


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
    assert any("peak frame" in note for note in result.notes) == (sees == "peak frame")
