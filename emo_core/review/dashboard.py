"""What the review produced: dashboard figures, the decisions export, and the accepted samples of a run.

- ``dashboard(store)``: counts per state and type, acceptance rate per type and per prompt version,
  reject reasons, agreement per type (Cohen's kappa on accept/reject over the overlap samples both
  annotators decided, in the order they decided; mean normalised edit distance of edits), and each
  annotator's counts.
- ``decision_rows(store)``: every decision, one dict each (the desk's JSONL export).
- ``accepted_versions(data_dir, run_id)``: per sample id the latest accepted version of the sample
  (edited conversations applied), for the generator's export; None if the run was never imported.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator

from ..store import Store, store_path
from .agreement import cohen_kappa, edit_distance
from .conversation_text import to_text
from .runs import SAMPLE_TYPES, open_review_store

STATES = ("pending", "accepted", "rejected", "conflict")


def _rate(accepted: int, rejected: int) -> float | None:
    return accepted / (accepted + rejected) if accepted + rejected else None


def dashboard(store: Store) -> dict:
    open_review_store(store)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATES, 0))
    by_version: dict[str, Counter] = defaultdict(Counter)
    for row in store.read("SELECT type, prompt_version, state, COUNT(*) AS n FROM review_items "
                          "GROUP BY type, prompt_version, state"):
        counts[row["type"]][row["state"]] += row["n"]
        by_version[row["prompt_version"]][row["state"]] += row["n"]
    types = [kind for kind in SAMPLE_TYPES if kind in counts] + sorted(set(counts) - set(SAMPLE_TYPES))
    reasons = Counter({row["reason"]: row["n"] for row in store.read(
        "SELECT reason, COUNT(*) AS n FROM review_decisions WHERE action = 'reject' GROUP BY reason")})
    annotators: dict[str, Counter] = defaultdict(Counter)
    for row in store.read("SELECT annotator, action, adjudication, COUNT(*) AS n FROM review_decisions "
                          "GROUP BY annotator, action, adjudication"):
        annotators[row["annotator"]]["adjudicated" if row["adjudication"] else row["action"]] += row["n"]
    return {
        "counts": {kind: dict(counts[kind]) for kind in types},
        "acceptance_by_type": {kind: _rate(counts[kind]["accepted"], counts[kind]["rejected"]) for kind in types},
        "acceptance_by_prompt_version": {version: _rate(c["accepted"], c["rejected"])
                                         for version, c in sorted(by_version.items())},
        "reject_reasons": dict(reasons.most_common()),
        "agreement": agreement(store),
        "annotators": {name: dict(c) for name, c in sorted(annotators.items())},
    }


def agreement(store: Store) -> dict[str, dict]:
    """Per sample type: kappa over the decided overlap pairs, and how much the edits changed the text."""
    pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    decided: dict[int, list] = defaultdict(list)
    for row in store.read("SELECT i.item_id, i.type, d.action FROM review_decisions d JOIN review_items i "
                          "ON i.item_id = d.item_id WHERE i.reviews_needed = 2 AND d.action != 'skip' "
                          "AND d.adjudication = 0 ORDER BY d.decision_id"):
        decided[row["item_id"]].append((row["type"], "reject" if row["action"] == "reject" else "accept"))
    for outcomes in decided.values():
        if len(outcomes) == 2:
            pairs[outcomes[0][0]].append((outcomes[0][1], outcomes[1][1]))
    distances: dict[str, list[float]] = defaultdict(list)
    for row in store.read("SELECT i.type, i.sample, v.conversations FROM review_decisions d "
                          "JOIN review_items i ON i.item_id = d.item_id JOIN review_versions v ON v.version_id = d.version_id "
                          "WHERE d.action = 'edit' AND d.adjudication = 0"):
        original = to_text(json.loads(row["sample"])["conversations"])
        distances[row["type"]].append(edit_distance(original, to_text(json.loads(row["conversations"]))))
    result = {}
    for kind in sorted(set(pairs) | set(distances)):
        first, second = [a for a, _ in pairs[kind]], [b for _, b in pairs[kind]]
        edits = distances[kind]
        result[kind] = {
            "pairs": len(first),
            "observed_agreement": sum(a == b for a, b in pairs[kind]) / len(first) if first else None,
            "kappa": cohen_kappa(first, second),
            "edits": len(edits),
            "mean_edit_distance": sum(edits) / len(edits) if edits else None,
        }
    return result


def decision_rows(store: Store) -> Iterator[dict]:
    """Every decision with its sample's run, id and type (and the edited conversation, if any)."""
    open_review_store(store)
    for row in store.read("SELECT d.*, i.run_id, i.sample_id, i.type, v.conversations FROM review_decisions d "
                          "JOIN review_items i ON i.item_id = d.item_id LEFT JOIN review_versions v "
                          "ON v.version_id = d.version_id ORDER BY d.decision_id"):
        yield {"run_id": row["run_id"], "sample_id": row["sample_id"], "type": row["type"],
               "annotator": row["annotator"], "action": row["action"], "adjudication": bool(row["adjudication"]),
               "reason": row["reason"], "note": row["note"], "decided_at": row["decided_at"],
               "conversations": json.loads(row["conversations"]) if row["conversations"] else None}


def accepted_versions(data_dir: Path, run_id: str) -> dict[str, dict] | None:
    """Per sample id of the run, the accepted sample (the accepted edit applied); None if never imported."""
    if not store_path(data_dir).is_file():
        return None
    store = open_review_store(Store.for_data_dir(data_dir))
    if store.read_one("SELECT 1 FROM review_runs WHERE run_id = ?", (run_id,)) is None:
        return None
    accepted = {}
    for row in store.read("SELECT i.sample_id, i.sample, v.conversations FROM review_items i LEFT JOIN review_versions v "
                          "ON v.version_id = i.accepted_version_id WHERE i.run_id = ? AND i.state = 'accepted' "
                          "ORDER BY i.item_id", (run_id,)):
        sample = json.loads(row["sample"])
        if row["conversations"]:
            sample["conversations"] = json.loads(row["conversations"])
        accepted[row["sample_id"]] = sample
    return accepted
