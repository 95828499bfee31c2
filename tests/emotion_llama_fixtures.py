"""Generated clips and a MERR file for Emotion-LLaMA's training and inference tests (nothing in git).

Two 1.5 s clips of the astronaut's face whose jaw drops at different frames, one with espeak-ng speech
and one without sound, and MERR records for them in our pipeline's layout (the texts are fixture text).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests import media, media_av

FPS = 20


def write_clips(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    speech = media_av.speech_wav("we won today", folder / "speech.wav", pitch=60, speed=170)
    talking = media.frame_function(media.expression_frames(n_frames=30, peak=12, rise=5), FPS)
    quiet = media.frame_function(media.expression_frames(n_frames=30, peak=22, rise=4, amount=10.0), FPS)
    return {"talk.mp4": media_av.mux_video(talking, speech, folder / "talk.mp4", FPS, duration=1.5),
            "quiet.mp4": media_av.mux_video(quiet, None, folder / "quiet.mp4", FPS, duration=1.5)}


RECORDS = {
    "talk.mp4": {"visual_prior_list": ["mouth opens wide", "jaw drops"], "audio_prior_list": ["loud, rising voice"],
                 "text": "we won today", "pseu_emotion": "surprise",
                 "multimodal_description": "A woman opens her mouth wide while saying that they won.",
                 "smp_reason_caption": "Her open mouth and rising voice show surprise at the win."},
    "quiet.mp4": {"visual_prior_list": ["lips part slightly"], "audio_prior_list": [], "text": "",
                  "pseu_emotion": "neutral", "multimodal_description": "A woman with a calm face says nothing.",
                  "smp_reason_caption": "Her face stays calm and she is silent."},
}


def write_merr(path: Path, records: dict | None = None) -> Path:
    path.write_text(json.dumps(RECORDS if records is None else records, indent=1), encoding="utf-8")
    return path


def write_clip_set(folder: Path, count: int) -> dict:
    """``count`` mute clips whose jaw drops at different frames, and MERR records for them."""
    folder.mkdir(parents=True, exist_ok=True)
    records = {}
    for n in range(count):
        name = f"clip{n:02d}.mp4"
        frames = media.expression_frames(n_frames=30, peak=6 + (n * 5) % 20, rise=4, amount=8.0 + n % 8)
        media_av.mux_video(media.frame_function(frames, FPS), None, folder / name, FPS, duration=1.5)
        records[name] = dict(RECORDS["quiet.mp4"], visual_prior_list=[f"jaw drops by {8 + n % 8} pixels"])
    return records
