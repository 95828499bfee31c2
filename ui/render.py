"""Turning emo_core results into pictures and tables for the UI (no model logic here)."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from .markdown_text import escape_markdown

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
    """A copy of ``image`` with each face boxed and labelled ``n: expression confidence``."""
    return draw_boxes(image, [(face.box, f"{index}: {face.expression} {face.confidence:.2f}", face.expression)
                              for index, face in enumerate(faces, start=1)])


def draw_boxes(image: Image.Image, boxes: list[tuple[tuple[int, int, int, int], str, str]]) -> Image.Image:
    """A copy of ``image`` with (box, text, expression) drawn; the expression picks the colour."""
    canvas = image.copy()
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(max(canvas.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(canvas.size) / 45)))
    for box, text, expression in boxes:
        colour = EXPRESSION_COLOURS.get(expression, (255, 200, 0))
        x0, y0, x1, y1 = box
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=line)
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


def answer_markdown(result, streaming: bool = False) -> str:
    """The image answer as Markdown: the label with its probability only where there is one (none when
    the offline default abstains), the answer, what it rests on and who wrote the reason, limits and
    notes. Every piece from a model, the file or Pillow is escaped."""
    label = escape_markdown(result.label or ("…" if streaming else "unparsed"), one_line=True)
    if result.abstained:
        headline = f"## No label: {escape_markdown(result.abstained, one_line=True)}"
    elif result.confidence is not None:
        headline = f"## {label}  ·  {result.confidence:.0%}"
    else:
        headline = f"## {label}" + ("  ·  read from the model's answer (no probabilities)" if result.label else "")
    answer = result.answer + (" …" if streaming else "")
    lines = [headline, f"**{escape_markdown(answer)}**", ""]
    if result.basis:
        reason = f" *Reason:* {escape_markdown(result.reason_note)}." if result.reason_note else ""
        lines.append(f"*Based on:* {escape_markdown(result.basis)}.{reason} *Backend:* {escape_markdown(result.backend)}.")
    if result.limits:
        lines += ["", "*Limits of the offline default for this class set:* "
                  + escape_markdown("; ".join(result.limits)) + "."]
    if result.answer_notes and not streaming:
        lines += ["", "*About the answer:* " + escape_markdown("; ".join(result.answer_notes)) + "."]
    if result.notes:
        lines += ["", "*Input notes:* " + escape_markdown("; ".join(result.notes)) + "."]
    return "\n".join(lines)


def au_plot(au_series: dict[str, list[float]], peak_time: float | None, highlight: list[str]):
    """AU intensities over time (the AUs that are ever active, plus the peak rule's), peak marked."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.2), dpi=100, layout="constrained")
    axes = figure.subplots()
    times = au_series.get("time", [])
    shown = [code for code in au_series if code != "time" and (max(au_series[code], default=0) >= 1.0
                                                              or code in highlight)]
    for code in shown:
        axes.plot(times, au_series[code], label=code, linewidth=2.2 if code in highlight else 1.0)
    if peak_time is not None:
        axes.axvline(peak_time, color="#d9480f", linestyle="--", linewidth=1.5, label=f"peak {peak_time:.2f} s")
    axes.set_ylim(0, 5.2)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("AU intensity (0-5, landmark proxy)")
    axes.set_title("Action units of the main face" if times else "No face: no action units", fontsize=10)
    if shown or peak_time is not None:
        axes.legend(fontsize=8, ncol=4, loc="upper left")
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def voice_plot(waveform: list[float], rate: float, pitch_times: list[float], pitch_hz: list[float],
               segments: list[list[float]]):
    """Waveform with speech segments shaded, and the pitch track on a second axis."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.2), dpi=100, layout="constrained")
    axes = figure.subplots()
    if waveform:
        times = [i / rate for i in range(len(waveform))]
        axes.fill_between(times, [-v for v in waveform], waveform, color="#868e96", linewidth=0)
    for start, end in segments:
        axes.axvspan(start, end, color="#74c0fc", alpha=0.3)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("amplitude")
    axes.set_title("Voice: waveform, speech (blue), pitch (red)" if waveform else "No audio", fontsize=10)
    if pitch_times:
        pitch_axes = axes.twinx()
        pitch_axes.plot(pitch_times, pitch_hz, ".", color="#e03131", markersize=2.5)
        pitch_axes.set_ylabel("pitch (Hz)")
    axes.spines[["top"]].set_visible(False)
    return figure
