"""Server-side sessions and the sign-in's guard against guessing.

A session is a random token in an HttpOnly, SameSite=Strict cookie; the store keeps
only its SHA-256 (a copied database opens nobody's session), with the user, a CSRF
token for every form of that session, and when it expires. ``SignInLimiter`` refuses
a name after ``max_failures`` wrong passwords within ``window_s`` (and an address
after five times as many), until the window has passed.

>>> from kinsight.store import Store
>>> store = Store(":memory:")
>>> token, csrf = start_session(store, "ann", now_ms=0)
>>> session_user(store, token, now_ms=1)[0]
'ann'
>>> session_user(store, token, now_ms=SESSION_S * 1000 + 1) is None
True
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import defaultdict, deque

from ..store import Migration, Store

SESSION_S = 12 * 3600
COOKIE = "kinsight_session"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_ms);
"""
MIGRATIONS = (Migration(1, 'sign-in sessions', _SCHEMA),)



def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(store: Store, name: str, now_ms: int) -> tuple[str, str]:
    """A new session for ``name``: (the cookie's token, the session's CSRF token)."""
    store.migrate('sessions', MIGRATIONS)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    with store.transaction():
        store.conn.execute("DELETE FROM sessions WHERE expires_ms < ?", (now_ms,))
        store.conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                           (_digest(token), name, csrf, now_ms, now_ms + SESSION_S * 1000))
    return token, csrf


def session_user(store: Store, token: str | None, now_ms: int) -> tuple[str, str] | None:
    """(user name, CSRF token) of a live session, else None."""
    if not token:
        return None
    store.migrate('sessions', MIGRATIONS)
    row = store.conn.execute("SELECT name, csrf, expires_ms FROM sessions WHERE "
                             "token_sha256 = ?", (_digest(token),)).fetchone()
    if row is None or int(row[2]) < now_ms:
        return None
    return str(row[0]), str(row[1])


def end_session(store: Store, token: str | None) -> None:
    if token:
        store.migrate('sessions', MIGRATIONS)
        with store.transaction():
            store.conn.execute("DELETE FROM sessions WHERE token_sha256 = ?",
                               (_digest(token),))


class SignInLimiter:
    """See the module's docstring; one per app, in memory (a restart forgets)."""

    def __init__(self, max_failures: int = 5, window_s: float = 900.0):
        self.max_failures = max_failures
        self.window_ms = int(window_s * 1000)
        self._failures: dict[str, deque[int]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now_ms: int) -> deque[int]:
        q = self._failures[key]
        while q and q[0] <= now_ms - self.window_ms:
            q.popleft()
        return q

    def allowed(self, name: str, address: str, now_ms: int) -> bool:
        with self._lock:
            return (len(self._recent("name:" + name, now_ms)) < self.max_failures
                    and len(self._recent("addr:" + address, now_ms)) < 5 * self.max_failures)

    def failed(self, name: str, address: str, now_ms: int) -> None:
        with self._lock:
            self._recent("name:" + name, now_ms).append(now_ms)
            self._recent("addr:" + address, now_ms).append(now_ms)
