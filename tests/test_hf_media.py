"""What the real-model backends (hf, openai) are shown of a video: the frames and audio the offline
analysis reads (``video.decode``, ``audio.decode``): upright for portrait phone clips, timed by their
timestamps for variable-frame-rate clips, and within ``max_video_seconds``.

    .venv/bin/python -m pytest -q tests/test_hf_media.py
"""

from __future__ import annotations

import base64
import io
from contextlib import closing
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from emo_core import Settings
from emo_core.backends import hf_families, user_message
from emo_core.backends.hf import HFBackend
from emo_core.backends.openai_compat import to_openai_messages
from emo_core.video.decode import probe, read_frames, sample_evenly
from tests import media, media_av
from tests.conftest import CLIP_FPS as FPS
from tests.tiny_models import tiny_model_dir

FRAMES = hf_families.FRAMES_PER_VIDEO
PORTRAIT_CROP = (288, 360, 144, 0)  # (width, height, x, y) of the 640x360 jaw-drop clip: the face, upright
NUMBERED_FRAMES = 4 * FPS  # 4 s at 30 fps


def numbered_picture(number: int) -> np.ndarray:
    """A 160x120 frame whose colour spells ``number`` (0-119) in two digits of base 12, far apart
    enough to survive the codec's rounding: red 20 * (n % 12) + 10, green 22 * (n // 12) + 10."""
    colour = (20 * (number % 12) + 10, 22 * (number // 12) + 10, 128)
    return np.full((120, 160, 3), colour, dtype=np.uint8)


def number_of(image) -> int:
    """The number a decoded ``numbered_picture`` spells."""
    red, green, _ = np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    return 12 * int(round((green - 10) / 22)) + int(round((red - 10) / 20))


def shown_at(seconds: float, start_times: list[float]) -> int:
    """The frame on screen at ``seconds``: the last one whose start time is not after it."""
    return max(index for index, start in enumerate(start_times) if start <= seconds + 1e-6)


@pytest.fixture(scope="module")
def videos(clips, tmp_path_factory):
    """The jaw-drop clip (with speech) as a portrait phone clip; a 4 s 30 fps clip whose frame n spells n
    (with a 440 Hz tone); and that clip re-timed to a variable frame rate (frames 40-79 1/15 s apart)."""
    import soundfile

    folder = tmp_path_factory.mktemp("hf_media")
    rate = 44100
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(4 * rate) / rate)
    soundfile.write(str(folder / "tone.wav"), tone.astype(np.float32), rate)
    pictures = [numbered_picture(n) for n in range(NUMBERED_FRAMES)]
    numbered = media_av.mux_video(media.frame_function(pictures, FPS), folder / "tone.wav", folder / "numbered.mp4",
                                  FPS, duration=4.0)
    return {"portrait": media_av.portrait_phone_clip(clips["speech"], folder / "portrait.mp4", PORTRAIT_CROP),
            "numbered": numbered,
            "vfr": media_av.variable_rate_clip(numbered, folder / "vfr.mp4", fps=FPS)}


@pytest.fixture(scope="module")
def omni():
    """Qwen2.5-Omni (tiny, random), the model that is shown frames and hears the audio track."""
    return HFBackend(Settings(backend="hf", model=str(tiny_model_dir("qwen2_5_omni")), preload=False))


def shown_to_the_model(backend: HFBackend, video, monkeypatch) -> hf_families.PromptAndMedia:
    """What the hf backend hands the model's processor when it is asked about ``video``."""
    handed = []
    real = hf_families.processor_inputs
    monkeypatch.setattr(hf_families, "processor_inputs", lambda processor, prompt: handed.append(prompt)
                        or real(processor, prompt))
    assert backend.generate(user_message("What is the speaker feeling?", video=str(video)), max_new_tokens=2)
    (prompt,) = handed
    return prompt


def test_the_number_code_survives_the_encoder(videos):
    info = probe(videos["numbered"], max_seconds=60)
    with closing(read_frames(info)) as frames:
        assert [number_of(frame) for _, frame in frames] == list(range(NUMBERED_FRAMES))


@pytest.mark.parametrize("max_side", [960, 240], ids=["full_size", "downscaled"])
def test_a_portrait_clip_reaches_the_model_upright(videos, omni, monkeypatch, max_side):
    """Stored 360x288 (sideways) with a -90 degree display matrix: the model is shown 288x360 frames
    (or downscaled to ``video_max_side``), upright, the very frames the offline analysis reads there."""
    backend = HFBackend(replace(omni.settings, video_max_side=max_side))
    prompt = shown_to_the_model(backend, videos["portrait"], monkeypatch)
    width, height, x, y = PORTRAIT_CROP
    scale = min(1.0, max_side / max(width, height))
    size = (int(round(width * scale / 2) * 2), int(round(height * scale / 2) * 2))
    assert len(prompt.images) == FRAMES and all(image.size == size for image in prompt.images)
    assert len(prompt.audios) == 1  # the rotated file's audio track too

    # the frames at the middle of four 1 s slices: source frames 15, 45, 75, 105 (a neutral face)
    wanted = [int((slot + 0.5) * 4.0 / FRAMES * FPS) for slot in range(FRAMES)]
    source = media.expression_frames(n_frames=4 * FPS, peak=60)
    for image, index in zip(prompt.images, wanted):
        upright = np.asarray(Image.fromarray(source[index][y:y + height, x:x + width]).resize(size), dtype=np.int16)
        shown = np.asarray(image, dtype=np.int16)
        error = np.abs(shown - upright).mean()
        assert error < 8 and 5 * error < np.abs(shown[::-1, ::-1] - upright).mean()

    info = probe(videos["portrait"], max_seconds=60, max_side=max_side)  # the offline reader
    offline = dict(read_frames(info))
    for image, index in zip(prompt.images, wanted):
        assert np.array_equal(np.asarray(image), offline[index])


def test_a_portrait_clip_reaches_an_openai_endpoint_upright(videos):
    for max_side, size in ((960, (288, 360)), (240, (192, 240))):
        messages = to_openai_messages(user_message("Feeling?", video=str(videos["portrait"])),
                                      Settings(video_max_side=max_side))
        frames = [Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1])))
                  for part in messages[0]["content"] if part["type"] == "image_url"]
        assert len(frames) == FRAMES and all(frame.size == size for frame in frames)


@pytest.mark.parametrize("limit", [2.0, 1.0, 60.0])
def test_a_clip_over_the_duration_limit_is_sampled_within_it(videos, omni, monkeypatch, limit):
    """4 s clip, ``max_video_seconds`` 2 (1): the frames are those at the middle of four slices of the
    first 2 (1) s, and the audio is 2 (1) s long; under a 60 s limit, of the whole 4 s."""
    backend = HFBackend(replace(omni.settings, max_video_seconds=limit))
    prompt = shown_to_the_model(backend, videos["numbered"], monkeypatch)
    seen = min(limit, 4.0)
    expected = [int((slot + 0.5) * seen / FRAMES * FPS) for slot in range(FRAMES)]
    numbers = [number_of(image) for image in prompt.images]
    assert all(abs(number - want) <= 1 for number, want in zip(numbers, expected)), (numbers, expected)
    assert max(numbers) < seen * FPS
    (audio,) = prompt.audios
    assert abs(audio.size - seen * 16000) <= 0.025 * 16000  # within about one AAC frame of the limit
    assert 0.25 < float(np.abs(audio).max()) < 0.35  # the 0.3 tone, not near-silence


def test_a_variable_rate_clip_is_sampled_by_its_timestamps(videos, omni, monkeypatch):
    """Frames 40-79 are 1/15 s apart, the rest 1/30 s: 5.33 s. Each frame shown to the model is the one
    on screen at the middle of its slice (counting frames at the 22.5 fps average instead would show
    frames 42 and 57 for the middle slices, not 50 and 70)."""
    starts = [media_av.vfr_frame_time(n, FPS) for n in range(NUMBERED_FRAMES)]
    duration = media_av.vfr_frame_time(NUMBERED_FRAMES, FPS)
    middles = [(slot + 0.5) * duration / FRAMES for slot in range(FRAMES)]
    expected = [shown_at(t, starts) for t in middles]
    assert expected == [20, 50, 70, 100]

    prompt = shown_to_the_model(omni, videos["vfr"], monkeypatch)
    numbers = [number_of(image) for image in prompt.images]
    assert all(abs(number - want) <= 1 for number, want in zip(numbers, expected)), (numbers, expected)
    assert prompt.audios == []  # the re-timed clip has no audio track

    sampled = sample_evenly(probe(videos["vfr"], max_seconds=60), FRAMES)
    assert sampled.times == pytest.approx(middles, abs=1 / FPS)
    assert [number_of(frame) for frame in sampled.frames] == numbers


def test_even_sampling_of_a_clip_with_fewer_frames_than_asked(tmp_path):
    """Three frames, four slices asked: each frame once, in order."""
    pictures = [numbered_picture(n) for n in (10, 20, 30)]
    clip = media_av.mux_video(media.frame_function(pictures, 10), None, tmp_path / "three.mp4", 10, duration=0.3)
    sampled = sample_evenly(probe(clip, max_seconds=60), FRAMES)
    assert sampled.indices == [0, 1, 2] and [number_of(frame) for frame in sampled.frames] == [10, 20, 30]
