"""The audio pipeline (emo_core.audio) on real espeak-ng speech, muxed videos and broken files.

    .venv/bin/python -m pytest -q tests/test_audio.py

Fixtures are generated once per session (tests/media_av.py); the real models run: silero-vad (ONNX)
and Whisper tiny.en (faster-whisper, bundled weights). Needs Debian's espeak-ng.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

from emo_core.audio import (AudioTrack, Prosody, SpeechDetector, Transcriber, analyze_audio, arousal_cue,
                            describe_tone, get_speech_detector, load_audio, measure_prosody, probe_media)
from emo_core.audio.analysis import NO_AUDIO_TRACK, SILENT_TRACK
from emo_core.audio.prosody import frame_levels_db, pauses, yin_pitch
from emo_core.audio.vad import segments_from_probabilities
from emo_core.errors import InputTooLargeError, InvalidInputError
from tests import media_av

SENTENCE = "Good morning everyone. I am really happy to see you all here today. Thank you for coming to the show."
SPOKEN_WORDS = ("morning", "happy", "today", "thank")
PAD_S = 1.5  # silence before and after the speech in the padded fixtures

@pytest.fixture(scope="session")
def av(tmp_path_factory) -> dict[str, Path]:
    if not media_av.espeak_available():
        pytest.fail("espeak-ng is missing: install the Debian package (scripts/setup.sh --test should)")
    folder = tmp_path_factory.mktemp("av")
    files = {
        # espeak-ng: pitch 15 is a deep voice (~75 Hz), 85 a high one; speed in words per minute.
        "low": media_av.speech_wav(SENTENCE, folder / "low.wav", pitch=15, speed=120),
        "high": media_av.speech_wav(SENTENCE, folder / "high.wav", pitch=85, speed=210),
        "silent": media_av.silence_wav(folder / "silent.wav", 3.0),
        "hiss": media_av.silence_wav(folder / "hiss.wav", 3.0, noise_dbfs=-45),
    }
    files["padded"] = media_av.pad_with_silence(files["low"], folder / "padded.wav", before=PAD_S, after=PAD_S)
    # 44.1 kHz AAC in an mp4: the rate at which moviepy's 16 kHz read-out returns near-silence.
    files["mp4"] = media_av.mux_video(None, files["padded"], folder / "speech.mp4", fps=10, size=(320, 180))
    files["mute_mp4"] = media_av.mux_video(None, None, folder / "mute.mp4", fps=10, size=(320, 180), duration=1.5)
    files["webm_no_duration"] = media_av.streamed_webm(files["high"], folder / "streamed.webm")
    data = files["mp4"].read_bytes()
    (folder / "corrupt.mp4").write_bytes(data[: len(data) // 2])  # moov atom (at the end) cut off
    files["corrupt"] = folder / "corrupt.mp4"
    (folder / "empty.mp4").write_bytes(b"")
    files["empty"] = folder / "empty.mp4"
    (folder / "notes.mp4").write_text("these are meeting notes, not a video\n" * 20)
    files["text"] = folder / "notes.mp4"
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "still.png")
    files["image"] = folder / "still.png"
    return files


@pytest.fixture(scope="session")
def analysed(av) -> dict[str, object]:
    """Full analyses (both models) of the speech fixtures, computed once."""
    return {name: analyze_audio(av[name]) for name in ("low", "high", "mp4")}


def voice_extent(path: Path) -> tuple[float, float]:
    """First and last 25 ms frame of a wav louder than -40 dBFS (where espeak's voice is)."""
    samples, rate = soundfile.read(str(path), dtype="float32")
    times, levels = frame_levels_db(samples, rate)
    loud = times[levels > -40]
    return float(loud[0]), float(loud[-1])


# --- decoding ---------------------------------------------------------------------------------------


def test_mp4_at_44k_decodes_to_real_16k_audio(av):
    track = load_audio(av["mp4"])
    original, original_rate = soundfile.read(str(av["padded"]), dtype="float32")
    assert track.native_rate == 44100 and track.rate == 16000
    assert track.samples.dtype == np.float32 and track.samples.ndim == 1
    assert track.duration == pytest.approx(original.size / original_rate, abs=0.1)
    # Level of the speech part: the AAC round trip keeps it within 1.5 dB, far from moviepy's near-silence.
    start, end = PAD_S + 0.2, PAD_S + 3.0
    decoded_rms = np.sqrt(np.mean(track.samples[int(start * 16000): int(end * 16000)] ** 2))
    original_rms = np.sqrt(np.mean(original[int(start * original_rate): int(end * original_rate)] ** 2))
    assert decoded_rms > 0.02
    assert 20 * np.log10(decoded_rms / original_rms) == pytest.approx(0.0, abs=1.5)
    assert track.notes == []


def test_max_seconds_cuts_the_track_and_says_so(av):
    track = load_audio(av["mp4"], max_seconds=3)
    assert track.duration == pytest.approx(3.0, abs=0.05)
    assert track.source_duration > 7
    assert any("only the first 3 s" in note for note in track.notes)
    with pytest.raises(ValueError):
        load_audio(av["mp4"], max_seconds=0)


def test_streamed_webm_without_a_declared_duration_is_decoded(av):
    info = probe_media(av["webm_no_duration"])
    assert info.has_audio and not info.has_video and info.duration > 3
    track = load_audio(av["webm_no_duration"], info=info)
    assert track.native_rate == 48000  # opus decodes at 48 kHz
    assert track.duration == pytest.approx(media_av.wav_duration(av["high"]), abs=0.15)


def test_video_without_audio_track_gives_none(av):
    info = probe_media(av["mute_mp4"])
    assert info.has_video and not info.has_audio and info.duration == pytest.approx(1.5, abs=0.1)
    assert info.video_size == (320, 180)
    assert load_audio(av["mute_mp4"]) is None


@pytest.mark.parametrize("name, message", [
    ("empty", "empty"),
    ("corrupt", "moov atom not found"),
    ("text", "not a readable video or audio file"),
    ("image", "still image"),
])
def test_bad_files_raise_typed_errors(av, name, message):
    with pytest.raises(InvalidInputError, match=message):
        load_audio(av[name])
    with pytest.raises(InvalidInputError, match=message):
        analyze_audio(av[name])


def test_missing_and_too_large_files(av, tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_audio(tmp_path / "nothing.mp4")
    with pytest.raises(InputTooLargeError, match="limit"):
        analyze_audio(av["mp4"], max_bytes=1000)


# --- speech activity ---------------------------------------------------------------------------------


def test_speech_segments_cover_the_speech_and_not_the_silence(av, analysed):
    first, last = voice_extent(av["low"])
    speech_start, speech_end = PAD_S + first, PAD_S + last
    segments = analysed["mp4"].speech_segments
    assert segments, "no speech found"
    assert segments[0].start >= speech_start - 0.15
    assert segments[-1].end <= speech_end + 0.2
    covered = sum(min(end, speech_end) - max(start, speech_start) for start, end in segments)
    assert covered / (speech_end - speech_start) > 0.85
    # The same detector on the silent padding alone finds nothing.
    track = load_audio(av["mp4"])
    assert get_speech_detector().detect(track.samples[: int((PAD_S - 0.1) * 16000)]) == []


def test_segment_rules_bridge_short_dips_split_long_silences_and_drop_blips():
    frame = 0.032
    speech, dip, silence, blip = [0.9] * 20, [0.1] * 2, [0.05] * 10, [0.9] * 3
    probabilities = np.array(silence + speech + dip + speech + silence + blip + silence + speech)
    segments = segments_from_probabilities(probabilities, frame_seconds=frame, duration=len(probabilities) * frame,
                                           min_speech=0.25, min_silence=0.1, pad=0.0)
    # speech-dip-speech is one segment; the 3-frame blip (96 ms) is dropped; the last segment runs to the end.
    assert [(round(s.start / frame), round(s.end / frame)) for s in segments] == [(10, 52), (75, 95)]
    padded = segments_from_probabilities(probabilities, frame_seconds=frame, duration=len(probabilities) * frame,
                                         pad=0.05)
    assert padded[0].start == pytest.approx(10 * frame - 0.05, abs=1e-3)
    assert padded[-1].end == pytest.approx(95 * frame, abs=1e-3)  # clamped to the audio's end


def test_detector_is_shared_and_thread_safe(av):
    track = load_audio(av["low"])
    results, detectors = [], []

    def work():
        detector = get_speech_detector()
        detectors.append(detector)
        results.append(detector.detect(track.samples))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(detector is detectors[0] for detector in detectors)
    assert all(result == results[0] for result in results) and results[0]


# --- transcript and prosody --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["low", "high", "mp4"])
def test_transcript_contains_the_spoken_words(analysed, name):
    result = analysed[name]
    text = result.transcript.lower()
    assert all(word in text for word in SPOKEN_WORDS), result.transcript
    assert len(result.words) >= 15
    assert all(a.start <= b.start for a, b in zip(result.words, result.words[1:]))


def test_word_timings_fall_inside_the_padded_speech(analysed):
    words = analysed["mp4"].words
    assert words[0].start >= PAD_S - 0.3
    assert words[-1].end <= analysed["mp4"].duration - PAD_S + 0.5


def test_high_fast_voice_measures_higher_and_faster_than_low_slow_voice(analysed):
    low, high = analysed["low"].prosody, analysed["high"].prosody
    assert 60 < low.pitch_median_hz < 100  # espeak-ng pitch 15
    assert high.pitch_median_hz > 1.5 * low.pitch_median_hz
    assert high.speaking_rate_wps > 1.4 * low.speaking_rate_wps
    assert "low-pitched" in analysed["low"].tone
    assert "fast speech" in analysed["high"].tone
    assert analysed["high"].arousal > analysed["low"].arousal


def test_video_audio_measures_like_the_wav_it_was_made_from(analysed):
    wav, video = analysed["low"].prosody, analysed["mp4"].prosody
    assert video.pitch_median_hz == pytest.approx(wav.pitch_median_hz, rel=0.03)
    assert video.energy_dbfs == pytest.approx(wav.energy_dbfs, abs=1.5)
    assert analysed["mp4"].native_rate == 44100


def test_yin_finds_known_pitches_and_no_pitch_in_noise():
    rate, t = 16000, np.arange(32000) / 16000
    for f0 in (80.0, 151.0, 333.0):
        voiced = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.15 * np.sin(2 * np.pi * 2 * f0 * t + 1.0)
        _, pitch = yin_pitch(voiced, rate)
        assert np.nanmedian(pitch) == pytest.approx(f0, rel=0.01)
        assert np.isnan(pitch).mean() < 0.05
    _, pitch = yin_pitch(np.random.default_rng(1).standard_normal(32000) * 0.1, rate)
    assert np.isnan(pitch).mean() > 0.95


def test_yin_follows_a_long_melody_across_its_blocks(monkeypatch):
    """12 s of tones changing every 0.37 s: more frames than three of YIN's blocks. Every frame whose
    window lies inside one tone finds that tone, on both sides of each block boundary, and the track
    is the one a single block gives."""
    from emo_core.audio import prosody

    rate, tones, length = 16000, (90.0, 140.0, 210.0, 300.0), 0.37
    t = np.arange(12 * rate) / rate
    tone_at = lambda seconds: tones[int(seconds // length) % len(tones)]  # noqa: E731
    f0_true = np.array([tone_at(s) for s in t])
    voiced = 0.3 * np.sin(2 * np.pi * np.cumsum(f0_true) / rate)
    times, pitch = yin_pitch(voiced, rate)
    assert len(times) > 2 * prosody.YIN_FRAMES_PER_BLOCK + 1
    half = (prosody.YIN_WINDOW_S + 1 / prosody.PITCH_FLOOR_HZ) / 2 + 0.002  # a frame's reach around its centre
    inside = [i for i, centre in enumerate(times) if (centre - half) // length == (centre + half) // length]
    boundaries = [prosody.YIN_FRAMES_PER_BLOCK * k + offset for k in (1, 2) for offset in (-1, 0)]
    assert set(boundaries) & set(inside)
    for i in inside:
        assert pitch[i] == pytest.approx(tone_at(times[i]), rel=0.01), i
    monkeypatch.setattr(prosody, "YIN_FRAMES_PER_BLOCK", 10**6)
    np.testing.assert_allclose(yin_pitch(voiced, rate)[1], pitch, rtol=1e-9)


def test_yin_agrees_with_librosa_pyin_on_speech(av):
    librosa = pytest.importorskip("librosa")
    track = load_audio(av["low"])
    opening = track.samples[: 16000 * 4]  # pyin is slow: 4 s is enough to compare
    _, ours = yin_pitch(opening, 16000)
    theirs, _, _ = librosa.pyin(opening, fmin=60, fmax=500, sr=16000, frame_length=1024, hop_length=160)
    assert np.nanmedian(ours) == pytest.approx(float(np.nanmedian(theirs)), rel=0.03)
    spread = lambda f0: np.nanstd(12 * np.log2(f0 / np.nanmedian(f0)))  # noqa: E731
    assert spread(ours) == pytest.approx(spread(theirs), abs=0.5)  # semitones


def test_resampling_gives_librosa_resample_samples(av):
    librosa = pytest.importorskip("librosa")
    native, rate = soundfile.read(str(av["low"]), dtype="float32")
    assert rate == 22050
    expected = librosa.resample(native, orig_sr=rate, target_sr=16000)
    np.testing.assert_allclose(load_audio(av["low"]).samples, np.clip(expected, -1, 1), atol=1e-6)


def test_pauses_are_silences_of_at_least_0_3_s_between_segments():
    assert pauses([(0.0, 1.0), (1.2, 2.0), (2.5, 3.0), (4.0, 5.0)]) == [(2.0, 2.5), (3.0, 4.0)]
    prosody = measure_prosody(np.zeros(16000 * 5, np.float32), 16000, [(0.0, 1.0), (1.5, 2.5)], word_count=6)
    assert prosody.pause_count == 1 and prosody.pause_seconds == pytest.approx(0.5)
    assert prosody.speaking_rate_wps == pytest.approx(3.0)
    assert prosody.pitch_median_hz is None  # digital silence has no pitch


# --- tone and arousal rules --------------------------------------------------------------------------


def make_prosody(**values) -> Prosody:
    base = dict(speech_seconds=10.0, voiced_fraction=0.5, pitch_median_hz=150.0, pitch_variability_st=2.5,
                pitch_range_st=6.0, energy_dbfs=-25.0, energy_variability_db=8.0, speaking_rate_wps=2.8,
                pause_count=1, pause_seconds=0.5)
    return Prosody(**{**base, **values})


def test_tone_and_arousal_follow_the_table():
    excited = make_prosody(pitch_median_hz=290, pitch_variability_st=5.5, energy_dbfs=-12, speaking_rate_wps=4.2)
    calm = make_prosody(pitch_median_hz=90, pitch_variability_st=1.0, energy_dbfs=-40, speaking_rate_wps=1.5,
                        pause_count=4, pause_seconds=4.0)
    assert describe_tone(excited) == "high-pitched, lively and loud voice, fast speech with few pauses"
    assert describe_tone(calm) == "low-pitched, monotonous and quiet voice, slow speech with many pauses"
    assert arousal_cue(excited) == 1.0 and arousal_cue(calm) == -1.0
    assert -0.3 < arousal_cue(make_prosody()) < 0.3
    unmeasured = make_prosody(pitch_median_hz=None, pitch_variability_st=None, pitch_range_st=None,
                              energy_dbfs=None, speaking_rate_wps=None, pause_count=0, pause_seconds=0.0)
    assert arousal_cue(unmeasured) is None
    assert describe_tone(unmeasured) == "voice of unmeasured pitch and loudness, speech with no pauses"


# --- whole analysis: no audio, silence, noise --------------------------------------------------------


def test_video_without_audio_says_so(av):
    result = analyze_audio(av["mute_mp4"])
    assert not result.has_audio and not result.has_speech
    assert result.tone == NO_AUDIO_TRACK and "no audio track" in " ".join(result.notes)
    assert result.transcript == "" and result.prosody is None and result.arousal is None
    assert result.source_duration == pytest.approx(1.5, abs=0.1)


def test_silence_and_noise_say_so_without_running_whisper(av):
    detector, transcriber = SpeechDetector(), Transcriber()
    silent = analyze_audio(av["silent"], detector=detector, transcriber=transcriber)
    assert silent.has_audio and silent.tone == SILENT_TRACK and silent.transcript == ""
    assert not detector.loaded  # digital silence needs no model at all
    hiss = analyze_audio(av["hiss"], detector=detector, transcriber=transcriber)
    assert hiss.tone.startswith("no speech detected") and "-45 dBFS" in hiss.tone
    assert detector.loaded and not transcriber.loaded
    assert hiss.speech_segments == [] and hiss.prosody is None


def test_quiet_speech_in_a_long_silence_is_not_called_silent(av):
    speech = load_audio(av["low"]).samples * 0.015  # ~36 dB quieter: about -57 dBFS
    samples = np.concatenate([np.zeros(16000 * 20, np.float32), speech])
    track = AudioTrack(samples=samples, rate=16000, native_rate=16000, source_duration=samples.size / 16000)
    assert 10 * np.log10(np.mean(samples**2)) < -60  # the mean level alone would say "silent"
    result = analyze_audio(track, transcribe=False)
    assert result.tone != SILENT_TRACK and result.has_speech
    assert result.speech_segments[0].start > 19.5


def test_analysis_of_a_decoded_track_and_to_dict_is_json_ready(av, analysed):
    track = load_audio(av["high"])
    assert isinstance(track, AudioTrack)
    result = analyze_audio(track, transcribe=False, max_seconds=2.0)
    assert result.transcript == "" and result.prosody.speaking_rate_wps is None
    assert result.duration == pytest.approx(2.0) and any("only the first 2 s" in note for note in result.notes)
    assert "fast" not in result.tone  # no rate without a transcript
    data = json.loads(json.dumps(analysed["mp4"].to_dict()))
    assert data["has_audio"] and data["has_speech"] and data["native_rate"] == 44100
    assert data["speech_segments"][0][0] >= PAD_S - 0.2
    assert set(data["timings"]) >= {"decode", "vad", "transcribe", "prosody", "total"}
    assert data["prosody"]["pitch_median_hz"] > 0 and data["tone"] == analysed["mp4"].tone


def test_importing_the_package_loads_no_model_library():
    code = ("import sys, emo_core.audio; "
            "print(sorted(m for m in ('onnxruntime', 'faster_whisper', 'ctranslate2', 'soxr', 'silero_vad') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
