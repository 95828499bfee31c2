"""The shared SQLite store: migrations, concurrent writers in several processes, and SIGKILL mid-write.

    .venv/bin/python -m pytest -q tests/test_store.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from emo_core.store import Store

MIGRATIONS = [
    "CREATE TABLE votes (id INTEGER PRIMARY KEY, writer TEXT NOT NULL, n INTEGER NOT NULL);",
    "CREATE UNIQUE INDEX one_vote ON votes (writer, n);\nCREATE TABLE notes (text TEXT);",
]

WRITER = textwrap.dedent("""
    import sys
    from emo_core.store import Store
    store = Store.open(sys.argv[1]); store.migrate("test", {migrations!r})
    name, count = sys.argv[2], int(sys.argv[3])
    for n in range(count):
        with store.write() as db:
            db.execute("INSERT INTO votes (writer, n) VALUES (?, ?)", (name, n))
""").format(migrations=MIGRATIONS)


def test_migrations_apply_once_in_order_and_refuse_a_newer_schema(tmp_path):
    store = Store.open(tmp_path / "s.sqlite3")
    assert store.migrate("test", MIGRATIONS[:1]) == 1
    assert store.migrate("test", MIGRATIONS) == 2  # the second script only
    assert store.migrate("test", MIGRATIONS) == 2
    tables = {row["name"] for row in store.read("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"votes", "notes", "schema_versions"} <= tables
    assert store.read_one("PRAGMA journal_mode")[0] == "wal"
    with pytest.raises(RuntimeError, match="newer"):
        Store.open(tmp_path / "s.sqlite3").migrate("test", MIGRATIONS[:1])


def test_a_failing_write_leaves_nothing(tmp_path):
    store = Store.open(tmp_path / "s.sqlite3")
    store.migrate("test", MIGRATIONS)
    with pytest.raises(ZeroDivisionError):
        with store.write() as db:
            db.execute("INSERT INTO votes (writer, n) VALUES ('a', 1)")
            1 / 0
    assert store.read_one("SELECT COUNT(*) FROM votes")[0] == 0


def test_concurrent_writers_in_processes_and_threads_lose_nothing(tmp_path):
    path = tmp_path / "s.sqlite3"
    Store.open(path).migrate("test", MIGRATIONS)
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"p{i}", "150"]) for i in range(4)]
    store = Store.open(path)

    def thread_writer(name):
        for n in range(150):
            with store.write() as db:
                db.execute("INSERT INTO votes (writer, n) VALUES (?, ?)", (name, n))

    threads = [threading.Thread(target=thread_writer, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [process.wait(timeout=120) for process in processes] == [0] * 4
    counts = {row["writer"]: row["c"] for row in store.read("SELECT writer, COUNT(*) AS c FROM votes GROUP BY writer")}
    assert counts == {f"{kind}{i}": 150 for kind in "pt" for i in range(4)}


def test_sigkill_during_writes_keeps_every_committed_row_and_no_partial_one(tmp_path):
    path = tmp_path / "s.sqlite3"
    Store.open(path).migrate("test", MIGRATIONS)
    # Each transaction writes a pair of rows; a kill may land anywhere, but never between the two.
    script = textwrap.dedent(f"""
        import sys
        from emo_core.store import Store
        store = Store.open(sys.argv[1]); store.migrate("test", {MIGRATIONS!r})
        n = 0
        while True:
            with store.write() as db:
                db.execute("INSERT INTO votes (writer, n) VALUES ('a', ?)", (n,))
                db.execute("INSERT INTO votes (writer, n) VALUES ('b', ?)", (n,))
            n += 1
            if n == 50:
                print("ready", flush=True)
    """)
    process = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    store = Store.open(path)
    assert store.read_one("PRAGMA integrity_check")[0] == "ok"
    a = [row["n"] for row in store.read("SELECT n FROM votes WHERE writer = 'a' ORDER BY n")]
    b = [row["n"] for row in store.read("SELECT n FROM votes WHERE writer = 'b' ORDER BY n")]
    assert len(a) >= 50 and a == b == list(range(len(a)))
    with store.write() as db:  # the store still takes writes after the kill
        db.execute("INSERT INTO votes (writer, n) VALUES ('c', 0)")
