"""The one SQLite store: votes, reviews, accounts and job progress all live in it.

Every connection runs in WAL mode with a busy timeout, so readers never block the writer and
concurrent writers wait instead of failing. Writers in one process queue on a lock of their own before
they ask SQLite: SQLite's busy handler waits by sleeping (up to 100 ms a round), which under a burst of
writes from many threads made a few of them wait for hundreds of milliseconds; the lock hands over at
once. Writers in other processes still meet the busy timeout. Each write is one transaction (``with store.write() as db``)
taken with ``BEGIN IMMEDIATE``: it either commits whole or leaves nothing, also when the process is
killed half-way. Schemas are registered per part (``review``, ``study``, ``accounts``, ...) as an
ordered list of migration scripts; opening a store applies the ones it has not applied yet.

    store = Store.open(settings.data_dir / "emolens.sqlite3")
    store.migrate("review", REVIEW_MIGRATIONS)
    with store.write() as db:
        db.execute("INSERT INTO ...", (...))
    rows = store.read("SELECT ...", (...))
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

DEFAULT_FILE_NAME = "emolens.sqlite3"
BUSY_TIMEOUT_MS = 30_000

_WRITE_LOCKS: dict[Path, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    """The one write lock of this process for the database at ``path``, shared by every ``Store`` of it."""
    key = path.resolve()
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


def store_path(data_dir: Path) -> Path:
    """Where the store of a data folder (the ``data_dir`` setting) lives."""
    return Path(data_dir) / DEFAULT_FILE_NAME


class Store:
    """A SQLite database with one connection per thread. Safe to share between threads and processes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._migrate_lock = threading.Lock()
        self._write_lock = _write_lock(self.path)

    @classmethod
    def open(cls, path: Path) -> "Store":
        """The store at ``path`` (a file; its folder is created), ready for ``migrate``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        with store.write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_versions (part TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        return store

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> "Store":
        return cls.open(store_path(data_dir))

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: transactions are explicit)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                         check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode never corrupts the database; a power cut may lose the last commits,
            # a killed process loses nothing.
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            self._local.connection = connection
        return connection

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: commits when the block ends, rolls back if it raises."""
        db = self.connection()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def read(self, sql: str, parameters: Sequence[Any] | dict = ()) -> list[sqlite3.Row]:
        """All rows of one query, read from a consistent snapshot."""
        return self.connection().execute(sql, parameters).fetchall()

    def read_one(self, sql: str, parameters: Sequence[Any] | dict = ()) -> sqlite3.Row | None:
        return self.connection().execute(sql, parameters).fetchone()

    def migrate(self, part: str, migrations: Sequence[str]) -> int:
        """Apply the scripts of ``part`` not applied yet, each in its own transaction; returns the version.

        Migrations are append-only: script ``i`` moves the part from version ``i`` to ``i + 1``.
        """
        with self._migrate_lock:
            row = self.read_one("SELECT version FROM schema_versions WHERE part = ?", (part,))
            version = row["version"] if row else 0
            if version > len(migrations):
                raise RuntimeError(f"the store's {part!r} schema (version {version}) is newer than this code "
                                   f"({len(migrations)}); upgrade EmoLens")
            for index in range(version, len(migrations)):
                with self.write() as db:
                    current = db.execute("SELECT version FROM schema_versions WHERE part = ?", (part,)).fetchone()
                    if current and current["version"] > index:  # another process migrated meanwhile
                        continue
                    for statement in _statements(migrations[index]):
                        db.execute(statement)
                    db.execute("INSERT INTO schema_versions (part, version) VALUES (?, ?) "
                               "ON CONFLICT(part) DO UPDATE SET version = excluded.version", (part, index + 1))
            return len(migrations)

    def close(self) -> None:
        """Closes this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _statements(script: str) -> list[str]:
    """A migration script split into statements (``executescript`` would commit our transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {current.strip()[:80]!r}")
    return statements
