"""The papers' published numbers, for ``compare`` to show beside ours (labelled as published).

Only numbers written in the papers' texts (docs/papers.md says which parts we follow):

- EmoVIT (Xie et al., CVPR 2024) Table 1, held-out accuracy (%); its WebEmo column is the 25-class
  set, ours is WebEmo-7, so that cell is marked as not comparable. Table 3, UnbiasedEmo accuracy (%).
  Its Sensitivity comparison (Sec. 4.3.2) is given only as a figure (Fig. 7), with no numbers in the
  text: none is shown.
- Emotion-LLaMA (Cheng et al., 2024): MER2023 F1 0.9036 and DFEW zero-shot UAR 45.59 / WAR 59.37 (%),
  from the abstract.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    system: str
    source: str
    values: dict[str, float | tuple[float, float]]  # dataset -> accuracy %, F1, or (UAR %, WAR %)
    notes: dict[str, str]  # dataset -> why a number is not directly comparable


_TABLE1_COLUMNS = ("WebEmo", "FI", "Emotion6", "Abstract", "ArtPhoto", "IAPSa", "EmotionROI", "EmoSet")
_TABLE1 = {
    "Flamingo": (9.36, 14.91, 21.67, 3.57, 17.5, 10.13, 21.72, 29.59),
    "LLaVA": (12.55, 56.04, 49.44, 19.54, 36.25, 42.43, 46.46, 44.03),
    "BLIP2": (20.10, 57.72, 50.00, 28.57, 36.25, 39.24, 50.51, 46.79),
    "InstructBLIP": (12.80, 37.97, 46.11, 21.42, 26.25, 34.18, 46.13, 42.20),
    "EmoVIT": (21.12, 68.09, 57.81, 32.34, 44.90, 44.13, 53.87, 83.36),
}
_WEBEMO_NOTE = "the paper's WebEmo column has 25 classes; this run uses WebEmo-7"

PUBLISHED: tuple[Published, ...] = tuple(
    Published(system, "EmoVIT Table 1, accuracy %", dict(zip(_TABLE1_COLUMNS, values)), {"WebEmo": _WEBEMO_NOTE})
    for system, values in _TABLE1.items()
) + (
    Published("Curriculum Learning", "EmoVIT Table 3, accuracy %", {"UnbiasedEmo": 74.27}, {}),
    Published("EmoVIT", "EmoVIT Table 3, accuracy %", {"UnbiasedEmo": 74.72}, {}),
    Published("Emotion-LLaMA", "Emotion-LLaMA abstract: MER2023 F1; DFEW zero-shot UAR / WAR %",
              {"MER2023": 0.9036, "DFEW": (45.59, 59.37)}, {}),
)

SENSITIVITY_NOTE = "EmoVIT gives Sensitivity only as a figure (Fig. 7): no published numbers to show"
