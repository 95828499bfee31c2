"""The researcher's side of a study: create it from a pairs CSV, invite raters, revoke one, close it.

    create_study(settings, "humour50", Path("pairs.csv"))
    links = invite_raters(settings, "humour50", 30)   # [(rater number, personal link), ...]

Creating is all or nothing: every row is checked and every image opened before one transaction
writes the study. Tokens are ``secrets.token_urlsafe`` values; only their SHA-256 is stored, so the
links printed at invitation are the only copy.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

from ..errors import InvalidInputError, redact_paths
from ..image_io import load_image
from ..settings import Settings
from .errors import PairsFileError, StudyClosedError, StudyNameError, UnknownStudyError
from .pairs import read_pairs
from .schema import images_dir, study_store

STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOKEN_BYTES = 24  # 192 bits: 32 URL-safe characters
VOTE_PATH = "vote"


@dataclass(frozen=True)
class StudyInfo:
    id: int
    name: str
    created: str
    closed: str | None
    items: int
    raters: int


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not STUDY_NAME.match(name):
        raise StudyNameError("a study name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return name


def create_study(settings: Settings, name: str, pairs_csv: Path) -> StudyInfo:
    """A new study with one item per row of ``pairs_csv``; refuses a taken name and any bad row or image."""
    check_name(name)
    store = study_store(settings.data_dir)
    if store.read_one("SELECT 1 FROM study_studies WHERE name = ?", (name,)):
        raise StudyNameError(f"a study named {name!r} exists already")
    pairs = read_pairs(Path(pairs_csv))
    encoded, problems = [], []
    for pair in pairs:
        try:
            encoded.append(_encode_image(pair.image_path, settings))
        except InvalidInputError as exc:
            problems.append(f"row {pair.row}: image {pair.image!r} does not open ({_reason(exc)})")
    if problems:
        raise PairsFileError(f"{Path(pairs_csv).name}: {len(problems)} image(s) cannot be shown: "
                             + "; ".join(problems[:10]))
    folder = images_dir(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for data, file_name in encoded:
            target = folder / file_name
            if not target.exists():
                temporary = target.with_suffix(".part")
                temporary.write_bytes(data)
                temporary.replace(target)
                written.append(target)
        with store.write() as db:
            try:
                cursor = db.execute("INSERT INTO study_studies (name, created) VALUES (?, ?)", (name, now_iso()))
            except sqlite3.IntegrityError:
                raise StudyNameError(f"a study named {name!r} exists already") from None
            study_id = cursor.lastrowid
            db.executemany(
                "INSERT INTO study_items (study_id, number, image_name, image_file, caption_a, system_a, caption_b, "
                "system_b) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(study_id, number, Path(pair.image).name, file_name, pair.caption_a, pair.system_a, pair.caption_b,
                  pair.system_b) for number, (pair, (_, file_name)) in enumerate(zip(pairs, encoded), start=1)])
    except BaseException:
        for target in written:  # images no other study uses (they did not exist before)
            target.unlink(missing_ok=True)
        raise
    return study_info(settings, name)


def _encode_image(path: Path, settings: Settings) -> tuple[bytes, str]:
    """The image as raters will see it (upright RGB JPEG, at most ``study_image_max_side``) and its file name."""
    loaded = load_image(path, max_pixels=settings.max_image_pixels, max_side=settings.study_image_max_side)
    buffer = io.BytesIO()
    loaded.image.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()[:32] + ".jpg"


def _reason(exc: Exception) -> str:
    return redact_paths(str(exc))


def study_info(settings: Settings, name: str) -> StudyInfo:
    row = study_store(settings.data_dir).read_one(
        "SELECT s.id, s.name, s.created, s.closed, "
        "(SELECT COUNT(*) FROM study_items i WHERE i.study_id = s.id) AS items, "
        "(SELECT COUNT(*) FROM study_raters r WHERE r.study_id = s.id) AS raters "
        "FROM study_studies s WHERE s.name = ?", (name,))
    if row is None:
        raise UnknownStudyError(f"no study named {name!r}")
    return StudyInfo(row["id"], row["name"], row["created"], row["closed"], row["items"], row["raters"])


def rater_link(settings: Settings, name: str, token: str) -> str:
    return f"{settings.study_link_base()}/{VOTE_PATH}?{urlencode({'study': name, 'token': token})}"


def invite_raters(settings: Settings, name: str, count: int) -> list[tuple[int, str]]:
    """``count`` new raters of study ``name``: their numbers and personal links (the only copy of the token).

    Each rater gets a left/right placement per item, drawn now and stored: a shuffled list in which the
    first system of a pair is on the left for exactly half the items (one more or less when odd), so
    no rater sees one system on one side more often than chance allows."""
    if not isinstance(count, int) or not 1 <= count <= 10_000:
        raise InvalidInputError("invite between 1 and 10000 raters at a time")
    store = study_store(settings.data_dir)
    tokens = [secrets.token_urlsafe(TOKEN_BYTES) for _ in range(count)]
    rng = secrets.SystemRandom()
    numbers = []
    with store.write() as db:
        study = db.execute("SELECT id, closed FROM study_studies WHERE name = ?", (name,)).fetchone()
        if study is None:
            raise UnknownStudyError(f"no study named {name!r}")
        if study["closed"]:
            raise StudyClosedError(f"study {name!r} is closed; it takes no new raters")
        item_ids = [row["id"] for row in db.execute("SELECT id FROM study_items WHERE study_id = ? ORDER BY number",
                                                     (study["id"],))]
        first = db.execute("SELECT COALESCE(MAX(number), 0) FROM study_raters WHERE study_id = ?",
                           (study["id"],)).fetchone()[0] + 1
        created = now_iso()
        for number, token in enumerate(tokens, start=first):
            rater_id = db.execute("INSERT INTO study_raters (study_id, number, token_hash, created) VALUES (?, ?, ?, ?)",
                                  (study["id"], number, hash_token(token), created)).lastrowid
            sides = [index % 2 for index in range(len(item_ids))]
            if len(item_ids) % 2 and rng.random() < 0.5:
                sides[-1] = 1 - sides[-1]  # an odd count: which side gets the extra item is random too
            rng.shuffle(sides)
            db.executemany("INSERT INTO study_placements (rater_id, item_id, a_on_left) VALUES (?, ?, ?)",
                           [(rater_id, item_id, side) for item_id, side in zip(item_ids, sides)])
            numbers.append(number)
    return [(number, rater_link(settings, name, token)) for number, token in zip(numbers, tokens)]


def revoke_rater(settings: Settings, name: str, number: int) -> None:
    """Rater ``number`` can no longer vote; the votes already cast stay (and count)."""
    with study_store(settings.data_dir).write() as db:
        study = _study_row(db, name)
        updated = db.execute("UPDATE study_raters SET revoked = COALESCE(revoked, ?) WHERE study_id = ? AND number = ?",
                             (now_iso(), study["id"], number)).rowcount
        if not updated:
            raise InvalidInputError(f"study {name!r} has no rater {number}")


def close_study(settings: Settings, name: str) -> None:
    """The study takes no more votes (closing twice is harmless)."""
    with study_store(settings.data_dir).write() as db:
        study = _study_row(db, name)
        db.execute("UPDATE study_studies SET closed = COALESCE(closed, ?) WHERE id = ?", (now_iso(), study["id"]))


def _study_row(db: sqlite3.Connection, name: str) -> sqlite3.Row:
    study = db.execute("SELECT id, closed FROM study_studies WHERE name = ?", (name,)).fetchone()
    if study is None:
        raise UnknownStudyError(f"no study named {name!r}")
    return study


def list_studies(settings: Settings) -> list[str]:
    """Names of every study, oldest first."""
    return [row["name"] for row in study_store(settings.data_dir).read("SELECT name FROM study_studies ORDER BY id")]
