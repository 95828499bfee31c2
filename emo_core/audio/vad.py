"""Speech activity: (start, end) seconds of speech in 16 kHz mono audio, with silero-vad's ONNX model.

Model: silero-vad v6 (MIT), the "sequence" export bundled in the ``silero-vad`` wheel
(``silero_vad/data/silero_vad_16k_sequence.onnx``), run with onnxruntime on numpy arrays: one ONNX
call per ~16 s of audio gives one speech probability per 32 ms frame, the same numbers as the
package's frame-by-frame model.

The ``silero_vad`` Python package itself is deliberately not imported: its ``__init__`` imports torch
(~3 s on a cold 2-core machine) and calls ``torch.set_num_threads(1)``, which would silently slow every
other torch model in the process. The file is located with ``importlib.util.find_spec``, which does not
run the package. Probabilities become segments with the hysteresis rule of ``segments_from_probabilities``
(a small re-implementation of silero's ``get_speech_timestamps`` options that matter here).

The model loads lazily, once per process (``get_speech_detector()``); an onnxruntime session may be
run from several threads at once, and the recurrent state is passed explicitly, so detection is thread-safe.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import BackendError

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512  # 32 ms: the model's step at 16 kHz
CONTEXT_SAMPLES = 64  # the model sees the last 64 samples of the previous frame before each frame
FRAMES_PER_CALL = 512  # ~16.4 s of audio per ONNX call (bounded memory on long files)
MODEL_PACKAGE = "silero_vad"
MODEL_FILE = Path("data") / "silero_vad_16k_sequence.onnx"


class SpeechSegment(NamedTuple):
    """A stretch of speech, in seconds from the start of the analysed audio."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def model_path() -> Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the speech-activity model is missing: `pip install silero-vad` (see requirements.txt)")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.is_file():
        raise BackendError(f"the installed silero-vad has no {MODEL_FILE} (version 6.2 or newer ships it)")
    return path


def segments_from_probabilities(
    probabilities: np.ndarray,
    *,
    frame_seconds: float,
    duration: float,
    threshold: float = 0.5,
    neg_threshold: float | None = None,
    min_speech: float = 0.25,
    min_silence: float = 0.1,
    pad: float = 0.03,
) -> list[SpeechSegment]:
    """Speech segments from per-frame speech probabilities (silero's defaults and hysteresis).

    Speech starts at a frame with probability >= ``threshold`` and goes on while frames stay at or
    above ``neg_threshold`` (default ``threshold - 0.15``); a run of lower frames ends it only once it
    lasts ``min_silence`` seconds, so short dips between syllables do not split words. Segments
    shorter than ``min_speech`` are dropped (clicks, breaths), then each is widened by ``pad`` seconds
    on both sides (clamped to the audio, overlaps merged) so word edges are not clipped.
    """
    if neg_threshold is None:
        neg_threshold = max(threshold - 0.15, 0.01)
    raw: list[list[float]] = []
    start: int | None = None
    silent_since: int | None = None
    for index, probability in enumerate(np.asarray(probabilities, dtype=np.float32)):
        if start is None:
            if probability >= threshold:
                start, silent_since = index, None
            continue
        if probability >= neg_threshold:
            silent_since = None
            continue
        if silent_since is None:
            silent_since = index
        if (index + 1 - silent_since) * frame_seconds >= min_silence:
            raw.append([start * frame_seconds, silent_since * frame_seconds])
            start, silent_since = None, None
    if start is not None:
        end_frame = silent_since if silent_since is not None else len(probabilities)
        raw.append([start * frame_seconds, end_frame * frame_seconds])

    merged: list[list[float]] = []
    for begin, end in raw:
        if end - begin < min_speech:
            continue
        begin, end = max(0.0, begin - pad), min(duration, end + pad)
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return [SpeechSegment(round(begin, 3), round(end, 3)) for begin, end in merged]


class SpeechDetector:
    """silero-vad on 16 kHz mono float32 audio."""

    def __init__(self, threshold: float = 0.5, min_speech: float = 0.25, min_silence: float = 0.1, pad: float = 0.03):
        self.threshold = threshold
        self.min_speech = min_speech
        self.min_silence = min_silence
        self.pad = pad
        self.load_seconds: float | None = None
        self._session = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self) -> "SpeechDetector":
        with self._lock:
            if self._session is None:
                started = time.perf_counter()
                import onnxruntime

                options = onnxruntime.SessionOptions()
                # The LSTM runs frame after frame: more threads do not help and would take a core from
                # the other stages of the video pipeline.
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                self._session = onnxruntime.InferenceSession(
                    str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
                )
                self.load_seconds = time.perf_counter() - started
        return self

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each 32 ms frame (the last frame is zero-padded)."""
        self.load()
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        frame_count = -(-samples.size // FRAME_SAMPLES)
        if frame_count == 0:
            return np.zeros(0, dtype=np.float32)
        frames = np.zeros((frame_count, FRAME_SAMPLES), dtype=np.float32)
        frames.reshape(-1)[: samples.size] = samples
        context = np.zeros((frame_count, CONTEXT_SAMPLES), dtype=np.float32)
        context[1:] = frames[:-1, -CONTEXT_SAMPLES:]
        model_input = np.concatenate([context, frames], axis=1)
        hidden = np.zeros((1, 1, 128), dtype=np.float32)
        cell = np.zeros((1, 1, 128), dtype=np.float32)
        outputs = []
        for first in range(0, frame_count, FRAMES_PER_CALL):
            block = model_input[first : first + FRAMES_PER_CALL]
            speech, hidden, cell = self._session.run(
                ["speech_probs", "hn", "cn"], {"input": block, "h": hidden, "c": cell}
            )
            outputs.append(speech)
        return np.concatenate(outputs).reshape(-1).astype(np.float32)

    def detect(self, samples: np.ndarray, rate: int = SAMPLE_RATE) -> list[SpeechSegment]:
        """Speech segments (seconds) in mono float32 audio at 16 kHz."""
        if rate != SAMPLE_RATE:
            raise ValueError(f"speech detection needs {SAMPLE_RATE} Hz audio, got {rate} Hz")
        return segments_from_probabilities(
            self.probabilities(samples),
            frame_seconds=FRAME_SAMPLES / SAMPLE_RATE,
            duration=np.size(samples) / SAMPLE_RATE,
            threshold=self.threshold,
            min_speech=self.min_speech,
            min_silence=self.min_silence,
            pad=self.pad,
        )


_DETECTOR: SpeechDetector | None = None
_DETECTOR_LOCK = threading.Lock()


def get_speech_detector() -> SpeechDetector:
    """The process-wide detector (the model loads on first use)."""
    global _DETECTOR
    with _DETECTOR_LOCK:
        if _DETECTOR is None:
            _DETECTOR = SpeechDetector()
        return _DETECTOR
