"""Prosody numbers of speech: pitch level and variability, loudness, speaking rate and pauses.

All measures are taken inside the speech segments found by ``vad.py`` (silence would drag the
loudness down and gives no pitch). Units are in the field names and comments of ``Prosody``.

Pitch: YIN (de Cheveigné & Kawahara, 2002, JASA 111(4)) written with numpy FFTs, 10 ms hop, 25 ms
integration window, 60-500 Hz search range. ``librosa.yin`` computes the same function, but importing
librosa took 4-7 s on our cold 2-core machine and ``librosa.pyin`` 1.4-2.7 s per 10 s of audio even
warm (``benchmarks/bench_audio.py --compare-librosa``); this version takes tens of ms and agrees with
``librosa.pyin`` on the median f0 of espeak-ng speech within 3% (tests/test_audio.py). Unlike ``librosa.yin`` it makes a voicing decision: a frame is voiced
only when the normalised difference function has a trough under ``YIN_THRESHOLD``; other frames get no
pitch instead of a best guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

PITCH_FLOOR_HZ = 60.0  # below a low male speaking voice (~85 Hz) with room for creak
PITCH_CEILING_HZ = 500.0  # above excited female and child speech (~400 Hz)
HOP_S = 0.010  # analysis step for pitch and energy frames
YIN_WINDOW_S = 0.025  # integration window W of YIN: covers one period of a 40 Hz voice
YIN_THRESHOLD = 0.15  # de Cheveigné used 0.1 on clean speech; 0.15 keeps more frames of real recordings
ENERGY_WINDOW_S = 0.025
SILENT_FRAME_DBFS = -60.0  # energy frames below this (digital silence in pads and gaps) are not "speech level"
MIN_PAUSE_S = 0.3  # a silence inside speech at least this long counts as a pause
MIN_SPEECH_FOR_RATE_S = 1.0  # words per second over less speech than this is noise
# YIN's FFT arrays take about 66 KiB per 10 ms frame at 16 kHz: a minute at once peaked at 388 MiB
# (tracemalloc), in blocks of this many frames at 40 MiB, and ran in 0.2 s instead of 2 s. Each frame's
# f0 is computed on its own, so the blocks give the very same track.
YIN_FRAMES_PER_BLOCK = 512


@dataclass(frozen=True)
class Prosody:
    speech_seconds: float  # total duration of the speech segments, s
    voiced_fraction: float  # voiced pitch frames / pitch frames inside speech, 0-1
    pitch_median_hz: float | None  # median f0 over voiced frames, Hz (None: no voiced frame)
    pitch_variability_st: float | None  # standard deviation of f0 in semitones around its median
    pitch_range_st: float | None  # 90th minus 10th percentile of f0, semitones
    energy_dbfs: float | None  # mean power of the speech samples, dB re full scale (a full-scale sine is -3)
    energy_variability_db: float | None  # standard deviation of 25 ms frame levels in speech, dB
    speaking_rate_wps: float | None  # words per second of speech (None without a transcript / < 1 s speech)
    pause_count: int  # silences >= MIN_PAUSE_S between speech segments
    pause_seconds: float  # their total duration, s

    def to_dict(self) -> dict[str, float | int | None]:
        return {name: _rounded(getattr(self, name)) for name in self.__dataclass_fields__}


def _rounded(value):
    return round(value, 3) if isinstance(value, float) else value


def yin_pitch(
    samples: np.ndarray,
    rate: int,
    *,
    fmin: float = PITCH_FLOOR_HZ,
    fmax: float = PITCH_CEILING_HZ,
    hop_s: float = HOP_S,
    window_s: float = YIN_WINDOW_S,
    threshold: float = YIN_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """(times, f0) for frames every ``hop_s`` seconds; f0 is NaN in unvoiced frames.

    ``times`` are the frame centres in seconds. Each frame holds ``window + max_lag`` samples so the
    difference function compares the whole window at every lag (the original YIN, not a truncated one).
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    window = int(round(window_s * rate))
    min_lag = max(2, int(math.floor(rate / fmax)))
    max_lag = int(math.ceil(rate / fmin))
    frame_length = window + max_lag + 1
    hop = max(1, int(round(hop_s * rate)))
    if samples.size < frame_length:
        return np.zeros(0), np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(samples, frame_length)[::hop]
    times = (np.arange(frames.shape[0]) * hop + frame_length / 2) / rate
    f0 = np.concatenate([_yin_frames(frames[start:start + YIN_FRAMES_PER_BLOCK], rate, window, min_lag, max_lag,
                                     threshold) for start in range(0, frames.shape[0], YIN_FRAMES_PER_BLOCK)])
    return times, f0


def _yin_frames(frames: np.ndarray, rate: int, window: int, min_lag: int, max_lag: int, threshold: float) -> np.ndarray:
    if frames.shape[0] == 0:
        return np.zeros(0)
    n_fft = 1 << int(math.ceil(math.log2(frames.shape[1] + window)))
    # r(tau) = sum_{j<W} x[j] x[j+tau], for all frames at once through the FFT.
    spectrum = np.fft.rfft(frames, n_fft, axis=1)
    head = np.fft.rfft(frames[:, :window], n_fft, axis=1)
    correlation = np.fft.irfft(spectrum * np.conj(head), n_fft, axis=1)[:, : max_lag + 1]
    # Energy of the window shifted by tau: e(tau) = sum_{j<W} x[j+tau]^2.
    energy = np.cumsum(np.pad(frames**2, ((0, 0), (1, 0))), axis=1)
    shifted_energy = energy[:, window : window + max_lag + 1] - energy[:, : max_lag + 1]
    difference = shifted_energy[:, :1] + shifted_energy - 2 * correlation  # YIN step 2, d(tau)
    difference[:, 0] = 0.0
    np.maximum(difference, 0.0, out=difference)  # FFT rounding can dip a hair below zero
    lags = np.arange(1, max_lag + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        running_mean = np.cumsum(difference[:, 1:], axis=1) / lags
        normalised = difference[:, 1:] / running_mean  # YIN step 3, d'(tau) for tau = 1..max_lag
    normalised = np.nan_to_num(normalised, nan=1.0, posinf=1.0)
    # Search lags min_lag..max_lag, keeping one lag on each side for the trough test and interpolation.
    search = normalised[:, min_lag - 2 : max_lag]  # columns are lags min_lag-1 .. max_lag
    centre = search[:, 1:-1]  # lags min_lag .. max_lag-1
    is_trough = (centre <= search[:, :-2]) & (centre < search[:, 2:])
    candidates = is_trough & (centre < threshold)
    voiced = candidates.any(axis=1)
    first = np.argmax(candidates, axis=1)  # YIN step 4: the smallest lag with a deep enough trough
    rows = np.arange(frames.shape[0])
    left, middle, right = search[rows, first], search[rows, first + 1], search[rows, first + 2]
    curvature = left - 2 * middle + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature > 0, 0.5 * (left - right) / curvature, 0.0)  # YIN step 5
    lag = min_lag + first + np.clip(shift, -1.0, 1.0)
    return np.where(voiced, rate / lag, np.nan)


def frame_levels_db(samples: np.ndarray, rate: int, *, window_s: float = ENERGY_WINDOW_S,
                    hop_s: float = HOP_S) -> tuple[np.ndarray, np.ndarray]:
    """(times, RMS level in dBFS) of ``window_s`` frames every ``hop_s`` seconds."""
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    window, hop = int(round(window_s * rate)), max(1, int(round(hop_s * rate)))
    if samples.size < window:
        return np.zeros(0), np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::hop]
    power = np.mean(frames**2, axis=1)
    times = (np.arange(frames.shape[0]) * hop + window / 2) / rate
    return times, 10 * np.log10(np.maximum(power, 1e-12))


def pauses(segments: Sequence[tuple[float, float]], min_pause: float = MIN_PAUSE_S) -> list[tuple[float, float]]:
    """Silences of at least ``min_pause`` seconds between consecutive speech segments."""
    ordered = sorted(segments)
    return [
        (round(previous[1], 3), round(following[0], 3))
        for previous, following in zip(ordered, ordered[1:])
        if following[0] - previous[1] >= min_pause
    ]


def speech_mask(times: np.ndarray, segments: Sequence[tuple[float, float]]) -> np.ndarray:
    """True for the ``times`` that fall inside a speech segment."""
    mask = np.zeros(times.shape, dtype=bool)
    for start, end in segments:
        mask |= (times >= start) & (times < end)
    return mask


def measure_prosody(
    samples: np.ndarray,
    rate: int,
    segments: Sequence[tuple[float, float]],
    word_count: int | None = None,
    pitch: tuple[np.ndarray, np.ndarray] | None = None,
) -> Prosody:
    """Prosody of mono float audio inside the speech ``segments`` (seconds).

    ``word_count`` (from the transcript) gives the speaking rate; None leaves it unmeasured.
    ``pitch``: the (times, f0) of ``yin_pitch`` if the caller already has them.
    """
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    speech_seconds = float(sum(end - start for start, end in segments))
    gaps = pauses(segments)

    pitch_median = pitch_sd = pitch_range = None
    voiced_fraction = 0.0
    times, f0 = pitch if pitch is not None else yin_pitch(samples, rate)
    in_speech = speech_mask(times, segments)
    if in_speech.any():
        speech_f0 = f0[in_speech]
        voiced = speech_f0[~np.isnan(speech_f0)]
        voiced_fraction = voiced.size / speech_f0.size
        if voiced.size:
            pitch_median = float(np.median(voiced))
            semitones = 12 * np.log2(voiced / pitch_median)
            pitch_sd = float(np.sqrt(np.mean(semitones**2)))  # spread around the median, not the mean
            pitch_range = float(np.percentile(semitones, 90) - np.percentile(semitones, 10))

    energy = energy_sd = None
    speech_samples = np.concatenate(
        [samples[int(start * rate): int(end * rate)] for start, end in segments] or [np.zeros(0, np.float32)]
    )
    if speech_samples.size:
        energy = float(10 * np.log10(max(float(np.mean(speech_samples.astype(np.float64) ** 2)), 1e-12)))
        level_times, levels = frame_levels_db(samples, rate)
        sounding = levels[speech_mask(level_times, segments) & (levels > SILENT_FRAME_DBFS)]
        if sounding.size > 1:
            energy_sd = float(np.std(sounding))

    rate_wps = None
    if word_count is not None and speech_seconds >= MIN_SPEECH_FOR_RATE_S:
        rate_wps = word_count / speech_seconds
    return Prosody(
        speech_seconds=speech_seconds,
        voiced_fraction=float(voiced_fraction),
        pitch_median_hz=pitch_median,
        pitch_variability_st=pitch_sd,
        pitch_range_st=pitch_range,
        energy_dbfs=energy,
        energy_variability_db=energy_sd,
        speaking_rate_wps=rate_wps,
        pause_count=len(gaps),
        pause_seconds=float(sum(end - start for start, end in gaps)),
    )
