"""What a reason may not say about a video clip, given the cues measured on it.

The video cues are the app's phrases (``video_emotion._cue_phrases``): a face cue with the active
action units' texts (``au_rules.AU_TEXT``) or "no face visible", a "voice:" cue with the tone scales'
level words (``audio.tone.TONE_TABLE``) or what the audio analysis found instead of speech, and a
"words:" cue with the transcript. ``ClipClaims(cues)`` reads them once and gives

- ``contradiction(text)``: why the text says a cue the other way round ("" if it does not): a still
  or calm face where action units were measured; a facial movement whose action units were not
  (``au_rules.AU_MENTIONS``); closed lips with an open mouth; "no words" or "no sound" where speech was
  heard; a voice described where none was; a voice level the tone scales did not measure ("fast" for
  slow speech);
- ``avoid_phrases()``: the same claims as fixed phrases, for the decoder's bans (``SmallLM.stream``'s
  ``avoid``). Phrases catch fewer spellings than the patterns, so the check still runs on the text.

These are patterns over words: a claim in words they do not know gets through. Cues of images (no
face cue, no voice) make no claims here.
"""

from __future__ import annotations

import re
from typing import Sequence

from ..audio.tone import TONE_TABLE
from ..video.au_rules import AU_MENTIONS, AU_TEXT

FACE_CUE = "face at the peak frame:"
STILL_FACE_CUES = ("a neutral, relaxed face", "no strong movement")  # au_rules.describe with no active AU
NO_SPEECH_CUES = ("no audio track", "silent audio track", "no speech detected", "no voice")
OPEN_MOUTH_CUES = ("mouth open", "jaw dropped", "lips parted")

_STILL_FACE = re.compile(
    r"\b(?:face|expression|features)\b[^.;]{0,25}?\b(?:still|motionless|unmoving|blank|unchanged"
    r"|(?:does|do)(?: not|n't) (?:move|change)|not moving)\b"
    r"|\bno (?:strong |facial |visible )?movement\b|\bno facial expressions?\b"
    r"|\b(?:calm|relaxed|empty) (?:face|expression)\b"
    r"|\bface (?:is|was|looks|stays|remains|has a|had a) (?:calm|relaxed)\b")
_MOUTH_CLOSED = re.compile(r"\b(?:closed|shut) (?:mouth|lips)\b"
                           r"|\b(?:mouth|lips) (?:is |are |was |were |stays? |remains? )?(?:closed|shut)\b")
_NOTHING_SAID = re.compile(r"\b(?:no|without) (?:words|speech|talking|spoken words)\b"
                           r"|\bwords are not (?:spoken|said)\b|\b(?:says|said) nothing\b|\bnot (?:speaking|talking)\b")
_NOTHING_HEARD = re.compile(r"\b(?:no|without any|without a|not any) (?:sound|voice|audio)\b"
                            r"|\bnothing (?:is |was )?heard\b|\b(?:not|never|can't be|cannot be) heard\b"
                            r"|\b(?:silent|silence|inaudible)\b")
_VOICE_WORDS = ("even", "loud", "quiet", "soft", "high-pitched", "low-pitched", "mid-pitched", "fast", "slow",
                "monotonous", "lively", "flat", "shaky", "trembling")
# "even though no speech was heard" describes no voice: "even" counts only as an adjective
_ANY_VOICE_WORD = "|".join(word if word != "even" else r"even(?!\s+(?:though|if|when|so|as|more|less|with|a|the))"
                           for word in _VOICE_WORDS)
_VOICE_DESCRIBED = re.compile(rf"\b(?:voice|tone|speech)\b[^.;]{{0,30}}?\b(?:{_ANY_VOICE_WORD})\b"
                              rf"|\b(?:{_ANY_VOICE_WORD})\b[^.;]{{0,30}}?\b(?:voice|speech)\b"
                              r"|\b(?:high|low|mid)[- ]pitch\w*"
                              # "a cheerful voice": any word before "voice" but an article, a possessive or "no"
                              r"|\b(?!(?:no|any|a|an|the|his|her|their|its|of|or|and)\b)[a-z-]+ voice\b")
_HYPHEN_SPACE = re.compile(r"(\w)- (\w)")  # the model writes "high- pitched" too

_STILL_FACE_PHRASES = ("no facial expression", "no facial expressions", "no movement", "calm face", "relaxed face",
                       "empty face", "face is calm", "face is relaxed", "face has a calm", "calm expression",
                       "relaxed expression")
_MOUTH_CLOSED_PHRASES = ("closed mouth", "mouth closed", "closed lips", "lips closed", "mouth is closed",
                         "lips are closed")
_NOTHING_HEARD_PHRASES = ("no sound", "no voice", "no audio", "silent", "silence", "inaudible", "not heard",
                          "can't be heard", "cannot be heard")
_NOTHING_SAID_PHRASES = ("no words", "no speech")
# where no speech was heard, a voice described in the tone scales' words or in those the model reaches for
_VOICE_PHRASES = tuple(f"{word} voice"
                       for word in (*_VOICE_WORDS, "neutral", "calm", "low", "high", "steady", "clear", "cheerful", "relaxed"))


class ClipClaims:
    """The claims about a clip that its cues contradict (see the module doc)."""

    def __init__(self, cues: Sequence[str]):
        lines = [cue.lower() for cue in cues]
        face_cue = next((cue for cue in lines if cue.startswith(FACE_CUE)), "")
        voice_cue = next((cue for cue in lines if cue.startswith("voice:")), "")
        self.face_moves = bool(face_cue) and not any(still in face_cue for still in STILL_FACE_CUES)
        self.mouth_open = any(cue in face_cue for cue in OPEN_MOUTH_CUES)
        self.unmeasured_movements = [(name, re.compile(pattern), bans) for name, codes, pattern, bans in AU_MENTIONS
                                     if face_cue and not any(AU_TEXT[code] in face_cue for code in codes)]
        self.no_speech = any(phrase in voice_cue for phrase in NO_SPEECH_CUES) or "no voice" in lines
        self.speech_heard = bool(voice_cue) and not self.no_speech
        self.voice_levels = voice_levels(voice_cue) if self.speech_heard else {}
        self.words_quoted = any(cue.startswith("words:") for cue in lines)

    def contradiction(self, text: str) -> str:
        lowered = _HYPHEN_SPACE.sub(r"\1-\2", text.lower())
        if self.face_moves and _STILL_FACE.search(lowered):
            return "the language model called the face still, but the cues report facial movement"
        for name, pattern, _ in self.unmeasured_movements:
            if pattern.search(lowered):
                return f"the language model named a facial movement that was not measured ({name})"
        if self.mouth_open and _MOUTH_CLOSED.search(lowered):
            return "the language model said the mouth was closed, but the cues report it open"
        if self.words_quoted and _NOTHING_SAID.search(lowered):
            return "the language model said nothing was said, but the cues quote the words"
        if self.speech_heard and _NOTHING_HEARD.search(lowered):
            return "the language model said nothing was heard, but the cues describe the voice"
        if self.no_speech and _VOICE_DESCRIBED.search(lowered):
            return "the language model described a voice, but no speech was heard"
        for word, measured in self.voice_levels.items():
            if re.search(rf"\b{word}\b", lowered):
                return f"the language model called the voice {word}, but it was measured {measured}"
        return ""

    def avoid_phrases(self) -> list[str]:
        """The contradicting claims as lower-case phrases (the caller adds spaces and capitals)."""
        phrases: list[str] = []
        if self.face_moves:
            phrases += _STILL_FACE_PHRASES
        for _, _, bans in self.unmeasured_movements:
            phrases += bans
        phrases += [spelling for level in self.voice_levels for spelling in (level, level.replace("-", "- "))]
        if self.mouth_open:
            phrases += _MOUTH_CLOSED_PHRASES
        if self.speech_heard:
            phrases += _NOTHING_HEARD_PHRASES
        if self.words_quoted:
            phrases += _NOTHING_SAID_PHRASES
        if self.no_speech:
            phrases += _VOICE_PHRASES
        return list(dict.fromkeys(phrases))


def voice_levels(voice_cue: str) -> dict[str, str]:
    """Level words of the tone scales that contradict ``voice_cue``: for each scale whose level the cue
    gives, the other levels' words (and their other spellings) -> the measured one ("fast" -> "slow")."""
    contradicting = {}
    for scale in TONE_TABLE:
        measured = next((word for word in scale.words if word in voice_cue), None)
        if measured is None:
            continue
        for word in scale.words:
            if word == measured:
                continue
            for form in _level_forms(word):
                if form not in measured and form not in voice_cue:
                    contradicting[form] = measured
    return contradicting


def _level_forms(word: str) -> list[str]:
    # "high-pitched" is also written "high pitch"; "moderately loud" is no claim of its own
    if word.endswith("-pitched"):
        return [word] + [word.replace("-pitched", other) for other in (" pitch", "-pitch", "-voiced")]
    return [] if word.startswith("moderate") else [word]
