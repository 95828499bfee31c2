"""The study's tables in the shared store (part ``study``) and the one store object per data folder.

A study holds items (one pair of captions for one image), raters (a hashed token each), placements
(which caption a rater sees on the left, drawn at invitation and stored) and votes. One vote per rater
and item is a UNIQUE constraint, so no race between requests can record two.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..store import Store

PART = "study"
MIGRATIONS = [
    """
    CREATE TABLE study_studies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        closed TEXT
    );
    CREATE TABLE study_items (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES study_studies (id),
        number INTEGER NOT NULL,
        image_name TEXT NOT NULL,
        image_file TEXT NOT NULL,
        caption_a TEXT NOT NULL,
        system_a TEXT NOT NULL,
        caption_b TEXT NOT NULL,
        system_b TEXT NOT NULL,
        UNIQUE (study_id, number)
    );
    CREATE TABLE study_raters (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES study_studies (id),
        number INTEGER NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        revoked TEXT,
        UNIQUE (study_id, number)
    );
    CREATE TABLE study_placements (
        rater_id INTEGER NOT NULL REFERENCES study_raters (id),
        item_id INTEGER NOT NULL REFERENCES study_items (id),
        a_on_left INTEGER NOT NULL CHECK (a_on_left IN (0, 1)),
        shown TEXT,
        PRIMARY KEY (rater_id, item_id)
    );
    CREATE TABLE study_votes (
        id INTEGER PRIMARY KEY,
        rater_id INTEGER NOT NULL REFERENCES study_raters (id),
        item_id INTEGER NOT NULL REFERENCES study_items (id),
        choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie', 'neither', 'skip')),
        left_system TEXT NOT NULL,
        right_system TEXT NOT NULL,
        time TEXT NOT NULL,
        UNIQUE (rater_id, item_id)
    );
    CREATE INDEX study_votes_item ON study_votes (item_id);
    """,
]

IMAGES_FOLDER = "study_images"

_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()


def study_store(data_dir: Path) -> Store:
    """The store of ``data_dir`` with the study tables in place (opened and migrated once per process)."""
    key = Path(data_dir).resolve()
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = Store.for_data_dir(key)
            store.migrate(PART, MIGRATIONS)
            _stores[key] = store
        return store


def images_dir(data_dir: Path) -> Path:
    """Where study images are kept, named by content hash (the only files the vote page serves)."""
    return Path(data_dir) / IMAGES_FOLDER
