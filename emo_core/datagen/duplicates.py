"""Near-duplicate questions about one image, flagged (not rejected) so reviewers can see them.

Two questions count as near duplicates when rapidfuzz's token-sort ratio of their normalised words is
at least ``SIMILARITY`` (word order and punctuation aside, at most about a tenth of the text differs).
Questions are compared within a sample and with every sample of the same image written before it in
the run; a pair is recorded on whichever of its two samples was written later, so the set of flagged
pairs does not depend on the order in which a concurrent run finished them.
"""

from __future__ import annotations

import re
import threading

SIMILARITY = 90.0


def normalised(question: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", question.casefold()))


class QuestionIndex:
    def __init__(self):
        self._by_image: dict[str, list[tuple[str, str]]] = {}  # image hash -> (sample id, normalised question)
        self._lock = threading.Lock()

    def add(self, image_sha256: str, sample_id: str, questions: list[str]) -> list[dict]:
        """Records the questions of a sample; returns its near duplicates as
        ``{"question", "similar_to", "in_sample", "similarity"}`` (in_sample: the same id for a repeat within it)."""
        from rapidfuzz import fuzz

        found = []
        with self._lock:
            known = self._by_image.setdefault(image_sha256, [])
            for question in questions:
                mine = normalised(question)
                for other_id, other in known:
                    score = fuzz.token_sort_ratio(mine, other)
                    if score >= SIMILARITY:
                        found.append({"question": question, "similar_to": other, "in_sample": other_id,
                                      "similarity": round(score, 1)})
                known.append((sample_id, mine))
        return found
