"""What the desk shows of a sample besides its conversation: the attributes with their source, and the caption.

A generator writes attributes as ``{name: {"value": v, "source": "given" | "measured"}}`` (a bare value
or a list of ``{"name", "value", "source"}`` entries is read too). The caption is the ``caption``
attribute, or a top-level or provenance ``caption``.
"""

from __future__ import annotations


def attribute_rows(sample: dict) -> list[tuple[str, str, str]]:
    """``(name, value, source)`` per attribute except the caption, in the sample's order."""
    attributes = sample.get("attributes") or {}
    if isinstance(attributes, list):
        entries = [(str(entry.get("name", "")), entry) for entry in attributes if isinstance(entry, dict)]
    elif isinstance(attributes, dict):
        entries = list(attributes.items())
    else:
        entries = []
    rows = []
    for name, entry in entries:
        if name == "caption":
            continue
        if isinstance(entry, dict):
            rows.append((str(name), _text(entry.get("value")), str(entry.get("source") or "unknown")))
        else:
            rows.append((str(name), _text(entry), "unknown"))
    return rows


def caption(sample: dict) -> str | None:
    attributes = sample.get("attributes")
    if isinstance(attributes, dict) and "caption" in attributes:
        entry = attributes["caption"]
        value = entry.get("value") if isinstance(entry, dict) else entry
        if value:
            return str(value)
    for holder in (sample, sample.get("provenance") or {}):
        if isinstance(holder, dict) and holder.get("caption"):
            return str(holder["caption"])
    return None


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)
