"""The measured cues and the words read in an image, as the short phrases a caption prompt lists.

    Cues: one face, expression happy (0.93); bright (brightness 0.71); highly colourful (colorfulness 88);
          objects: balloon, birthday cake; body pose: both arms raised
    Words in the image: "WHEN THE CODE" / "WORKS FIRST TIME"     (the lines OCR read, or "none")

The phrases follow the few-shot examples' wording (``prompts/humour_fewshot.txt``), so the offline base
model meets in the request the pattern it saw in the examples.
"""

from __future__ import annotations

from ..cues.lowlevel import describe_brightness, describe_colorfulness
from ..cues.objects import short_name
from ..cues.perception import ImagePerception
from ..llm.text_checks import one_line

OBJECT_MIN_PROBABILITY = 0.15  # as the image tab's reason: weaker object guesses are noise
MAX_OBJECTS = 3
NO_WORDS = "none"
_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def cue_phrases(perception: ImagePerception) -> list[str]:
    faces = perception.faces
    if not faces:
        phrases = ["no face found"]
    elif len(faces) == 1:
        phrases = [f"one face, expression {faces[0].expression} ({faces[0].confidence:.2f})"]
    else:
        others = ", ".join(reading.expression for reading in faces[1:4])
        count = _COUNT_WORDS.get(len(faces), str(len(faces)))
        phrases = [f"{count} faces, the largest reads as {faces[0].expression} ({faces[0].confidence:.2f}), "
                   f"the others as {others}"]
    phrases.append(f"{describe_brightness(perception.brightness)} (brightness {perception.brightness:.2f})")
    phrases.append(f"{describe_colorfulness(perception.colorfulness)} (colorfulness {perception.colorfulness:.0f})")
    objects = list(dict.fromkeys(short_name(name) for name, p in perception.objects if p >= OBJECT_MIN_PROBABILITY))
    if objects:
        phrases.append("objects: " + ", ".join(objects[:MAX_OBJECTS]))
    if perception.pose.person_detected:
        phrases.append(f"body pose: {perception.pose.summary}")
    return phrases


def cue_line(phrases: list[str]) -> str:
    return "; ".join(one_line(phrase).rstrip(".;") for phrase in phrases)


def words_line(lines: list[str]) -> str:
    """The lines read in the image, each quoted (a quote inside becomes an apostrophe), or "none"."""
    if not lines:
        return NO_WORDS
    return " / ".join('"' + one_line(line).replace('"', "'") + '"' for line in lines)
