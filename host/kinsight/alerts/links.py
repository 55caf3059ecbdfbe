"""Signed, expiring links to an alert, for the messages that tell of it.

``alert_link(store, base_url, alert_id, now_ms)`` is ``BASE/a/TOKEN``: the token says
which alert and until when, signed with HMAC-SHA256 under a secret the store keeps
(made at first use, never sent). ``open_link(store, token, now_ms)`` gives the alert
back, or says why not. The link only opens the alert's page after sign-in: it grants
nothing by itself.

>>> from kinsight.store import Store
>>> store = Store(":memory:")
>>> url = alert_link(store, "https://care.example.org", 7, now_ms=0)
>>> url.startswith("https://care.example.org/a/")
True
>>> open_link(store, url.rsplit("/", 1)[1], now_ms=1)
(7, None)
>>> open_link(store, url.rsplit("/", 1)[1], now_ms=LINK_DAYS * 86_400_000 + 1)[1]
'expired'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from ..store import Store

LINK_DAYS = 7
_KEY = "link_secret"


def _secret(store: Store) -> bytes:
    row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (_KEY,)).fetchone()
    if row is None:
        store.conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                           (_KEY, secrets.token_hex(32)))
        row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (_KEY,)).fetchone()
    return bytes.fromhex(str(row[0]))


def _sign(secret: bytes, body: str) -> str:
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def alert_link(store: Store, base_url: str, alert_id: int, now_ms: int) -> str:
    expires_s = now_ms // 1000 + LINK_DAYS * 86400
    body = f"{alert_id}.{expires_s}"
    return f"{base_url.rstrip('/')}/a/{body}.{_sign(_secret(store), body)}"


def open_link(store: Store, token: str, now_ms: int) -> tuple[int | None, str | None]:
    """(alert id, None) for a good link; (None or the id, why not) otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None, "not a link Kinsight made"
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(_secret(store), body), parts[2]):
        return None, "not a link Kinsight made"
    if int(parts[1]) * 1000 < now_ms:
        return int(parts[0]), "expired"
    return int(parts[0]), None
