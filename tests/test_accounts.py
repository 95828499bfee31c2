"""Accounts: salted scrypt hashes, verification, roles, the guard, and the command line (password on stdin)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from emo_core.accounts import AccountError, Accounts
from emo_core.store import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def accounts(tmp_path) -> Accounts:
    return Accounts.for_data_dir(tmp_path / "data")


def test_passwords_are_stored_as_salted_scrypt_hashes(accounts):
    accounts.add("alice", "same password", "reviewer")
    accounts.add("bob", "same password", "researcher")
    rows = {row["name"]: row for row in accounts.store.read("SELECT * FROM accounts")}
    assert rows["alice"]["salt"] != rows["bob"]["salt"]
    assert rows["alice"]["password_hash"] != rows["bob"]["password_hash"]  # the salt differs, so the hash does
    for row in rows.values():
        assert b"same password" not in bytes(row["password_hash"])
        expected = hashlib.scrypt(b"same password", salt=row["salt"], n=row["scrypt_n"], r=row["scrypt_r"],
                                  p=row["scrypt_p"], maxmem=64 * 1024 * 1024, dklen=32)
        assert bytes(row["password_hash"]) == expected
        assert row["scrypt_n"] >= 2 ** 14


def test_verify_and_authorize_by_role(accounts):
    accounts.add("alice", "correct horse", "reviewer")
    accounts.add("rita", "battery staple", "researcher")
    assert accounts.verify("alice", "correct horse").role == "reviewer"
    for name, password in [("alice", "correct hors"), ("alice", "Correct horse"), ("alice", ""), ("nobody", "correct horse"),
                           ("", "x"), ("alice; DROP TABLE accounts", "correct horse"), ("alice", "x" * 5000)]:
        assert accounts.verify(name, password) is None
    assert accounts.authorize("alice", ("reviewer", "researcher")).name == "alice"
    assert accounts.authorize("alice", ("researcher",)) is None
    assert accounts.authorize("rita", ("researcher",)).role == "researcher"
    assert accounts.authorize(None, ("reviewer",)) is None
    assert accounts.remove("alice") and not accounts.remove("alice")
    assert accounts.authorize("alice", ("reviewer",)) is None and accounts.verify("alice", "correct horse") is None
    assert [a.name for a in accounts.list()] == ["rita"]


def test_bad_names_roles_and_passwords_are_refused(accounts):
    with pytest.raises(AccountError, match="role"):
        accounts.add("alice", "long enough", "admin")
    with pytest.raises(AccountError, match="8 to"):
        accounts.add("alice", "short", "reviewer")
    for name in ("", "has space", "-dash-first", "x" * 65, "émile"):
        with pytest.raises(AccountError, match="account name"):
            accounts.add(name, "long enough", "reviewer")
    accounts.add("alice", "long enough", "reviewer")
    with pytest.raises(AccountError, match="exists"):
        accounts.add("alice", "another one", "reviewer")
    accounts.add("alice", "another one", "researcher", replace=True)
    assert accounts.verify("alice", "long enough") is None and accounts.verify("alice", "another one").role == "researcher"


def _run(*args, stdin: str = "", data_dir: Path):
    return subprocess.run([sys.executable, "-m", *args[:1], "--data-dir", str(data_dir), *args[1:]], cwd=ROOT,
                          input=stdin, capture_output=True, text=True)


def test_command_line_reads_the_password_from_stdin(tmp_path):
    data = tmp_path / "data"
    added = _run("emo_core.review", "add-reviewer", "alice", stdin="s3cret password\n", data_dir=data)
    assert added.returncode == 0 and "alice (reviewer)" in added.stdout
    assert "s3cret" not in added.stdout + added.stderr
    researcher = _run("emo_core.accounts", "add", "rita", "--role", "researcher", stdin="another pass\n", data_dir=data)
    assert researcher.returncode == 0
    again = _run("emo_core.review", "add-reviewer", "alice", stdin="whatever123\n", data_dir=data)
    assert again.returncode == 2 and "exists" in again.stderr
    short = _run("emo_core.accounts", "add", "sam", "--role", "reviewer", stdin="short\n", data_dir=data)
    assert short.returncode == 2 and "8 to" in short.stderr
    listed = _run("emo_core.accounts", "list", data_dir=data)
    assert listed.stdout.splitlines() == ["alice\treviewer", "rita\tresearcher"]
    accounts = Accounts(Store.for_data_dir(data))
    assert accounts.verify("alice", "s3cret password").role == "reviewer"
    assert _run("emo_core.accounts", "remove", "alice", data_dir=data).returncode == 0
    assert _run("emo_core.accounts", "remove", "alice", data_dir=data).returncode == 1
    assert accounts.get("alice") is None
