"""Turning emo_core results into pictures and tables for the UI (no model logic here)."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

EXPRESSION_COLOURS = {
    "happy": (46, 160, 67), "surprise": (230, 160, 20), "neutral": (120, 120, 120), "sad": (50, 100, 200),
    "angry": (210, 40, 40), "fear": (140, 60, 180), "disgust": (120, 140, 20),
}


def bar_chart(distribution: dict[str, float], highlight: str | None, title: str):
    """A horizontal bar chart of class probabilities, the predicted class highlighted."""
    from matplotlib.figure import Figure

    labels = list(distribution)
    values = [distribution[label] for label in labels]
    figure = Figure(figsize=(6, 0.45 * len(labels) + 1.0), dpi=100, layout="constrained")
    axes = figure.subplots()
    colours = ["#d9480f" if label == highlight else "#4c6ef5" for label in labels]
    bars = axes.barh(labels[::-1], values[::-1], color=colours[::-1])
    axes.bar_label(bars, labels=[f"{v:.2f}" for v in values[::-1]], padding=3, fontsize=9)
    axes.set_xlim(0, max(1.0, max(values, default=0) * 1.15))
    axes.set_xlabel("probability")
    axes.set_title(title, fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def draw_faces(image: Image.Image, faces) -> Image.Image:
    """A copy of ``image`` with each face boxed and labelled ``expression confidence``."""
    canvas = image.copy()
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(max(canvas.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(canvas.size) / 45)))
    for index, face in enumerate(faces, start=1):
        colour = EXPRESSION_COLOURS.get(face.expression, (255, 255, 0))
        x0, y0, x1, y1 = face.box
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=line)
        text = f"{index}: {face.expression} {face.confidence:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        text_y = y0 - (bottom - top) - 2 * line if y0 - (bottom - top) - 2 * line >= 0 else y1 + line
        draw.rectangle((x0, text_y, x0 + right - left + 2 * line, text_y + bottom - top + 2 * line), fill=colour)
        draw.text((x0 + line, text_y + line - top), text, fill=(255, 255, 255), font=font)
    return canvas


def cue_rows(cues: dict) -> list[list[str]]:
    """EmoVIT's attribute list as (attribute, value) rows."""
    expressions = cues["facial_expressions"]
    rows = [
        ["brightness", f"{cues['brightness']:.2f} ({cues['brightness_level']})"],
        ["colorfulness", f"{cues['colorfulness']:.1f} ({cues['colorfulness_level']}, Hasler-Süsstrunk)"],
        ["face count", str(cues["face_count"])],
        ["facial expression", "; ".join(
            f"face {i}: {e['expression']} {e['confidence']:.2f}" for i, e in enumerate(expressions, 1)) or "no face"],
        ["object class", ", ".join(f"{o['class']} {o['probability']:.2f}" for o in cues["object_classes"])],
        ["human action", f"{cues['human_action']} (rules on mediapipe pose landmarks)"],
    ]
    rows += [[name, f"not measured: {why}"] for name, why in cues["not_measured"].items()]
    return rows


def answer_markdown(result) -> str:
    label = result.label or "unparsed"
    lines = [
        f"## {label}  ·  {result.confidence:.0%}",
        f"**{result.answer}**",
        "",
        f"*Based on:* {result.basis}. *Backend:* {result.backend}.",
    ]
    if result.notes:
        lines += ["", "*Input notes:* " + "; ".join(result.notes) + "."]
    return "\n".join(lines)
