"""The SQLite store: node keys, the archive of accepted frames, decoded records.

One file, in WAL mode. The frame archive keeps every accepted frame's bytes, so
records can always be rebuilt from it; the record tables (events, summaries,
statuses) take their columns from the field tables of ``kinsight_wire``.
Writes happen inside ``transaction()``: a batch is stored whole or not at all.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kinsight_wire as wire

from ..errors import StoreError

SCHEMA_VERSION = 1
_ENUM_FIELDS = {"type", "role", "reset_cause"}


def _columns(spec: tuple[tuple[int, str, int, int], ...]) -> list[str]:
    cols = []
    for _, name, vtype, _ in spec:
        sqltype = "TEXT" if vtype == wire.T_TEXT or name in _ENUM_FIELDS else "INTEGER"
        cols.append(f"{name} {sqltype}")
    return cols


# Record columns in field-table order: a checked row goes in as it is.
EVENT_COLUMNS = [name for _, name, _, _ in wire.EVENT_FIELDS]
SUMMARY_COLUMNS = [name for _, name, _, _ in wire.SUMMARY_FIELDS]
STATUS_COLUMNS = [name for _, name, _, _ in wire.STATUS_FIELDS]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    node_id INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    added_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    node_id INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    time_s INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    reassembled INTEGER NOT NULL DEFAULT 0,
    msg INTEGER,
    raw BLOB NOT NULL,
    UNIQUE (node_id, boot, seq)
);
CREATE INDEX IF NOT EXISTS frames_msg ON frames (node_id, boot, msg) WHERE msg IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    node_id INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    {", ".join(_columns(wire.EVENT_FIELDS))},
    FOREIGN KEY (node_id, boot, seq) REFERENCES frames (node_id, boot, seq)
);
CREATE TABLE IF NOT EXISTS summaries (
    node_id INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    end_s INTEGER NOT NULL,
    {", ".join(_columns(wire.SUMMARY_FIELDS))},
    FOREIGN KEY (node_id, boot, seq) REFERENCES frames (node_id, boot, seq)
);
CREATE TABLE IF NOT EXISTS statuses (
    node_id INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time_s INTEGER NOT NULL,
    {", ".join(_columns(wire.STATUS_FIELDS))},
    FOREIGN KEY (node_id, boot, seq) REFERENCES frames (node_id, boot, seq)
);
CREATE TABLE IF NOT EXISTS rejected (
    digest BLOB PRIMARY KEY,
    reason TEXT NOT NULL,
    node_id INTEGER,
    received_ms INTEGER NOT NULL,
    message TEXT NOT NULL,
    raw BLOB NOT NULL
);
"""

def _insert(table: str, first: tuple[str, ...], columns: list[str]) -> str:
    names = [*first, *columns]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


_INSERT_FRAME = _insert("frames", ("node_id", "boot", "seq", "kind", "time_s", "received_ms",
                                   "reassembled", "msg", "raw"), [])
_INSERT_EVENT = _insert("events", ("node_id", "boot", "seq", "idx", "start_ms"), EVENT_COLUMNS)
_INSERT_SUMMARY = _insert("summaries", ("node_id", "boot", "seq", "idx", "end_s"),
                          SUMMARY_COLUMNS)
_INSERT_STATUS = _insert("statuses", ("node_id", "boot", "seq", "time_s"), STATUS_COLUMNS)


@dataclass
class BatchRows:
    """Rows waiting to be written together, in the columns of their tables."""

    frames: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    summaries: list[tuple[Any, ...]] = field(default_factory=list)
    statuses: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: list[tuple[Any, ...]] = field(default_factory=list)

    def clear(self) -> None:
        for rows in (self.frames, self.events, self.summaries, self.statuses, self.rejected):
            rows.clear()


def rejected_row(reason: str, node_id: int | None, received_ms: int, message: str,
                 raw: bytes) -> tuple[Any, ...]:
    """A refused frame, kept for diagnosis: the same bytes are kept once."""
    digest = hashlib.sha256(raw).digest()[:16]
    return (digest, reason, node_id, received_ms, message, raw[:1024])


def weak_key(key: bytes) -> str | None:
    """Why ``key`` is no secret, or None. Refused: a pattern of up to 8 bytes repeated (all
    zeros, one byte over and over, "deadbeef..." or a word typed again and again), and
    keys of fewer than 8 different bytes. A random 16-byte key is either with a chance
    under 1e-12; such keys are what a placeholder or a typing slip gives.

    >>> weak_key(bytes(32)), weak_key(b"ab" * 16), weak_key(bytes(range(32))) is None
    ('a pattern of 1 byte repeated', 'a pattern of 2 bytes repeated', True)
    """
    for period in range(1, 9):
        if len(key) > period and key == (key[:period] * (len(key) // period + 1))[:len(key)]:
            return f"a pattern of {period} byte{'s' if period > 1 else ''} repeated"
    if len(set(key)) < 8:
        return f"only {len(set(key))} different byte values"
    return None


@dataclass(frozen=True)
class NodeSummary:
    node_id: int
    frames: int
    events: int
    summaries: int
    statuses: int
    lost: int
    rejected: int
    last_received_ms: int | None


class Store:
    """A Kinsight SQLite database. Use as a context manager, or call close()."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = str(path)
        self._own_changes = 0  # key changes through this connection (see change_mark)
        if not create and self.path != ":memory:" and not Path(self.path).exists():
            raise StoreError(f"no database at {self.path}")
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable Kinsight database ({exc})") from None

    def _migrate(self) -> None:
        row = None
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.OperationalError:
            pass
        if row is not None and int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: database schema {row[0]} is not {SCHEMA_VERSION}")
        self.conn.executescript(
            "BEGIN IMMEDIATE;" + _SCHEMA + "INSERT OR IGNORE INTO meta VALUES "
            f"('schema_version', '{SCHEMA_VERSION}'); COMMIT;")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside land together or not at all."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- node keys ---------------------------------------------------------------------------

    def set_node_key(self, node_id: int, key: bytes, now_ms: int) -> None:
        if not 0 <= node_id <= wire.U32_MAX:
            raise ValueError(f"node id {node_id} is outside 0..{wire.U32_MAX}")
        if not 16 <= len(key) <= 64:
            raise ValueError(f"a node key must be 16 to 64 bytes, not {len(key)}")
        weak = weak_key(key)
        if weak:
            raise ValueError(f"node {node_id}: refusing a weak key ({weak}); give the node "
                             "a random one")
        with self.transaction():
            self.conn.execute(
                "INSERT INTO nodes VALUES (?, ?, ?) ON CONFLICT (node_id) DO UPDATE "
                "SET key = excluded.key, added_ms = excluded.added_ms", (node_id, key, now_ms))
        self._own_changes += 1

    def node_keys(self) -> dict[int, bytes]:
        return dict(self.conn.execute("SELECT node_id, key FROM nodes"))

    def remove_node_key(self, node_id: int) -> bool:
        """Forget a node's key (its frames are refused from then on; its records stay).
        False when it had none."""
        with self.transaction():
            cur = self.conn.execute("DELETE FROM nodes WHERE node_id = ?", (node_id,))
        self._own_changes += 1
        return cur.rowcount > 0

    def change_mark(self) -> tuple[int, int]:
        """Changes since: another connection's commits (SQLite's ``data_version``) and
        this one's key changes. Cheap enough to ask once a batch."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        return int(version), self._own_changes

    # --- frames and records ------------------------------------------------------------------

    def write(self, rows: BatchRows) -> None:
        """Write a batch's rows (frames first: records refer to them)."""
        c = self.conn
        if rows.frames:
            c.executemany(_INSERT_FRAME, rows.frames)
        if rows.events:
            c.executemany(_INSERT_EVENT, rows.events)
        if rows.summaries:
            c.executemany(_INSERT_SUMMARY, rows.summaries)
        if rows.statuses:
            c.executemany(_INSERT_STATUS, rows.statuses)
        if rows.rejected:
            c.executemany("INSERT OR IGNORE INTO rejected VALUES (?, ?, ?, ?, ?, ?)",
                          rows.rejected)

    def archived_raw(self, node_id: int, boot: int, seq: int) -> bytes | None:
        row = self.conn.execute("SELECT raw FROM frames WHERE node_id=? AND boot=? AND seq=?",
                                (node_id, boot, seq)).fetchone()
        return None if row is None else bytes(row[0])

    def boot_seqs(self, node_id: int, boot: int) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT seq FROM frames WHERE node_id=? AND boot=? ORDER BY seq", (node_id, boot))]

    def fragment_raws(self, node_id: int, boot: int, msg: int) -> list[bytes]:
        return [bytes(r[0]) for r in self.conn.execute(
            "SELECT raw FROM frames WHERE node_id=? AND boot=? AND msg=? ORDER BY seq",
            (node_id, boot, msg))]

    # --- reading -----------------------------------------------------------------------------

    def reject_counts(self) -> dict[str, int]:
        return dict(self.conn.execute(
            "SELECT reason, COUNT(*) FROM rejected GROUP BY reason ORDER BY reason"))

    def lost_frames(self) -> dict[int, int]:
        """Per node, sequence numbers never received (gaps and missing tails are not known)."""
        return dict(self.conn.execute(
            "SELECT node_id, SUM(top + 1 - n) FROM (SELECT node_id, MAX(seq) AS top, "
            "COUNT(*) AS n FROM frames GROUP BY node_id, boot) GROUP BY node_id"))

    def node_summaries(self) -> list[NodeSummary]:
        lost = self.lost_frames()
        rejected = dict(self.conn.execute(
            "SELECT node_id, COUNT(*) FROM rejected WHERE node_id IS NOT NULL GROUP BY node_id"))

        def count(table: str) -> dict[int, int]:
            return dict(self.conn.execute(
                f"SELECT node_id, COUNT(*) FROM {table} GROUP BY node_id"))  # noqa: S608

        events, summaries, statuses = count("events"), count("summaries"), count("statuses")
        rows = self.conn.execute(
            "SELECT node_id, COUNT(*), MAX(received_ms) FROM frames GROUP BY node_id").fetchall()
        seen = {r[0] for r in rows}
        rows += [(n, 0, None) for n in sorted(set(rejected) - seen)]
        return [NodeSummary(node_id=n, frames=f, events=events.get(n, 0),
                            summaries=summaries.get(n, 0), statuses=statuses.get(n, 0),
                            lost=lost.get(n, 0), rejected=rejected.get(n, 0), last_received_ms=t)
                for n, f, t in sorted(rows)]

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()
