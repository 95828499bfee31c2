"""The video tab answering with a tiny Emotion-LLaMA checkpoint through the ``hf`` backend
(``EMO_BACKEND=hf EMO_MODEL=<checkpoint>``): the label distribution by ``score`` over the class set, the
reason by streamed ``generate``, the same outputs and MERR record as with the other backends.

    .venv/bin/python -m pytest -q tests/test_emotion_llama_video.py
"""

from __future__ import annotations

import gradio as gr
import pytest

from emo_core import Settings, analyze_video, analyze_video_stream
from emo_core.backends import get_backend
from emo_core.merr import validate_record
from finetune.emotion_llama import main as emotion_llama_main
from tests.emotion_llama_fixtures import write_clips


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("el_video")
    clips = write_clips(root / "clips")
    assert emotion_llama_main(["init", "--tiny", str(root / "tiny")]) == 0
    settings = Settings(backend="hf", model=str(root / "tiny"), preload=False)
    return clips, settings


def test_the_video_tab_handler_answers_with_the_checkpoint(setup):
    from ui import video_tab

    clips, settings = setup
    outputs = list(video_tab.analyze(str(clips["talk.mp4"]), "mer2023", "reason", settings, gr.File()))
    answer, peak, _au, _voice, transcript, merr, merr_file = outputs[-1]
    assert "*Backend:* hf\\: tiny." in answer and "*Based on:* model likelihood" in answer
    assert len(outputs) > 3  # the first answer, the reason streaming in, the final one
    assert peak is not None and transcript.lower().startswith("we")  # Whisper hears espeak's "we won today"
    assert validate_record(merr) == [] and merr["provenance"]["reason_source"] == "model"
    assert merr_file


def test_the_label_is_scored_over_the_class_set_and_the_reason_streams(setup):
    clips, settings = setup
    backend = get_backend("hf", settings)
    assert backend.supports("video") and backend.supports("score")
    labels = ["neutral", "angry", "happy", "sad", "worried", "surprise"]
    updates = [(r.label, r.reason) for r in analyze_video_stream(clips["talk.mp4"], "mer2023", backend=backend,
                                                                 settings=settings)]
    result = analyze_video(clips["talk.mp4"], "mer2023", backend=backend, settings=settings)
    assert sorted(result.distribution) == sorted(labels)
    assert sum(result.distribution.values()) == pytest.approx(1.0)
    assert result.label == max(result.distribution, key=result.distribution.get)
    assert result.basis.startswith("model likelihood") and result.reason_by_model
    assert len({reason for _, reason in updates if reason}) > 2  # streamed piece by piece
    assert result.merr["smp_reason_caption"] == result.reason

    # the clip reaches the model: another clip (another face sequence, peak frame and no sound) scores differently
    other = analyze_video(clips["quiet.mp4"], "mer2023", backend=backend, settings=settings, task="emotion")
    assert other.distribution != pytest.approx(result.distribution, abs=1e-6)


def test_the_model_reuses_the_video_tasks_analysis_of_the_clip(setup, tmp_path, monkeypatch):
    """One MERR visual pass per request: the model's views take the analysis the task just made; a
    changed file is analysed again."""
    import shutil

    from emo_core.models.emotion_llama import clip_views as views_module
    from emo_core.tasks import video_emotion
    from emo_core.video import visual

    clips, settings = setup
    clip = tmp_path / "copy.mp4"  # a file no earlier test has seen (clip_views keeps its own results too)
    shutil.copy(clips["talk.mp4"], clip)
    calls = []
    original = visual.analyze_visual

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(video_emotion, "analyze_visual", counting)
    monkeypatch.setattr(visual, "analyze_visual", counting)
    backend = get_backend("hf", settings)
    analyze_video(clip, "mer2023", backend=backend, settings=settings, task="emotion")
    assert len(calls) == 1
    views_module._KEPT.clear()
    clip.write_bytes(clips["quiet.mp4"].read_bytes())  # same path, other content: not answered from memory
    analyze_video(clip, "mer2023", backend=backend, settings=settings, task="emotion")
    assert len(calls) == 2
