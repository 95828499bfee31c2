"""What action units say, in one table each: AU -> expression text (C_ved), AU combinations ->
pseudo-label, and the peak-frame rule of MERR.

Texts follow MERR's style ("AU04 -> frowns, furrowed brows"); combinations follow the EMFACS
prototypes (Friesen & Ekman 1983) as MERR uses them (e.g. AU05 + AU26 -> surprise). A combination
scores the mean intensity of its AUs when all of them are active; the best-scoring one is the
pseudo-label, and no active AU at all means "neutral".

Blinks are kept out of the peak rule: a frame with closing eyes is the worst frame to show an
expression, and AU45 is movement, not expression. So AU45 is never one of the rule's "most frequent
AUs", and frames with closing eyes (``action_units.eyes_closing``) are never the peak unless every
frame has them.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .action_units import ACTIVE_THRESHOLD, AU_CODES, eyes_closing

AU_TEXT = {
    "AU01": "inner brows raised",
    "AU02": "outer brows raised",
    "AU04": "frowns, furrowed brows",
    "AU05": "eyes widened, upper lids raised",
    "AU06": "cheeks raised",
    "AU07": "eyelids tightened",
    "AU09": "nose wrinkled",
    "AU10": "upper lip raised",
    "AU12": "smiles, lip corners pulled up",
    "AU15": "lip corners pulled down",
    "AU17": "chin raised",
    "AU20": "lips stretched",
    "AU23": "lips tightened",
    "AU25": "lips parted",
    "AU26": "jaw dropped, mouth open",
    "AU45": "blinks",
}

# How a free text names a movement, and the AUs that show it: a reason written from the cues may
# name a movement only when one of its AUs is in them (``llm.reason_writer``). Each entry: (name,
# AUs, pattern over lower-case text, phrases a decoder can ban when none of the AUs was measured).
AU_MENTIONS: tuple[tuple[str, frozenset[str], str, tuple[str, ...]], ...] = (
    ("raised brows", frozenset({"AU01", "AU02"}),
     r"\braised (?:inner |outer )?(?:eye)?brows?\b|\b(?:eye)?brows? (?:are |were |is |was )?raised\b",
     ("raised eyebrows", "raised eyebrow", "raised brows", "raised brow", "eyebrows raised", "eyebrows are raised")),
    ("a frown", frozenset({"AU04"}), r"\bfrown\w*|\bfurrow\w*", ("frown", "frowns", "frowning", "furrowed")),
    ("widened eyes", frozenset({"AU05"}),
     r"\b(?:widened|wide|wide-open|wide open|raised) eyes\b|\beyes (?:are |were )?(?:widened|wide|raised)\b"
     r"|\braised (?:upper )?(?:eye)?lids?\b|\b(?:upper )?(?:eye)?lids (?:are |were )?raised\b",
     ("widened eyes", "wide eyes", "eyes widened", "raised eyes", "eyes are raised", "raised eyelids",
      "raised eyelid", "raised upper lids", "raised lids", "raised lid")),
    ("raised cheeks", frozenset({"AU06"}), r"\braised cheeks?\b|\bcheeks? (?:are |were |is |was )?raised\b",
     ("raised cheeks", "cheeks raised")),
    ("tightened eyelids", frozenset({"AU07"}),
     r"\b(?:tightened|narrowed) (?:eye)?(?:lids|eyes)\b|\b(?:eye)?lids (?:are |were )?tightened\b",
     ("tightened eyelids", "narrowed eyes")),
    ("a wrinkled nose", frozenset({"AU09"}), r"\bwrinkled nose\b|\bnose (?:is |was )?wrinkled\b",
     ("wrinkled nose", "nose wrinkled")),
    ("a raised upper lip", frozenset({"AU10"}),
     r"\b(?:raised|curled) upper lip\b|\bupper lip (?:is |was )?raised\b",
     ("raised upper lip", "upper lip raised")),
    ("a smile", frozenset({"AU12"}), r"\bsmil\w*|\bgrin\w*|\blip corners? (?:are |were )?pulled up\b",
     ("smile", "smiles", "smiling", "grin")),
    ("lowered lip corners", frozenset({"AU15"}),
     r"\b(?:lowered|downturned|drooping) (?:lip corners|mouth)\b|\blip corners? (?:are |were )?(?:pulled )?down\b",
     ("lowered lip corners", "downturned mouth")),
    ("a raised chin", frozenset({"AU17"}), r"\braised chin\b|\bchin (?:is |was )?raised\b", ("raised chin",)),
    ("stretched lips", frozenset({"AU20"}), r"\bstretched lips\b|\blips (?:are |were )?stretched\b",
     ("stretched lips", "lips stretched")),
    ("tightened lips", frozenset({"AU23"}),
     r"\b(?:tightened|pressed|tight) lips\b|\blips (?:are |were )?(?:tightened|pressed)\b",
     ("tightened lips", "pressed lips")),
    ("an open mouth", frozenset({"AU25", "AU26"}),
     r"\b(?:open|opened|dropped) (?:mouth|jaw|lips)\b|\bparted lips\b"
     r"|\b(?:mouth|jaw|lips) (?:is |was |are |were )?(?:open|opened|dropped|parted)\b",
     ("open mouth", "dropped jaw", "parted lips", "mouth open", "jaw dropped")),
    ("closed eyes", frozenset({"AU45"}),
     r"\b(?:closed|shut)(?:-off)? (?:eyes|eyelids|lids)\b|\b(?:eyes|eyelids|lids) (?:are |were |stay |remain )?(?:closed|shut)\b",
     ("closed eyes", "eyes closed", "eyes are closed", "eyes were closed", "closed eyelids", "lids were closed",
      "lids are closed", "closed-off eyes")),
)

# pseudo-label -> AU combinations (any one of them, all AUs active)
AU_COMBINATIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "happy": (("AU06", "AU12"), ("AU12", "AU25"), ("AU12",)),
    "sad": (("AU01", "AU04", "AU15"), ("AU01", "AU15"), ("AU15", "AU17")),
    "surprise": (("AU01", "AU02", "AU05", "AU26"), ("AU05", "AU26"), ("AU01", "AU02", "AU26")),
    "fear": (("AU01", "AU02", "AU04", "AU05", "AU20"), ("AU04", "AU05", "AU20"), ("AU01", "AU04", "AU20", "AU25")),
    "angry": (("AU04", "AU05", "AU07", "AU23"), ("AU04", "AU07", "AU23"), ("AU04", "AU07")),
    "disgust": (("AU09", "AU15"), ("AU09", "AU10"), ("AU10", "AU17")),
    "worried": (("AU01", "AU04"),),
}

PEAK_TOP_AUS = 3  # "the most frequent active AUs": this many, by number of frames active
NOT_EXPRESSION = ("AU45",)  # never among the peak rule's AUs


def describe(active_codes: list[str]) -> str:
    """C_ved: the expression text of the active AUs."""
    return "; ".join(AU_TEXT[code] for code in active_codes) if active_codes else "a neutral, relaxed face"


def pseudo_label(intensity_row: np.ndarray) -> tuple[str, float]:
    """(label, score) from one frame's AU intensities (score: mean intensity of the matched AUs)."""
    value = dict(zip(AU_CODES, intensity_row))
    best, best_score = "neutral", 0.0
    for label, combinations in AU_COMBINATIONS.items():
        for combination in combinations:
            if all(value[code] >= ACTIVE_THRESHOLD for code in combination):
                # longer matches are more specific: a small bonus per AU breaks ties
                score = float(np.mean([value[code] for code in combination])) + 0.1 * len(combination)
                if score > best_score:
                    best, best_score = label, score
    return best, best_score


def peak_frame(intensities: np.ndarray) -> tuple[int, list[str]]:
    """MERR's rule: take the most frequent active AUs, then the frame with the largest sum of their
    intensities. Returns (row index, the AUs used). With no active AU anywhere, the frame with the
    largest total intensity (row 0 if all are zero). Blinks are left out (see the module doc): AU45
    is not counted, and rows with closing eyes are not candidates unless all rows are. Pass
    unsaturated intensities (``intensities(..., saturate=False)``) so frames that all reach 5 are
    still told apart."""
    if len(intensities) == 0:
        raise ValueError("no frames")
    closing = eyes_closing(intensities)
    candidates = ~closing if not closing.all() else np.ones(len(intensities), dtype=bool)
    counts = Counter()
    for row in intensities[candidates]:
        counts.update(code for code, value in zip(AU_CODES, row)
                      if value >= ACTIVE_THRESHOLD and code not in NOT_EXPRESSION)
    top = [code for code, _ in counts.most_common(PEAK_TOP_AUS)]
    sums = np.array([_rule_sum(row, top) for row in intensities])
    sums[~candidates] = -np.inf
    return int(np.argmax(sums)), top


def peak_score(intensity_row: np.ndarray, rule_aus: list[str]) -> float:
    """A frame's score under the peak rule: the sum of the rule's AUs (of every expression AU when
    ``rule_aus`` is empty), or -inf for a frame with closing eyes, which is never the peak."""
    return float("-inf") if eyes_closing(intensity_row)[0] else _rule_sum(intensity_row, rule_aus)


def _rule_sum(intensity_row: np.ndarray, rule_aus: list[str]) -> float:
    codes = rule_aus or [code for code in AU_CODES if code not in NOT_EXPRESSION]
    return float(sum(intensity_row[AU_CODES.index(code)] for code in codes))
