"""The audio half of a video's analysis: decode -> speech activity -> transcript -> prosody -> tone.

    from emo_core.audio import analyze_audio
    result = analyze_audio("clip.mp4", max_seconds=30)
    result.transcript     # the subtitle (Emotion-LLaMA's C_ls)
    result.tone           # "low-pitched, monotonous and moderately loud voice, slow speech with no pauses" (C_atd)
    result.arousal        # rule-based cue in [-1, 1], or None
    result.to_dict()      # JSON-ready, with per-stage timings in seconds

A file without an audio track, a silent track, or sound without speech is said so plainly in
``tone`` and ``notes``, and the models are not run on it. Unreadable files raise
``InvalidInputError`` (``InputTooLargeError`` over ``max_bytes``) from ``decode.load_audio``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..timing import Laps
from .decode import AudioTrack, load_audio, probe_media
from .prosody import MIN_SPEECH_FOR_RATE_S, Prosody, frame_levels_db, measure_prosody, speech_mask, yin_pitch
from .tone import arousal_cue, describe_tone
from .transcribe import Transcriber, TranscriptSegment, Word, get_transcriber
from .vad import SpeechDetector, SpeechSegment, get_speech_detector

PLOT_POINTS_PER_SECOND = 100
SILENT_TRACK_DBFS = -60.0  # a track whose loudest 25 ms is quieter than this is "silent", not "no speech"

NO_AUDIO_TRACK = "no audio track"
SILENT_TRACK = "silent audio track (no speech)"


@dataclass
class AudioAnalysis:
    has_audio: bool  # False: the file has no audio track
    duration: float  # seconds of audio analysed (0 without an audio track)
    source_duration: float  # seconds in the file
    speech_segments: list[SpeechSegment]  # (start, end) seconds
    transcript: str  # "" when nothing was said (or transcription was off)
    words: list[Word]  # with start/end seconds and Whisper's probability
    transcript_segments: list[TranscriptSegment]
    prosody: Prosody | None  # None without speech
    tone: str  # a short description of the voice, or what is missing
    arousal: float | None  # rule-based cue in [-1, 1] from tone.TONE_TABLE; None without speech
    notes: list[str] = field(default_factory=list)  # what the reader of the result should know
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, and "total"
    native_rate: int | None = None  # the file's audio sample rate, Hz
    # for plots: a peak envelope of the waveform (PLOT_POINTS_PER_SECOND values a second) and the
    # pitch track over voiced speech frames
    plot: dict[str, list[float] | float] = field(default_factory=dict)

    @property
    def has_speech(self) -> bool:
        return bool(self.speech_segments)

    @property
    def speech_seconds(self) -> float:
        return float(sum(segment.duration for segment in self.speech_segments))

    def to_dict(self) -> dict:
        return {
            "has_audio": self.has_audio,
            "has_speech": self.has_speech,
            "duration": round(self.duration, 3),
            "source_duration": round(self.source_duration, 3),
            "native_rate": self.native_rate,
            "speech_seconds": round(self.speech_seconds, 3),
            "speech_segments": [[segment.start, segment.end] for segment in self.speech_segments],
            "transcript": self.transcript,
            "words": [
                {"start": w.start, "end": w.end, "text": w.text, "probability": w.probability} for w in self.words
            ],
            "transcript_segments": [
                {"start": s.start, "end": s.end, "text": s.text} for s in self.transcript_segments
            ],
            "prosody": self.prosody.to_dict() if self.prosody else None,
            "tone": self.tone,
            "arousal": self.arousal,
            "notes": list(self.notes),
            "timings": {stage: round(seconds, 4) for stage, seconds in self.timings.items()},
            "plot": self.plot,
        }


def analyze_audio(
    source: str | Path | AudioTrack,
    *,
    max_seconds: float | None = None,
    max_bytes: int | None = None,
    transcribe: bool = True,
    detector: SpeechDetector | None = None,
    transcriber: Transcriber | None = None,
) -> AudioAnalysis:
    """Analyse the audio of a video or audio file (or of an already decoded ``AudioTrack``).

    ``max_seconds`` analyses only the beginning of longer files (and says so in ``notes``);
    ``transcribe=False`` skips Whisper (no transcript, no speaking rate). ``detector`` and
    ``transcriber`` default to the process-wide models.
    """
    timings: dict[str, float] = {}
    lap = Laps(timings)

    if isinstance(source, AudioTrack):
        track = _cut(source, max_seconds)
    else:
        info = probe_media(source, max_bytes=max_bytes)
        track = load_audio(source, max_seconds=max_seconds, max_bytes=max_bytes, info=info)
        if track is None:
            lap("decode")
            timings["total"] = lap.total()
            return AudioAnalysis(
                has_audio=False, duration=0.0, source_duration=info.duration, speech_segments=[], transcript="",
                words=[], transcript_segments=[], prosody=None, tone=NO_AUDIO_TRACK, arousal=None,
                notes=["the file has no audio track"], timings=timings,
            )
    lap("decode")
    notes = list(track.notes)

    plot = {"waveform": _envelope(track.samples, track.rate), "waveform_rate": float(PLOT_POINTS_PER_SECOND),
            "pitch_times": [], "pitch_hz": []}

    def without_speech(tone: str, note: str) -> AudioAnalysis:
        timings["total"] = lap.total()
        return AudioAnalysis(
            has_audio=True, duration=track.duration, source_duration=track.source_duration, speech_segments=[],
            transcript="", words=[], transcript_segments=[], prosody=None, tone=tone, arousal=None,
            notes=notes + [note], timings=timings, native_rate=track.native_rate, plot=plot,
        )

    level = _level_dbfs(track.samples)
    if _loudest_frame_dbfs(track) < SILENT_TRACK_DBFS:
        # Silence: no model can find speech in it, so none is loaded or run. The loudest frame decides,
        # not the mean, so one quiet sentence in a long silent track still counts as sound.
        return without_speech(SILENT_TRACK, f"the audio track is silent ({_format_level(level)})")

    detector = detector or get_speech_detector()
    detector.load()
    lap("vad_load")
    segments = detector.detect(track.samples, track.rate)
    lap("vad")
    if not segments:
        return without_speech(
            f"no speech detected (non-speech sound at {_format_level(level)})",
            "no speech detected: transcript and prosody skipped",
        )

    transcript_text, words, transcript_segments, word_count = "", [], [], None
    if transcribe:
        transcriber = transcriber or get_transcriber()
        transcriber.load()
        lap("asr_load")
        transcript = transcriber.transcribe(track.samples, segments)
        lap("transcribe")
        transcript_text, words, transcript_segments = transcript.text, transcript.words, transcript.segments
        word_count = transcript.word_count
        if not transcript_text:
            notes.append("speech detected but Whisper (tiny.en, English only) wrote no words")
    else:
        notes.append("transcription switched off: no transcript or speaking rate")

    pitch_times, f0 = yin_pitch(track.samples, track.rate)
    prosody = measure_prosody(track.samples, track.rate, segments, word_count, pitch=(pitch_times, f0))
    voiced = speech_mask(pitch_times, segments) & ~np.isnan(f0)
    plot["pitch_times"] = [round(float(t), 3) for t in pitch_times[voiced]]
    plot["pitch_hz"] = [round(float(v), 1) for v in f0[voiced]]
    lap("prosody")
    if transcribe and prosody.speech_seconds < MIN_SPEECH_FOR_RATE_S:
        notes.append(f"under {MIN_SPEECH_FOR_RATE_S:g} s of speech: speaking rate not measured")
    if prosody.pitch_median_hz is None:
        notes.append("no voiced frame found: pitch not measured")
    tone, arousal = describe_tone(prosody), arousal_cue(prosody)
    lap("tone")
    timings["total"] = lap.total()
    return AudioAnalysis(
        has_audio=True, duration=track.duration, source_duration=track.source_duration, speech_segments=segments,
        transcript=transcript_text, words=words, transcript_segments=transcript_segments, prosody=prosody,
        tone=tone, arousal=arousal, notes=notes, timings=timings, native_rate=track.native_rate, plot=plot,
    )


def warm_up(transcribe: bool = True) -> dict[str, float]:
    """Load the audio models and run each once on a second of noise; returns seconds per step.

    The first Whisper decode after loading is slower than the next ones, so the app's preload
    should call this rather than only loading.
    """
    timings: dict[str, float] = {}
    noise = (np.random.default_rng(0).standard_normal(16000) * 0.01).astype(np.float32)
    lap = Laps(timings)
    detector = get_speech_detector().load()
    lap("vad_load")
    detector.detect(noise)
    lap("vad_first_run")
    if transcribe:
        transcriber = get_transcriber().load()
        lap("asr_load")
        transcriber.transcribe(noise)
        lap("asr_first_run")
    return timings


def _cut(track: AudioTrack, max_seconds: float | None) -> AudioTrack:
    """``track`` limited to its first ``max_seconds`` (with the same note ``load_audio`` writes)."""
    if max_seconds is None or track.duration <= max_seconds:
        return track
    return dataclasses.replace(
        track, samples=track.samples[: int(round(max_seconds * track.rate))], truncated_to=float(max_seconds),
        notes=track.notes + [f"only the first {max_seconds:g} s of {track.duration:.1f} s analysed"],
    )


def _loudest_frame_dbfs(track: AudioTrack) -> float:
    _, levels = frame_levels_db(track.samples, track.rate)
    return float(levels.max()) if levels.size else _level_dbfs(track.samples)


def _envelope(samples: np.ndarray, rate: int) -> list[float]:
    """The largest absolute sample in each 1/PLOT_POINTS_PER_SECOND s bucket (a plot-sized waveform)."""
    bucket = max(1, rate // PLOT_POINTS_PER_SECOND)
    usable = samples[: len(samples) // bucket * bucket].reshape(-1, bucket)
    return [round(float(v), 4) for v in np.abs(usable).max(axis=1)] if usable.size else []


def _level_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return float("-inf")
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    return 10.0 * np.log10(power) if power > 0 else float("-inf")


def _format_level(level: float) -> str:
    return "digital silence" if not np.isfinite(level) else f"{level:.0f} dBFS"
