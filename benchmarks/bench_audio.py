"""Benchmark of the audio analysis (emo_core.audio) on a 10 s speech clip: per-stage times, cold and warm.

    .venv/bin/python -m benchmarks.bench_audio                    # 640x360 30 fps mp4, 44.1 kHz AAC, 10 s
    .venv/bin/python -m benchmarks.bench_audio --runs 10 --beams 1,5 --compare-librosa

"Cold" is the first ``analyze_audio`` call in this process: it includes importing onnxruntime and
faster-whisper and loading both models. "Warm" runs repeat the analysis with the models loaded
(median and max of ``--runs``). Needs Debian's espeak-ng for the speech. Figures vary a lot on a
shared 2-core machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

CLIP_SECONDS = 10.0
TEXT = (
    "Good morning everyone. I am really happy to see you all here today. We worked very hard on this "
    "project, and I think the results are wonderful. Thank you for coming, and please enjoy the show tonight."
)


def build_clip(folder: Path) -> Path:
    from tests.media_av import mux_video, speech_wav, wav_duration

    speech = speech_wav(TEXT, folder / "speech.wav", pitch=50, speed=160)
    if wav_duration(speech) < CLIP_SECONDS:
        raise SystemExit(f"the espeak-ng speech is shorter than {CLIP_SECONDS} s: lengthen TEXT")
    return mux_video(None, speech, folder / "clip.mp4", fps=30, size=(640, 360), duration=CLIP_SECONDS)


def print_stages(title: str, timings: dict[str, float]) -> None:
    stages = "  ".join(f"{stage} {seconds:.3f}" for stage, seconds in timings.items() if stage != "total")
    print(f"{title}: total {timings['total']:.3f} s   ({stages})")


def compare_beams(clip: Path, beams: list[int]) -> None:
    from emo_core.audio import Transcriber, get_speech_detector, load_audio

    track = load_audio(clip)
    segments = get_speech_detector().detect(track.samples)
    for beam in beams:
        transcriber = Transcriber(beam_size=beam).load()
        transcriber.transcribe(track.samples, segments)  # first decode after loading is slower
        times, text = [], ""
        for _ in range(3):
            started = time.perf_counter()
            text = transcriber.transcribe(track.samples, segments).text
            times.append(time.perf_counter() - started)
        print(f"whisper beam {beam}: median {statistics.median(times):.3f} s of 3   \"{text}\"")


def compare_librosa(clip: Path) -> None:
    from emo_core.audio import get_speech_detector, load_audio, measure_prosody

    track = load_audio(clip)
    segments = get_speech_detector().detect(track.samples)
    started = time.perf_counter()
    ours = measure_prosody(track.samples, track.rate, segments)
    print(f"our prosody (numpy YIN): {time.perf_counter() - started:.3f} s, median f0 {ours.pitch_median_hz:.1f} Hz")
    started = time.perf_counter()
    import librosa

    librosa.yin(track.samples[:16000], fmin=60, fmax=500, sr=16000)
    print(f"librosa import + first yin call: {time.perf_counter() - started:.2f} s")
    for name, call in (
        ("librosa.yin", lambda: librosa.yin(track.samples, fmin=60, fmax=500, sr=16000, frame_length=1024,
                                            hop_length=160)),
        ("librosa.pyin", lambda: librosa.pyin(track.samples, fmin=60, fmax=500, sr=16000, frame_length=1024,
                                              hop_length=160)),
    ):
        started = time.perf_counter()
        call()
        print(f"{name} on {track.duration:.0f} s (warm): {time.perf_counter() - started:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm runs")
    parser.add_argument("--beams", default="", help="also time Whisper at these beam sizes, e.g. 1,5")
    parser.add_argument("--compare-librosa", action="store_true", help="also time librosa's yin and pyin")
    args = parser.parse_args()

    started = time.perf_counter()
    import emo_core.audio as audio  # noqa: F401  (the emo_core parent package imports torch today)

    print(f"import emo_core.audio: {time.perf_counter() - started:.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        clip = build_clip(Path(folder))
        print(f"clip: {clip.stat().st_size / 1e3:.0f} kB, 640x360 30 fps, {CLIP_SECONDS:g} s, 44.1 kHz AAC; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

        cold = audio.analyze_audio(clip)
        print_stages("cold (imports + model loads + first run)", cold.timings)
        print(f"  model loads: silero-vad {audio.get_speech_detector().load_seconds:.3f} s, "
              f"whisper tiny.en {audio.get_transcriber().load_seconds:.3f} s")
        print(f"  transcript: \"{cold.transcript}\"")
        print(f"  tone: {cold.tone}   arousal {cold.arousal}")

        runs = [audio.analyze_audio(clip).timings for _ in range(max(1, args.runs))]
        stages = [stage for stage in runs[0] if not stage.endswith("_load")]
        medians = {stage: statistics.median(run[stage] for run in runs) for stage in stages}
        print_stages(f"warm, median of {len(runs)}", medians)
        print(f"  warm total: max {max(run['total'] for run in runs):.3f} s; load average "
              f"{os.getloadavg()[0]:.1f}")

        if args.beams:
            compare_beams(clip, [int(beam) for beam in args.beams.split(",")])
        if args.compare_librosa:
            compare_librosa(clip)


if __name__ == "__main__":
    main()
