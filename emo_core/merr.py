"""MERR annotation records (Emotion-LLaMA's dataset format): building and validating them.

One record per video, keyed by the video's name in a MERR JSON file:

    {"AU_list": [...], "visual_prior_list": [...], "audio_prior_list": [...], "peak_index": int,
     "peak_AU_list": [...], "pseu_emotion": str, "text": str, "smp_reason_caption": str,
     "multimodal_description": str, "provenance": {...}}

``AU_list`` holds the AUs the peak rule used (the clip's most frequent active AUs),
``visual_prior_list`` the expression text (C_ved) of the peak frame's active AUs,
``audio_prior_list`` the tone description (C_atd), ``text`` the transcript (C_ls) and
``smp_reason_caption`` the reason. The last two fields are not in the public MERR release:
``multimodal_description`` is C_md, the cues merged into one description (MERR has an LLM merge
them; offline it is composed from fixed sentences), and ``provenance`` says how each part was made,
so nobody mixes these records with the public MERR unknowingly: its action units are geometric
proxies on FaceMesh landmarks (not OpenFace), its tone comes from prosody rules (not an audio LLM),
and its reason from the small language model, another model, or a template (see ``REASON_SOURCES``).
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
    "multimodal_description": str,
    "provenance": dict,
}

# How each part of a record is made; the values a provenance field may hold.
AU_SOURCE = "landmark_proxies"  # geometric measures on MediaPipe FaceMesh landmarks, not OpenFace
TONE_SOURCE = "rules"  # prosody numbers described by a fixed table (emo_core.audio.tone), not an audio LLM
DESCRIPTION_SOURCE = "template"  # C_md composed from the cues by fixed sentences, not merged by an LLM
PSEUDO_LABEL_SOURCE = "au_combinations"  # EMFACS-style AU combinations (emo_core.video.au_rules)
REASON_SOURCES = {
    "small_lm": "written by the bundled small language model (Gemma 3 270M) from the cue phrases",
    "template": "filled from the measured cues by fixed sentences",
    "model": "written by the chosen backend's model (named in reason_model)",
    "none": "no reason was asked for (the emotion task)",
}
PROVENANCE_NOTE = ("Made by EmoLens, not taken from the public MERR release: action units are landmark proxies, "
                   "not OpenFace; the tone comes from prosody rules; the description from fixed sentences.")
_AU = re.compile(r"^AU\d{2}$")


def provenance(*, reason_source: str, reason_model: str = "", class_set: str = "", dataset: str = "") -> dict:
    """The ``provenance`` field: where each part of the record comes from."""
    if reason_source not in REASON_SOURCES:
        raise ValueError(f"reason_source must be one of {', '.join(REASON_SOURCES)}, got {reason_source!r}")
    return {
        "au_source": AU_SOURCE,
        "pseudo_label_source": PSEUDO_LABEL_SOURCE,
        "tone_source": TONE_SOURCE,
        "description_source": DESCRIPTION_SOURCE,
        "reason_source": reason_source,
        "reason_model": reason_model,
        "class_set": class_set,  # the class set the reason's label was chosen from
        "dataset": dataset,  # the dataset that class set was asked by, if any
        "note": PROVENANCE_NOTE,
    }


def build_record(*, rule_aus, peak_aus, visual_texts, tone, peak_index, pseudo_label, transcript, reason,
                 description, reason_source, reason_model="", class_set="", dataset="") -> dict:
    return {
        "AU_list": list(rule_aus),
        "visual_prior_list": list(visual_texts),
        "audio_prior_list": [tone] if tone else [],
        "peak_index": int(peak_index) if peak_index is not None else -1,
        "peak_AU_list": list(peak_aus),
        "pseu_emotion": pseudo_label,
        "text": transcript,
        "smp_reason_caption": reason,
        "multimodal_description": description,
        "provenance": provenance(reason_source=reason_source, reason_model=reason_model, class_set=class_set,
                                 dataset=dataset),
    }


def set_reason(record: dict, reason: str, source: str, model: str = "") -> None:
    """Put the final reason into ``record`` with the provenance of who wrote it."""
    if source not in REASON_SOURCES:
        raise ValueError(f"reason source must be one of {', '.join(REASON_SOURCES)}, got {source!r}")
    record["smp_reason_caption"] = reason
    record["provenance"] = dict(record["provenance"], reason_source=source, reason_model=model)


def validate_record(record: dict) -> list[str]:
    """Problems with ``record`` as an EmoLens MERR sample (empty list: valid)."""
    if not isinstance(record, dict):
        return [f"a record must be a JSON object, got {type(record).__name__}"]
    problems = [f"missing field {name}" for name in MERR_FIELDS if name not in record]
    problems += [f"unexpected field {name}" for name in record if name not in MERR_FIELDS]
    for name, kind in MERR_FIELDS.items():
        # bool is an int in Python, never a frame index
        if name in record and (not isinstance(record[name], kind) or isinstance(record[name], bool)):
            problems.append(f"{name} should be {kind.__name__}, got {type(record[name]).__name__}")
    for name in ("AU_list", "peak_AU_list"):
        if isinstance(record.get(name), list):
            problems += [f"{name} has {code!r}, not an AU code" for code in record[name] if not _AU.match(str(code))]
    for name in ("visual_prior_list", "audio_prior_list"):
        if isinstance(record.get(name), list):
            problems += [f"{name} items must be strings" for item in record[name] if not isinstance(item, str)][:1]
    if isinstance(record.get("peak_index"), int) and record["peak_index"] < -1:
        problems.append("peak_index must be a frame index (or -1 without a face)")
    if isinstance(record.get("provenance"), dict):
        problems += _provenance_problems(record["provenance"], record.get("smp_reason_caption"))
    return problems


def _provenance_problems(given: dict, reason) -> list[str]:
    fixed = {"au_source": AU_SOURCE, "pseudo_label_source": PSEUDO_LABEL_SOURCE, "tone_source": TONE_SOURCE,
             "description_source": DESCRIPTION_SOURCE}
    problems = [f"provenance.{name} should be {value!r}, got {given.get(name)!r}"
                for name, value in fixed.items() if given.get(name) != value]
    source = given.get("reason_source")
    if source not in REASON_SOURCES:
        problems.append(f"provenance.reason_source should be one of {', '.join(REASON_SOURCES)}, got {source!r}")
    elif source == "none" and reason != "":
        problems.append("provenance.reason_source is 'none' but smp_reason_caption holds a reason")
    elif source in ("small_lm", "template") and reason == "":
        problems.append(f"provenance.reason_source is {source!r} but smp_reason_caption is empty")
    if source == "model" and not given.get("reason_model"):
        problems.append("provenance.reason_model must name the model that wrote the reason")
    return problems
