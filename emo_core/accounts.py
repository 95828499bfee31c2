"""Sign-in for the private pages (review desk, study results): accounts with a role, in the shared store.

Passwords are stored as salted ``hashlib.scrypt`` digests (a fresh 16-byte salt per account, the cost
parameters kept beside each digest so they can be raised later) and compared in constant time; a
name that does not exist costs the same scrypt run, so timing does not tell which names exist.
``Accounts.authorize`` is the one guard: the sign-in of every private page and every one of its
API events asks it whether a name may use a page open to some roles.

    python -m emo_core.accounts add alice --role reviewer < password.txt   # password from stdin
    python -m emo_core.accounts list
    python -m emo_core.accounts remove alice
    python -m emo_core.review add-reviewer alice                           # the same as --role reviewer
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from .settings import Settings
from .store import Store

ROLES = ("reviewer", "researcher")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
# scrypt cost: 16 MiB and ~50 ms per check on one core; stored per account so it can be raised later.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
DIGEST_BYTES = 32
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_DUMMY_SALT = secrets.token_bytes(16)

ACCOUNTS_MIGRATIONS = [
    """
    CREATE TABLE accounts (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        salt BLOB NOT NULL,
        password_hash BLOB NOT NULL,
        scrypt_n INTEGER NOT NULL,
        scrypt_r INTEGER NOT NULL,
        scrypt_p INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    """,
]


class AccountError(ValueError):
    """A name, role or password that cannot be used; the message says why."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str


def _digest(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
                          dklen=DIGEST_BYTES)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AccountError("an account name is 1 to 64 letters, digits or . _ @ -, starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: choose {' or '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise AccountError(f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    return password


class Accounts:
    """The accounts of one store."""

    def __init__(self, store: Store):
        self.store = store
        store.migrate("accounts", ACCOUNTS_MIGRATIONS)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> "Accounts":
        return cls(Store.for_data_dir(data_dir))

    def add(self, name: str, password: str, role: str, *, replace: bool = False) -> Account:
        """Creates the account (or, with ``replace``, sets the password and role of an existing one)."""
        check_name(name), check_role(role), check_password(password)
        salt = secrets.token_bytes(16)
        digest = _digest(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        with self.store.write() as db:
            exists = db.execute("SELECT 1 FROM accounts WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                raise AccountError(f"account {name!r} exists; pass --replace to set a new password or role")
            db.execute("INSERT INTO accounts (name, role, salt, password_hash, scrypt_n, scrypt_r, scrypt_p, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET role = excluded.role, "
                       "salt = excluded.salt, password_hash = excluded.password_hash, scrypt_n = excluded.scrypt_n, "
                       "scrypt_r = excluded.scrypt_r, scrypt_p = excluded.scrypt_p",
                       (name, role, salt, digest, SCRYPT_N, SCRYPT_R, SCRYPT_P, time.time()))
        return Account(name, role)

    def remove(self, name: str) -> bool:
        with self.store.write() as db:
            return db.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount > 0

    def list(self) -> list[Account]:
        return [Account(row["name"], row["role"]) for row in self.store.read("SELECT name, role FROM accounts ORDER BY name")]

    def get(self, name: str) -> Account | None:
        row = self.store.read_one("SELECT name, role FROM accounts WHERE name = ?", (name,))
        return Account(row["name"], row["role"]) if row else None

    def verify(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is its password, else None (also for unknown names, in the same time)."""
        row = None
        if isinstance(name, str) and _NAME.fullmatch(name):
            row = self.store.read_one("SELECT * FROM accounts WHERE name = ?", (name,))
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
            password = ""
        if row is None:
            _digest(password, _DUMMY_SALT, SCRYPT_N, SCRYPT_R, SCRYPT_P)
            return None
        digest = _digest(password, row["salt"], row["scrypt_n"], row["scrypt_r"], row["scrypt_p"])
        if not hmac.compare_digest(digest, row["password_hash"]):
            return None
        return Account(row["name"], row["role"])

    def authorize(self, name: str | None, roles: Iterable[str]) -> Account | None:
        """The guard of every private page and API event: the signed-in ``name``'s account, if it still
        exists and has one of ``roles``; None otherwise (not signed in, removed, or the wrong role)."""
        if not name:
            return None
        account = self.get(name)
        return account if account is not None and account.role in set(roles) else None


def read_password(stream: TextIO | None = None) -> str:
    """The new password: typed twice at a terminal, else the first line of stdin (never a flag)."""
    stream = stream or sys.stdin
    if stream.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise AccountError("the two passwords differ")
        return first
    return stream.readline().rstrip("\r\n")


def data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data folder holding the store (default: the data_dir setting, env EMO_DATA_DIR)")


def resolve_data_dir(option: Path | None) -> Path:
    return option if option is not None else Settings.from_env().data_dir


def add_command(name: str, role: str, data_dir: Path, replace: bool = False, stream: TextIO | None = None) -> int:
    """``add``: reads the password from stdin and stores the account; returns the exit status."""
    try:
        check_name(name), check_role(role)
        account = Accounts.for_data_dir(data_dir).add(name, read_password(stream), role, replace=replace)
    except AccountError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"account {account.name} ({account.role}) saved")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emo_core.accounts",
                                     description="Accounts for the private pages (password read from stdin).")
    data_dir_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create an account; the password is read from stdin")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--replace", action="store_true", help="set a new password and role of an existing account")
    remove = commands.add_parser("remove", help="delete an account (its open sessions stop working)")
    remove.add_argument("name")
    commands.add_parser("list", help="names and roles")
    args = parser.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    if args.command == "add":
        return add_command(args.name, args.role, data_dir, args.replace)
    accounts = Accounts.for_data_dir(data_dir)
    if args.command == "remove":
        if not accounts.remove(args.name):
            print(f"error: no account {args.name!r}", file=sys.stderr)
            return 1
        print(f"account {args.name} removed")
        return 0
    for account in accounts.list():
        print(f"{account.name}\t{account.role}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
