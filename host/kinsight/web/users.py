"""The people who sign in to the care team's app, and what each may see.

A user has a name, a role and a password, kept as an argon2id hash (``argon2-cffi``;
never the password itself):

* ``coordinator``: every resident of the organisation;
* ``practitioner``: the residents assigned to them;
* ``family``: their own resident (one at least), and only what that resident's
  consent allows.

Every change is written to the audit trail (who, when, what). ``authenticate`` says
who a name and password are, or None, taking as long either way.

>>> from kinsight.store import Store
>>> store = Store(":memory:")
>>> add_user(store, "ann", "coordinator", [], "a long passphrase", by="setup", now_ms=0).role
'coordinator'
>>> authenticate(store, "ann", "a long passphrase").name, authenticate(store, "ann", "nope")
('ann', None)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..alerts.records import ensure_tables
from ..errors import ConfigError
from ..residents import residents as residents_of
from ..store import Migration, Store

ROLES = ("coordinator", "practitioner", "family")
MIN_PASSWORD = 10
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
_HASHER = PasswordHasher()
# Checked against when the name is unknown, so that a wrong name takes as long as a
# wrong password.
_DUMMY = _HASHER.hash("not anyone's password")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    changed_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS user_residents (
    name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    resident TEXT NOT NULL,
    PRIMARY KEY (name, resident)
);
"""
MIGRATIONS = (Migration(1, 'the people who sign in and the residents they look after', _SCHEMA),)



class UserError(ConfigError):
    """A user cannot be added or changed as asked; the message says why."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    residents: tuple[str, ...]

    def may_see(self, resident: str) -> bool:
        """Whether this user may open ``resident``'s pages."""
        return self.role == "coordinator" or resident in self.residents


def ensure_users(store: Store) -> None:
    ensure_tables(store)  # the alerts' audit trail, which user changes go into too
    store.migrate('users', MIGRATIONS)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")


def _audit(store: Store, now_ms: int, by: str, action: str, detail: str) -> None:
    store.conn.execute("INSERT INTO audit VALUES (?, NULL, NULL, ?, ?, ?)",
                       (now_ms, by, action, detail))


def add_user(store: Store, name: str, role: str, residents: Iterable[str], password: str, *,
             by: str, now_ms: int) -> User:
    """Add ``name``; a ``UserError`` names what is wrong (the name, the role, a family
    member without a resident, a short password, a name taken)."""
    ensure_users(store)
    if not _NAME.match(name):
        raise UserError(f"user name {name!r}: lower-case letters, digits and . _ @ - only, "
                        "up to 64")
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    chosen = tuple(sorted(set(residents)))
    if role == "family" and not chosen:
        raise UserError("a family member needs --resident: whose family they are")
    if role == "coordinator" and chosen:
        raise UserError("a coordinator sees every resident: no --resident")
    unknown = sorted(set(chosen) - set(residents_of(store)))
    if unknown:
        raise UserError(f"no resident {', '.join(unknown)} in this database (kinsight place "
                        "or kinsight import adds residents)")
    _check_password(password)
    if store.conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
        raise UserError(f"there is already a user {name!r}")
    digest = _HASHER.hash(password)
    with store.transaction():
        store.conn.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                           (name, role, digest, now_ms, now_ms))
        store.conn.executemany("INSERT INTO user_residents VALUES (?, ?)",
                               [(name, r) for r in chosen])
        _audit(store, now_ms, by, "user added",
               f"{name} as {role}" + (f" for {', '.join(chosen)}" if chosen else ""))
    return User(name, role, chosen)


def get_user(store: Store, name: str) -> User | None:
    ensure_users(store)
    row = store.conn.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    residents = tuple(r for (r,) in store.conn.execute(
        "SELECT resident FROM user_residents WHERE name = ? ORDER BY resident", (name,)))
    return User(name, str(row[0]), residents)


def list_users(store: Store) -> list[User]:
    ensure_users(store)
    names = [str(n) for (n,) in store.conn.execute("SELECT name FROM users ORDER BY name")]
    return [u for n in names if (u := get_user(store, n)) is not None]


def remove_user(store: Store, name: str, *, by: str, now_ms: int) -> None:
    ensure_users(store)
    if get_user(store, name) is None:
        raise UserError(f"there is no user {name!r}")
    with store.transaction():
        store.conn.execute("DELETE FROM user_residents WHERE name = ?", (name,))
        store.conn.execute("DELETE FROM users WHERE name = ?", (name,))
        _audit(store, now_ms, by, "user removed", name)


def set_password(store: Store, name: str, password: str, *, by: str, now_ms: int) -> None:
    ensure_users(store)
    if get_user(store, name) is None:
        raise UserError(f"there is no user {name!r}")
    _check_password(password)
    with store.transaction():
        store.conn.execute("UPDATE users SET password_hash = ?, changed_ms = ? WHERE name = ?",
                           (_HASHER.hash(password), now_ms, name))
        _audit(store, now_ms, by, "password changed", name)


def authenticate(store: Store, name: str, password: str) -> User | None:
    """The user ``name`` if ``password`` is theirs, else None (an unknown name costs
    the same hash check as a wrong password)."""
    ensure_users(store)
    row = store.conn.execute("SELECT password_hash FROM users WHERE name = ?",
                             (name,)).fetchone()
    try:
        _HASHER.verify(str(row[0]) if row else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _HASHER.check_needs_rehash(str(row[0])):  # the library's parameters moved on
        store.conn.execute("UPDATE users SET password_hash = ? WHERE name = ?",
                           (_HASHER.hash(password), name))
    return get_user(store, name)
