"""The review queue: who sees which sample next, and what a decision does. One transaction per call.

An annotator asks for the next sample and gets a lease on it for ``lease_seconds``; while the lease
holds, nobody else gets a single-review sample, and an overlap sample goes to at most one other
annotator. A lease that runs out returns an undecided sample to the queue. Asking again while holding
a lease returns the same sample (a reloaded page does not lose it). Skipped samples come back to the
same annotator only when nothing else is left for them.

Decisions: ``accept``, ``edit`` (accept an edited conversation, stored as a new version; the original
stays), ``reject`` (a reason from ``REJECT_REASONS``, plus a note, required for "other") and ``skip``.
A single-review sample is resolved by its decision. An overlap sample is resolved when both decided:
the same outcome with the same text resolves it; anything else is a conflict for adjudication, where
someone who did not review it (or a researcher) decides for good.

Every transaction is ``BEGIN IMMEDIATE``, so two processes never hand out the same lease.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..store import Store
from .conversation_text import from_text, to_text
from .runs import open_review_store

ACTIONS = ("accept", "edit", "reject", "skip")
REJECT_REASONS = (
    "wrong emotion",
    "mentions captions or attribute lists",
    "not grounded in the image",
    "factually wrong",
    "unsafe or offensive",
    "malformed or truncated",
    "other",
)


class ReviewError(ValueError):
    """A decision that cannot be taken; the message says why (shown to the annotator)."""


@dataclass(frozen=True)
class ReviewItem:
    item_id: int
    run_id: str
    sample_id: str
    type: str
    label: str
    prompt_version: str
    sample: dict
    image_path: Path | None  # None when the file is missing or outside the run's image root
    reviews_needed: int
    lease_expires_at: float | None = None

    @property
    def conversation_text(self) -> str:
        return to_text(self.sample["conversations"])


@dataclass(frozen=True)
class Opinion:
    """One annotator's decision on a conflict, as the adjudicator sees it."""
    annotator: str
    action: str
    reason: str
    note: str
    conversation_text: str


@dataclass(frozen=True)
class Conflict:
    item: ReviewItem
    opinions: tuple[Opinion, ...]


class ReviewDesk:
    def __init__(self, store: Store, lease_seconds: float = 900.0, clock: Callable[[], float] = time.time):
        self.store = open_review_store(store)
        self.lease_seconds = lease_seconds
        self.clock = clock

    @classmethod
    def for_settings(cls, settings) -> "ReviewDesk":
        return cls(Store.for_data_dir(settings.data_dir), settings.review_lease_seconds)

    # -- the queue -------------------------------------------------------------------------------

    def next_item(self, annotator: str) -> ReviewItem | None:
        """The sample this annotator should review now (leased to them), or None when none is left."""
        now = self.clock()
        with self.store.write() as db:
            db.execute("DELETE FROM review_leases WHERE expires_at <= ?", (now,))
            held = db.execute(
                "SELECT i.item_id FROM review_leases l JOIN review_items i ON i.item_id = l.item_id "
                "WHERE l.annotator = ? AND i.state = 'pending' AND NOT EXISTS (SELECT 1 FROM review_decisions d "
                "WHERE d.item_id = i.item_id AND d.annotator = l.annotator AND d.action != 'skip' AND d.adjudication = 0) "
                "ORDER BY l.expires_at LIMIT 1", (annotator,)).fetchone()
            item_id = held[0] if held else None
            # First the samples this annotator never touched, then (nothing else left) the ones they skipped.
            for mine in ("", "AND d.action != 'skip'"):
                if item_id is not None:
                    break
                row = db.execute(
                    "SELECT i.item_id FROM review_items i WHERE i.state = 'pending' "
                    "AND NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.item_id = i.item_id "
                    f"  AND d.annotator = :me AND d.adjudication = 0 {mine}) "
                    "AND (SELECT COUNT(*) FROM review_decisions d WHERE d.item_id = i.item_id AND d.action != 'skip' "
                    "     AND d.adjudication = 0) "
                    "  + (SELECT COUNT(*) FROM review_leases l WHERE l.item_id = i.item_id AND l.annotator != :me) "
                    "  < i.reviews_needed "
                    "ORDER BY i.item_id LIMIT 1", {"me": annotator}).fetchone()
                item_id = row[0] if row else None
            if item_id is None:
                return None
            expires = now + self.lease_seconds
            db.execute("INSERT INTO review_leases (item_id, annotator, expires_at) VALUES (?, ?, ?) "
                       "ON CONFLICT(item_id, annotator) DO UPDATE SET expires_at = excluded.expires_at",
                       (item_id, annotator, expires))
            return self._item(db, item_id, expires)

    def item(self, item_id: int) -> ReviewItem | None:
        return self._item(self.store.connection(), item_id)

    def _item(self, db, item_id: int, lease_expires_at: float | None = None) -> ReviewItem | None:
        row = db.execute("SELECT i.*, r.image_root FROM review_items i JOIN review_runs r ON r.run_id = i.run_id "
                         "WHERE i.item_id = ?", (item_id,)).fetchone()
        if row is None:
            return None
        sample = json.loads(row["sample"])
        root = Path(row["image_root"])
        image = (root / sample["image"]).resolve()
        usable = image.is_relative_to(root) and image.is_file()
        return ReviewItem(row["item_id"], row["run_id"], row["sample_id"], row["type"], row["label"],
                          row["prompt_version"], sample, image if usable else None, row["reviews_needed"],
                          lease_expires_at)

    # -- decisions -------------------------------------------------------------------------------

    def decide(self, item_id: int, annotator: str, action: str, *, edited_text: str | None = None,
               reason: str = "", note: str = "") -> str:
        """Records one decision; returns the sample's state afterwards (pending, accepted, rejected, conflict)."""
        action, conversations, reason, note = self._checked(action, edited_text, reason, note, allow_skip=True)
        now = self.clock()
        with self.store.write() as db:
            item = db.execute("SELECT * FROM review_items WHERE item_id = ?", (item_id,)).fetchone()
            if item is None:
                raise ReviewError("there is no such sample")
            if item["state"] != "pending":
                raise ReviewError("this sample has already been decided; take the next one")
            decisions = db.execute("SELECT * FROM review_decisions WHERE item_id = ? AND action != 'skip' "
                                   "AND adjudication = 0 ORDER BY decision_id", (item_id,)).fetchall()
            if any(row["annotator"] == annotator for row in decisions):
                raise ReviewError("you have already decided this sample")
            my_lease = db.execute("SELECT 1 FROM review_leases WHERE item_id = ? AND annotator = ? AND expires_at > ?",
                                  (item_id, annotator, now)).fetchone()
            others = db.execute("SELECT COUNT(*) FROM review_leases WHERE item_id = ? AND annotator != ? "
                                "AND expires_at > ?", (item_id, annotator, now)).fetchone()[0]
            if not my_lease and len(decisions) + others >= item["reviews_needed"]:
                raise ReviewError("this sample is with another annotator now; take the next one")
            db.execute("DELETE FROM review_leases WHERE item_id = ? AND annotator = ?", (item_id, annotator))
            original = json.loads(item["sample"])["conversations"]
            if action == "edit" and conversations == original:
                action = "accept"  # an edit that changed nothing is an accept
            version_id = self._version(db, item_id, annotator, conversations, now) if action == "edit" else None
            db.execute("INSERT INTO review_decisions (item_id, annotator, action, reason, note, version_id, decided_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (item_id, annotator, action, reason, note, version_id, now))
            if action == "skip":
                return "pending"
            decisions = db.execute("SELECT * FROM review_decisions WHERE item_id = ? AND action != 'skip' "
                                   "AND adjudication = 0 ORDER BY decision_id", (item_id,)).fetchall()
            if len(decisions) < item["reviews_needed"]:
                return "pending"
            state, accepted_version, resolved_by = self._resolution(db, decisions, original)
            db.execute("UPDATE review_items SET state = ?, accepted_version_id = ?, resolved_by = ? WHERE item_id = ?",
                       (state, accepted_version, resolved_by, item_id))
            return state

    def _checked(self, action: str, edited_text: str | None, reason: str, note: str, allow_skip: bool):
        if action not in ACTIONS or (action == "skip" and not allow_skip):
            raise ReviewError(f"unknown action {action!r}")
        reason, note = (reason or "").strip(), (note or "").strip()[:2000]
        conversations = None
        if action == "edit":
            if not edited_text or not edited_text.strip():
                raise ReviewError("the edited conversation is empty")
            conversations = from_text(edited_text)  # ConversationFormatError is a ValueError with a clear message
        if action == "reject":
            if reason not in REJECT_REASONS:
                raise ReviewError(f"choose a reject reason: {', '.join(REJECT_REASONS)}")
            if reason == "other" and not note:
                raise ReviewError("say in the note why the sample is rejected")
        else:
            reason = ""
        return action, conversations, reason, note

    @staticmethod
    def _version(db, item_id: int, annotator: str, conversations: list[dict], now: float) -> int:
        return db.execute("INSERT INTO review_versions (item_id, annotator, conversations, created_at) VALUES (?, ?, ?, ?)",
                          (item_id, annotator, json.dumps(conversations, ensure_ascii=False), now)).lastrowid

    @staticmethod
    def _resolution(db, decisions, original) -> tuple[str, int | None, str]:
        if len(decisions) == 1:
            decision = decisions[0]
            if decision["action"] == "reject":
                return "rejected", None, "single"
            return "accepted", decision["version_id"], "single"
        outcomes = {"reject" if row["action"] == "reject" else "accept" for row in decisions}
        if outcomes == {"reject"}:
            return "rejected", None, "agreement"
        if outcomes == {"accept"}:
            texts = set()
            for row in decisions:
                if row["version_id"] is None:
                    texts.add(json.dumps(original))
                else:
                    texts.add(db.execute("SELECT conversations FROM review_versions WHERE version_id = ?",
                                         (row["version_id"],)).fetchone()[0])
            if len({json.dumps(json.loads(text)) for text in texts}) == 1:
                return "accepted", decisions[-1]["version_id"], "agreement"
        return "conflict", None, None

    # -- adjudication ----------------------------------------------------------------------------

    def next_conflict(self, adjudicator: str, may_adjudicate_own: bool = False) -> Conflict | None:
        """The oldest conflict this person may settle: one they did not review, or any for researchers."""
        db = self.store.connection()
        rows = db.execute(
            "SELECT item_id FROM review_items i WHERE state = 'conflict' "
            + ("" if may_adjudicate_own else
               "AND NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.item_id = i.item_id AND d.annotator = ?) ")
            + "ORDER BY item_id LIMIT 1", () if may_adjudicate_own else (adjudicator,)).fetchone()
        if rows is None:
            return None
        item = self._item(db, rows[0])
        opinions = []
        for row in db.execute("SELECT d.*, v.conversations FROM review_decisions d LEFT JOIN review_versions v "
                              "ON v.version_id = d.version_id WHERE d.item_id = ? AND d.action != 'skip' "
                              "AND d.adjudication = 0 ORDER BY d.decision_id", (item.item_id,)):
            turns = json.loads(row["conversations"]) if row["conversations"] else item.sample["conversations"]
            opinions.append(Opinion(row["annotator"], row["action"], row["reason"], row["note"], to_text(turns)))
        return Conflict(item, tuple(opinions))

    def adjudicate(self, item_id: int, adjudicator: str, action: str, *, edited_text: str | None = None,
                   reason: str = "", note: str = "", may_adjudicate_own: bool = False) -> str:
        """Settles a conflict for good: ``accept`` (the original), ``edit`` (a given text) or ``reject``."""
        action, conversations, reason, note = self._checked(action, edited_text, reason, note, allow_skip=False)
        now = self.clock()
        with self.store.write() as db:
            item = db.execute("SELECT * FROM review_items WHERE item_id = ?", (item_id,)).fetchone()
            if item is None or item["state"] != "conflict":
                raise ReviewError("this sample is not waiting for adjudication")
            reviewed = db.execute("SELECT 1 FROM review_decisions WHERE item_id = ? AND annotator = ? AND adjudication = 0",
                                  (item_id, adjudicator)).fetchone()
            if reviewed and not may_adjudicate_own:
                raise ReviewError("you reviewed this sample; someone else settles it")
            if action == "edit" and conversations == json.loads(item["sample"])["conversations"]:
                action = "accept"
            version_id = self._version(db, item_id, adjudicator, conversations, now) if action == "edit" else None
            db.execute("INSERT INTO review_decisions (item_id, annotator, action, adjudication, reason, note, version_id, "
                       "decided_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                       (item_id, adjudicator, action, reason, note, version_id, now))
            state = "rejected" if action == "reject" else "accepted"
            db.execute("UPDATE review_items SET state = ?, accepted_version_id = ?, resolved_by = 'adjudication' "
                       "WHERE item_id = ?", (state, version_id, item_id))
            return state

    # -- progress --------------------------------------------------------------------------------

    def progress(self, annotator: str) -> dict:
        """This annotator's decisions by action, and what is left in the whole queue."""
        mine = {action: 0 for action in ACTIONS}
        for row in self.store.read("SELECT action, COUNT(DISTINCT item_id) AS n FROM review_decisions "
                                   "WHERE annotator = ? AND adjudication = 0 GROUP BY action", (annotator,)):
            mine[row["action"]] = row["n"]
        states = {row["state"]: row["n"] for row in self.store.read(
            "SELECT state, COUNT(*) AS n FROM review_items GROUP BY state")}
        return {"annotator": annotator, "decided": mine, "total": sum(states.values()),
                "pending": states.get("pending", 0), "conflicts": states.get("conflict", 0)}
