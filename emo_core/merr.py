"""MERR annotation records (Emotion-LLaMA's dataset format): building and validating them.

One record per video, keyed by the video's name in a MERR JSON file:

    {"AU_list": [...], "visual_prior_list": [...], "audio_prior_list": [...], "peak_index": int,
     "peak_AU_list": [...], "pseu_emotion": str, "text": str, "smp_reason_caption": str}

``AU_list`` holds the AUs the peak rule used (the clip's most frequent active AUs),
``visual_prior_list`` the expression text (C_ved) of the peak frame's active AUs,
``audio_prior_list`` the tone description (C_atd), ``text`` the transcript (C_ls) and
``smp_reason_caption`` the reason (C_md).
"""

from __future__ import annotations

import re

MERR_FIELDS: dict[str, type] = {
    "AU_list": list,
    "visual_prior_list": list,
    "audio_prior_list": list,
    "peak_index": int,
    "peak_AU_list": list,
    "pseu_emotion": str,
    "text": str,
    "smp_reason_caption": str,
}
_AU = re.compile(r"^AU\d{2}$")


def build_record(*, rule_aus, peak_aus, visual_texts, tone, peak_index, pseudo_label, transcript, reason) -> dict:
    return {
        "AU_list": list(rule_aus),
        "visual_prior_list": list(visual_texts),
        "audio_prior_list": [tone] if tone else [],
        "peak_index": int(peak_index) if peak_index is not None else -1,
        "peak_AU_list": list(peak_aus),
        "pseu_emotion": pseudo_label,
        "text": transcript,
        "smp_reason_caption": reason,
    }


def validate_record(record: dict) -> list[str]:
    """Problems with ``record`` as a MERR sample (empty list: valid)."""
    problems = [f"missing field {name}" for name in MERR_FIELDS if name not in record]
    problems += [f"unexpected field {name}" for name in record if name not in MERR_FIELDS]
    for name, kind in MERR_FIELDS.items():
        if name in record and not isinstance(record[name], kind):
            problems.append(f"{name} should be {kind.__name__}, got {type(record[name]).__name__}")
    for name in ("AU_list", "peak_AU_list"):
        if isinstance(record.get(name), list):
            problems += [f"{name} has {code!r}, not an AU code" for code in record[name] if not _AU.match(str(code))]
    for name in ("visual_prior_list", "audio_prior_list"):
        if isinstance(record.get(name), list):
            problems += [f"{name} items must be strings" for item in record[name] if not isinstance(item, str)][:1]
    if isinstance(record.get("peak_index"), int) and record["peak_index"] < -1:
        problems.append("peak_index must be a frame index (or -1 without a face)")
    return problems
