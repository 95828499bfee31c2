"""The rater's side of a study: the next item to judge and casting a vote, with every integrity check.

    desk = VoteDesk(settings)
    item = desk.next_item("humour50", token, address="203.0.113.9")   # None when the rater is done
    desk.cast("humour50", token, item.item, "left", address="203.0.113.9")

Nothing returned here names a system: a ``VoteItem`` carries the captions in the rater's stored
left/right order only. The next item is the one on screen if the rater has not answered it yet (a
reload shows the same pair), else an item the rater has not seen, fewest votes first, ties at random.
A vote is one transaction whose INSERT the UNIQUE (rater, item) constraint refuses a second time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError
from ..settings import Settings
from .errors import (AlreadyVotedError, InvalidTokenError, RateLimitedError, StudyClosedError, UnknownItemError,
                     UnknownStudyError)
from .ratelimit import RateLimiter
from .schema import images_dir, study_store
from .studies import hash_token, now_iso

CHOICES = ("left", "right", "tie", "neither", "skip")
_MAX_TOKEN_CHARS = 200


@dataclass(frozen=True)
class VoteItem:
    """One pair as a rater sees it. ``position`` counts this item among the study's (1-based)."""

    item: int
    image_name: str
    image_path: Path
    left: str
    right: str
    position: int
    total: int

    @property
    def progress(self) -> str:
        return f"{self.position} of {self.total}"


@dataclass(frozen=True)
class Progress:
    answered: int
    total: int

    @property
    def done(self) -> bool:
        return self.answered >= self.total

    @property
    def text(self) -> str:
        return f"{self.answered} of {self.total}"


class VoteDesk:
    """Next item and vote casting for every study of one data folder, with this process's rate limits."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = study_store(settings.data_dir)
        self.images = images_dir(settings.data_dir)
        self.per_rater = RateLimiter(settings.vote_rate_per_rater)
        self.per_address = RateLimiter(settings.vote_rate_per_address)

    def next_item(self, study: str, token: str, *, address: str = "") -> VoteItem | None:
        """The item to show this rater now, or None when every item is answered."""
        self._check_address(address)
        with self.store.write() as db:
            rater = _rater(db, study, token)
            row = db.execute(
                "SELECT p.item_id FROM study_placements p WHERE p.rater_id = ? AND p.shown IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM study_votes v WHERE v.rater_id = p.rater_id AND v.item_id = p.item_id) "
                "ORDER BY p.shown DESC LIMIT 1", (rater["id"],)).fetchone()
            if row is None:
                row = db.execute(
                    "SELECT p.item_id FROM study_placements p WHERE p.rater_id = ? "
                    "AND NOT EXISTS (SELECT 1 FROM study_votes v WHERE v.rater_id = p.rater_id AND v.item_id = p.item_id) "
                    "ORDER BY (SELECT COUNT(*) FROM study_votes w WHERE w.item_id = p.item_id AND w.choice != 'skip'), "
                    "random() LIMIT 1", (rater["id"],)).fetchone()
                if row is None:
                    return None
                db.execute("UPDATE study_placements SET shown = ? WHERE rater_id = ? AND item_id = ?",
                           (now_iso(), rater["id"], row["item_id"]))
            return self._vote_item(db, rater, row["item_id"])

    def cast(self, study: str, token: str, item: int, choice: str, *, address: str = "") -> Progress:
        """Records the rater's ``choice`` on ``item`` (one of ``CHOICES``); returns the rater's progress."""
        if choice not in CHOICES:
            raise InvalidInputError(f"choice must be one of {', '.join(CHOICES)}, got {str(choice)[:40]!r}")
        try:
            item = int(item)
        except (TypeError, ValueError):
            raise UnknownItemError("the item must be a number") from None
        self._check_address(address)
        if not self.per_rater.allow(f"{study}\n{_token_hash(token)}"):
            raise RateLimitedError("too many votes in the last minute; please wait a moment")
        with self.store.write() as db:
            rater = _rater(db, study, token)
            row = db.execute(
                "SELECT i.id, i.system_a, i.system_b, p.a_on_left, p.shown FROM study_items i "
                "JOIN study_placements p ON p.item_id = i.id AND p.rater_id = ? WHERE i.study_id = ? AND i.number = ?",
                (rater["id"], rater["study_id"], item)).fetchone()
            if row is None:
                raise UnknownItemError(f"this study has no item {item}")
            if row["shown"] is None:
                raise UnknownItemError(f"item {item} has not been shown to you yet")
            left, right = ((row["system_a"], row["system_b"]) if row["a_on_left"]
                           else (row["system_b"], row["system_a"]))
            try:
                db.execute("INSERT INTO study_votes (rater_id, item_id, choice, left_system, right_system, time) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (rater["id"], row["id"], choice, left, right, now_iso()))
            except sqlite3.IntegrityError:
                raise AlreadyVotedError(f"you have already answered item {item}; each item takes one vote") from None
            return _progress(db, rater)

    def progress(self, study: str, token: str) -> Progress:
        with self.store.write() as db:  # a write transaction: one consistent view of the checks and counts
            return _progress(db, _rater(db, study, token))

    def _check_address(self, address: str) -> None:
        if not self.per_address.allow(address or "unknown"):
            raise RateLimitedError("too many requests from your network in the last minute; please wait a moment")

    def _vote_item(self, db: sqlite3.Connection, rater: sqlite3.Row, item_id: int) -> VoteItem:
        row = db.execute(
            "SELECT i.number, i.image_name, i.image_file, i.caption_a, i.caption_b, p.a_on_left FROM study_items i "
            "JOIN study_placements p ON p.item_id = i.id AND p.rater_id = ? WHERE i.id = ?",
            (rater["id"], item_id)).fetchone()
        left, right = ((row["caption_a"], row["caption_b"]) if row["a_on_left"]
                       else (row["caption_b"], row["caption_a"]))
        progress = _progress(db, rater)
        return VoteItem(row["number"], row["image_name"], self.images / row["image_file"], left, right,
                        progress.answered + 1, progress.total)


def _token_hash(token: str) -> str:
    return hash_token(str(token)[:_MAX_TOKEN_CHARS])


def _rater(db: sqlite3.Connection, study: str, token: str) -> sqlite3.Row:
    """The rater row of ``token`` in ``study``; refuses an unknown study, a closed one, an unknown or revoked token."""
    found = db.execute("SELECT id, closed FROM study_studies WHERE name = ?", (str(study),)).fetchone()
    if found is None:
        raise UnknownStudyError("this study does not exist; check the link you were given")
    if found["closed"]:
        raise StudyClosedError("this study is closed and takes no more votes; thank you")
    if not token or len(str(token)) > _MAX_TOKEN_CHARS:
        raise InvalidTokenError("this link has no valid rater token; use the personal link you were given")
    rater = db.execute("SELECT id, study_id, number, revoked FROM study_raters WHERE token_hash = ? AND study_id = ?",
                       (_token_hash(token), found["id"])).fetchone()
    if rater is None:
        raise InvalidTokenError("this rater link is not valid for this study; use the personal link you were given")
    if rater["revoked"]:
        raise InvalidTokenError("this rater link was revoked; contact the study's organiser")
    return rater


def _progress(db: sqlite3.Connection, rater: sqlite3.Row) -> Progress:
    answered = db.execute("SELECT COUNT(*) FROM study_votes WHERE rater_id = ?", (rater["id"],)).fetchone()[0]
    total = db.execute("SELECT COUNT(*) FROM study_placements WHERE rater_id = ?", (rater["id"],)).fetchone()[0]
    return Progress(answered, total)
