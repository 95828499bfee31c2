"""The reason text the offline backend gives: sentences from ``prompts/offline_reason.txt`` filled
with measured cue values. It is a template, not a language model's output, and reads as such."""

from __future__ import annotations

from ..cues.lowlevel import describe_brightness, describe_colorfulness
from ..cues.objects import short_name
from ..cues.perception import ImagePerception
from ..prompts import sentence_table

OBJECT_MIN_PROBABILITY = 0.15


def compose_reason(perception: ImagePerception, label: str | None, probability: float) -> str:
    """The template reason; ``label`` is None when the offline default abstained (``probability`` is
    then the top probability of the flat distribution)."""
    sentences = sentence_table("offline_reason.txt")
    parts: list[str] = []
    faces = perception.faces
    if faces:
        main = faces[0]
        if len(faces) == 1:
            parts.append(sentences["one_face"].format(expression=main.expression, confidence=main.confidence))
        else:
            others = ", ".join(reading.expression for reading in faces[1:])
            parts.append(sentences["many_faces"].format(
                count=len(faces), expression=main.expression, confidence=main.confidence, others=others))
        key = "face_link" if label else "face_flat"
        parts.append(sentences[key].format(label=label, probability=probability))
    else:
        parts.append(sentences["no_face"])
    parts.append(sentences["low_level"].format(
        brightness=perception.brightness, brightness_level=describe_brightness(perception.brightness),
        colorfulness=perception.colorfulness, colorfulness_level=describe_colorfulness(perception.colorfulness)))
    objects = [f"{short_name(name)} ({p:.2f})" for name, p in perception.objects if p >= OBJECT_MIN_PROBABILITY]
    if objects:
        parts.append(sentences["objects"].format(objects=", ".join(objects[:3])))
    if perception.pose.person_detected:
        parts.append(sentences["pose"].format(action=perception.pose.summary))
    return " ".join(parts)
