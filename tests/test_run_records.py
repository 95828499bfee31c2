"""Resumable JSONL record files: a SIGKILLed writer's torn line is repaired, keys are never written twice.

    .venv/bin/python -m pytest -q tests/test_run_records.py
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from emo_core.run_records import RecordFile, file_sha256, load_records, record_key


def test_file_sha256_matches_hashlib_on_files_larger_than_a_chunk(tmp_path):
    for size in (0, 17, 3 * (1 << 20) + 5):
        data = os.urandom(size)
        path = tmp_path / f"f{size}"
        path.write_bytes(data)
        assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_record_key_depends_on_every_part_and_not_on_dict_order():
    assert record_key("a", {"x": 1, "y": 2}) == record_key("a", {"y": 2, "x": 1})
    keys = {record_key("a", 1), record_key("a", 2), record_key("b", 1), record_key("a", "1")}
    assert len(keys) == 4


def test_append_skips_known_keys_and_a_reopen_sees_them(tmp_path):
    path = tmp_path / "r.jsonl"
    with RecordFile.open(path) as records:
        assert records.append({"id": "a", "v": 1})
        assert not records.append({"id": "a", "v": 2})
        assert records.append({"id": "b", "v": 3})
    with RecordFile.open(path) as records:
        assert "a" in records and "b" in records and len(records) == 2
        assert records.get("a")["v"] == 1
    assert len(path.read_text().splitlines()) == 2


def test_a_torn_last_line_is_cut_and_a_broken_middle_line_is_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "v": [1, 2')
    with RecordFile.open(path) as records:
        assert records.repaired_bytes == len('{"id": "c", "v": [1, 2')
        assert sorted(r["id"] for r in records) == ["a", "b"]
        records.append({"id": "c"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "c"]
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ValueError, match="line 2"):
        load_records(path)


def test_sigkilled_writers_then_a_resume_give_each_key_exactly_once(tmp_path):
    path = tmp_path / "r.jsonl"
    script = textwrap.dedent("""
        import sys
        from emo_core.run_records import RecordFile
        with RecordFile.open(sys.argv[1]) as records:
            for n in range(2000):
                key = f"k{n}"
                if key not in records:
                    records.append({"id": key, "payload": "x" * 5000})
                if n == 20:
                    print("ready", flush=True)
    """)
    for _ in range(3):
        process = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
        process.stdout.readline()
        time.sleep(0.15)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True).returncode == 0
    keys = [json.loads(line)["id"] for line in path.read_text().splitlines()]
    assert sorted(keys, key=lambda k: int(k[1:])) == [f"k{n}" for n in range(2000)]


def test_threads_appending_at_once_share_fsyncs_and_each_returns_once_its_line_is_synced(tmp_path, monkeypatch):
    import threading

    real_fsync = os.fsync
    synced_sizes: list[int] = []

    def slow_fsync(fd):
        size = os.fstat(fd).st_size  # what this fsync will cover
        time.sleep(0.01)
        real_fsync(fd)
        synced_sizes.append(size)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    path = tmp_path / "r.jsonl"
    uncovered = []
    with RecordFile.open(path) as records:
        def writer(number: int) -> None:
            for index in range(10):
                record = {"id": f"{number}-{index}"}
                assert records.append(record)
                line = (json.dumps(record) + "\n").encode()
                data = path.read_bytes()
                if max(synced_sizes) < data.index(line) + len(line):
                    uncovered.append(record["id"])

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert uncovered == []
    ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
    assert sorted(ids) == sorted(f"{n}-{i}" for n in range(8) for i in range(10))
    assert len(synced_sizes) < 60  # 80 appends; one fsync each before
