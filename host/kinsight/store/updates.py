"""Firmware updates staged for nodes, and what became of them.

``kinsight ota`` stages a bundle (``stage``) for one node: its bytes, SHA-256 and the
firmware version it carries. The ingest path offers each node its staged bundle in
the acks it sends it (``offers``), answers the node's requests with pieces of it
(``bundle_bytes``), and reads the node's status frames: a node that runs the bundle
has installed it, one that names it as failed rolled it back (``note_status``).
Staging another bundle for the node supersedes one not yet installed.

>>> from kinsight.store import Store
>>> store = Store(":memory:")
>>> first = stage(store, 7, b"KSB1", "0.3.0", now_ms=0)
>>> second = stage(store, 7, b"KSB1...", "0.3.1", now_ms=1)
>>> [(u.bundle, u.state) for u in updates(store)]
[(1, 'superseded'), (2, 'staged')]
>>> offers(store)[7].size
7
>>> note_status(store, 7, running=2, failed=None, now_ms=5)
'installed'
>>> offers(store)
{}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import kinsight_wire as wire

from ..errors import StoreError
from .migrations import Migration
from .sqlite import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY,  -- the bundle's id, as offered to the node
    node_id INTEGER NOT NULL,
    firmware TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 BLOB NOT NULL,
    data BLOB NOT NULL,
    staged_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    state_ms INTEGER NOT NULL,
    fetched INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS updates_node ON updates (node_id, state);
"""
MIGRATIONS = (Migration(1, "firmware bundles staged for nodes", _SCHEMA),)

#: What a staged bundle can become.
STATES = ("staged", "installed", "failed", "superseded", "cancelled")


@dataclass(frozen=True, slots=True)
class Offer:
    bundle: int
    size: int
    sha256: bytes


@dataclass(frozen=True, slots=True)
class Update:
    bundle: int
    node_id: int
    firmware: str
    size: int
    sha256: str
    staged_ms: int
    state: str
    state_ms: int
    fetched: int  # the furthest byte the node has asked for: how far it has come


def _ready(store: Store) -> None:
    store.migrate("updates", MIGRATIONS)


def stage(store: Store, node_id: int, bundle: bytes, firmware: str, *, now_ms: int) -> int:
    """Stage ``bundle`` for the node; its id. What was staged for it before and not
    installed is superseded."""
    if not 0 < len(bundle) <= wire.MAX_BUNDLE_BYTES:
        raise StoreError(f"a bundle of {len(bundle)} bytes is outside 1..{wire.MAX_BUNDLE_BYTES}")
    _ready(store)
    with store.transaction():
        store.conn.execute("UPDATE updates SET state = 'superseded', state_ms = ? "
                           "WHERE node_id = ? AND state = 'staged'", (now_ms, node_id))
        cur = store.conn.execute(
            "INSERT INTO updates (node_id, firmware, size, sha256, data, staged_ms, state, "
            "state_ms) VALUES (?, ?, ?, ?, ?, ?, 'staged', ?)",
            (node_id, firmware, len(bundle), hashlib.sha256(bundle).digest(), bundle, now_ms,
             now_ms))
        bundle_id = cur.lastrowid
    store.note_change()
    if bundle_id is None:  # pragma: no cover - both backends give the new row's id
        raise StoreError("the store gave no id for the staged bundle")
    return int(bundle_id)


def cancel(store: Store, node_id: int, *, now_ms: int) -> int:
    """Withdraw what is staged for the node; how many were."""
    _ready(store)
    with store.transaction():
        cur = store.conn.execute("UPDATE updates SET state = 'cancelled', state_ms = ? "
                                 "WHERE node_id = ? AND state = 'staged'", (now_ms, node_id))
    store.note_change()
    return int(cur.rowcount or 0)


def offers(store: Store) -> dict[int, Offer]:
    """Each node's staged bundle."""
    _ready(store)
    return {int(n): Offer(int(b), int(size), bytes(sha)) for n, b, size, sha in store.conn.execute(
        "SELECT node_id, id, size, sha256 FROM updates WHERE state = 'staged'")}


def bundle_bytes(store: Store, bundle: int) -> tuple[int, bytes] | None:
    """(node, bytes) of a staged bundle; None when it is not (or no longer) staged."""
    _ready(store)
    row = store.conn.execute("SELECT node_id, data FROM updates WHERE id = ? AND "
                             "state = 'staged'", (bundle,)).fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]))


def note_fetched(store: Store, bundle: int, upto: int) -> None:
    """The node has asked for bytes up to ``upto`` (inside the caller's transaction)."""
    store.conn.execute("UPDATE updates SET fetched = ? WHERE id = ? AND fetched < ?",
                       (upto, bundle, upto))


def note_status(store: Store, node_id: int, *, running: int | None, failed: int | None,
                now_ms: int) -> str | None:
    """What a status frame says of the node's staged bundle (inside the caller's
    transaction): 'installed' when it runs it, 'failed' when it rolled it back."""
    _ready(store)
    row = store.conn.execute("SELECT id FROM updates WHERE node_id = ? AND "
                             "state = 'staged'", (node_id,)).fetchone()
    if row is None:
        return None
    bundle = int(row[0])
    state = "installed" if running == bundle else "failed" if failed == bundle else None
    if state is not None:
        store.conn.execute("UPDATE updates SET state = ?, state_ms = ? WHERE id = ?",
                           (state, now_ms, bundle))
    return state


def updates(store: Store, node_id: int | None = None) -> list[Update]:
    """Bundles staged so far (for one node, or all), oldest first."""
    _ready(store)
    sql = ("SELECT id, node_id, firmware, size, sha256, staged_ms, state, state_ms, "
           "fetched FROM updates")
    args: tuple[int, ...] = ()
    if node_id is not None:
        sql += " WHERE node_id = ?"
        args = (node_id,)
    return [Update(int(b), int(n), str(fw), int(size), bytes(sha).hex(), int(st), str(state),
                   int(sm), int(fetched))
            for b, n, fw, size, sha, st, state, sm, fetched in store.conn.execute(
                sql + " ORDER BY id", args)]
