"""Audio analysis of video and audio files: speech activity, transcript, prosody and tone.

    from emo_core.audio import analyze_audio
    result = analyze_audio("clip.mp4", max_seconds=30)
    result.transcript, result.tone, result.arousal, result.to_dict()

One module per step: ``decode`` (file -> mono 16 kHz samples), ``vad`` (silero-vad speech segments),
``transcribe`` (Whisper tiny.en via faster-whisper), ``prosody`` (pitch, energy, rate, pauses),
``tone`` (numbers -> description and arousal cue) and ``analysis`` (the pipeline). Importing this
package loads no model and imports no heavy library (onnxruntime, faster-whisper, moviepy, soxr
are imported where they are used).
"""

from .analysis import AudioAnalysis, analyze_audio, warm_up
from .decode import AudioTrack, MediaInfo, load_audio, probe_media
from .prosody import Prosody, measure_prosody
from .tone import TONE_TABLE, ToneScale, arousal_cue, describe_tone
from .transcribe import Transcriber, Transcript, TranscriptSegment, Word, get_transcriber
from .vad import SpeechDetector, SpeechSegment, get_speech_detector

__all__ = [
    "AudioAnalysis", "AudioTrack", "MediaInfo", "Prosody", "SpeechDetector", "SpeechSegment", "TONE_TABLE",
    "ToneScale", "Transcriber", "Transcript", "TranscriptSegment", "Word", "analyze_audio", "arousal_cue",
    "describe_tone", "get_speech_detector", "get_transcriber", "load_audio", "measure_prosody", "probe_media",
    "warm_up",
]
