"""Prosody numbers -> a tone description (Emotion-LLaMA's C_atd) and an arousal cue in [-1, 1].

Both come from ONE table, ``TONE_TABLE``, and are rules, not models: nothing here was trained or
fitted on emotion-labelled speech (no such data or model ships in a registry package). The direction
of each arousal rule follows the vocal-affect literature (Scherer 2003, Speech Communication 40;
Juslin & Laukka 2003, Psychological Bulletin 129): aroused speech (anger, joy, fear) is higher, more
varied in pitch, louder and faster than calm or sad speech. The anchor numbers are rules of thumb
for adult speech, stated in each row's ``basis``.

Two cautions the description cannot fix: pitch level depends on the speaker (men ~85-155 Hz, women
~165-255 Hz), and loudness in dBFS depends on microphone gain and normalisation, not only on the voice.
Both therefore weigh half as much as pitch variability and speaking rate in the arousal cue.
"""

from __future__ import annotations

from dataclasses import dataclass

from .prosody import Prosody


@dataclass(frozen=True)
class ToneScale:
    measure: str  # a Prosody field, or "pause_ratio" (derived: pause time / (pause time + speech time))
    unit: str
    low_below: float  # values under this get words[0]
    high_from: float  # values at or over this get words[2]; in between words[1]
    words: tuple[str, str, str]
    arousal_low: float | None  # value that maps to arousal -1 (linear in between, clipped); None: not used
    arousal_high: float | None  # value that maps to arousal +1
    arousal_weight: float
    basis: str


TONE_TABLE: tuple[ToneScale, ...] = (
    ToneScale(
        "pitch_median_hz", "Hz", 100.0, 230.0, ("low-pitched", "mid-pitched", "high-pitched"), 90.0, 280.0, 0.5,
        "rule of thumb: under 100 Hz is a deep (male) voice, over 230 Hz above the usual female speaking range",
    ),
    ToneScale(
        "pitch_variability_st", "semitones (SD)", 1.5, 3.5, ("monotonous", "moderately varied", "lively"),
        1.0, 5.0, 1.0,
        "rule of thumb: read and conversational speech varies by ~2-3 st; under 1.5 st sounds flat "
        "(espeak-ng's robot voice measures 1-2 st), over 3.5 st animated",
    ),
    ToneScale(
        "energy_dbfs", "dBFS", -35.0, -16.0, ("quiet", "moderately loud", "loud"), -40.0, -12.0, 0.5,
        "rule of thumb for recordings: loudness-normalised speech sits near -20 dBFS RMS; gain-dependent",
    ),
    ToneScale(
        "speaking_rate_wps", "words/s of speech", 2.0, 3.3, ("slow", "moderate-paced", "fast"), 1.5, 4.0, 1.0,
        "rule of thumb: conversational English runs ~150-200 words per minute (2.5-3.3 words/s); "
        "under 120 wpm (2 words/s) is slow",
    ),
    ToneScale(
        "pause_ratio", "share of the speaking time", 0.10, 0.25, ("few pauses", "some pauses", "many pauses"),
        None, None, 0.0,
        "rule of thumb: fluent reading spends ~10-20% of its time in pauses (>= 0.3 s), hesitant speech "
        "more; not used for arousal (long pauses come with both sad and anxious speech)",
    ),
)
_SCALES = {scale.measure: scale for scale in TONE_TABLE}


def measure_values(prosody: Prosody) -> dict[str, float | None]:
    """The values ``TONE_TABLE`` looks at, including the derived pause ratio."""
    values = {scale.measure: getattr(prosody, scale.measure, None) for scale in TONE_TABLE}
    speaking_time = prosody.speech_seconds + prosody.pause_seconds
    values["pause_ratio"] = prosody.pause_seconds / speaking_time if speaking_time > 0 else None
    return values


def level_word(measure: str, value: float | None) -> str | None:
    """The word ``TONE_TABLE`` gives ``value`` of ``measure`` (None when unmeasured)."""
    if value is None:
        return None
    scale = _SCALES[measure]
    if value < scale.low_below:
        return scale.words[0]
    return scale.words[2] if value >= scale.high_from else scale.words[1]


def describe_tone(prosody: Prosody) -> str:
    """One phrase, e.g. "high-pitched, lively and loud voice, fast speech with few pauses"."""
    values = measure_values(prosody)
    words = {measure: level_word(measure, value) for measure, value in values.items()}
    voice_words = [w for w in (words["pitch_median_hz"], words["pitch_variability_st"], words["energy_dbfs"]) if w]
    if len(voice_words) > 1:
        voice = f"{', '.join(voice_words[:-1])} and {voice_words[-1]} voice"
    elif voice_words:
        voice = f"{voice_words[0]} voice"
    else:
        voice = "voice of unmeasured pitch and loudness"
    pause_phrase = "no pauses" if prosody.pause_count == 0 else words["pause_ratio"]
    rate = words["speaking_rate_wps"]
    speech = f"{rate} speech with {pause_phrase}" if rate else f"speech with {pause_phrase}"
    return f"{voice}, {speech}"


def arousal_cue(prosody: Prosody) -> float | None:
    """A rule-based arousal cue in [-1, 1] (calm/low to excited/high), or None with nothing measured.

    Each measure with arousal anchors in ``TONE_TABLE`` maps linearly from -1 (at ``arousal_low``) to
    +1 (at ``arousal_high``), clipped; the cue is their weighted mean over the measures available.
    A rule, not a model: use it as one cue among others, never as a label on its own.
    """
    values = measure_values(prosody)
    total = weight_sum = 0.0
    for scale in TONE_TABLE:
        value = values.get(scale.measure)
        if value is None or scale.arousal_weight <= 0 or scale.arousal_low is None or scale.arousal_high is None:
            continue
        position = 2.0 * (value - scale.arousal_low) / (scale.arousal_high - scale.arousal_low) - 1.0
        total += scale.arousal_weight * min(1.0, max(-1.0, position))
        weight_sum += scale.arousal_weight
    return round(total / weight_sum, 3) if weight_sum else None
