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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kinsight_wire as wire

from .errors import StoreError
from .wire import EventBatch, Frame, Status, SummaryBatch

SCHEMA_VERSION = 1
_ENUM_FIELDS = {"type", "role", "reset_cause"}


def _columns(spec: tuple[tuple[int, str, int, int], ...], skip: tuple[str, ...] = ()) -> list[str]:
    cols = []
    for _, name, vtype, _ in spec:
        if name in skip:
            continue
        sqltype = "TEXT" if vtype == wire.T_TEXT or name in _ENUM_FIELDS else "INTEGER"
        cols.append(f"{name} {sqltype}")
    return cols


EVENT_COLUMNS = [c.split()[0] for c in _columns(wire.EVENT_FIELDS)]
SUMMARY_COLUMNS = [c.split()[0] for c in _columns(wire.SUMMARY_FIELDS)]
STATUS_COLUMNS = [c.split()[0] for c in _columns(wire.STATUS_FIELDS)]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    node_id INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    added_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY,
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
    frame_id INTEGER NOT NULL REFERENCES frames (id),
    idx INTEGER NOT NULL,
    node_id INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    {", ".join(_columns(wire.EVENT_FIELDS))},
    PRIMARY KEY (frame_id, idx)
);
CREATE INDEX IF NOT EXISTS events_node_time ON events (node_id, start_ms);
CREATE TABLE IF NOT EXISTS summaries (
    frame_id INTEGER NOT NULL REFERENCES frames (id),
    idx INTEGER NOT NULL,
    node_id INTEGER NOT NULL,
    end_s INTEGER NOT NULL,
    {", ".join(_columns(wire.SUMMARY_FIELDS))},
    PRIMARY KEY (frame_id, idx)
);
CREATE TABLE IF NOT EXISTS statuses (
    frame_id INTEGER PRIMARY KEY REFERENCES frames (id),
    node_id INTEGER NOT NULL,
    time_s INTEGER NOT NULL,
    {", ".join(_columns(wire.STATUS_FIELDS))}
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

_INSERT_EVENT = (f"INSERT INTO events (frame_id, idx, node_id, start_ms, "
                 f"{', '.join(EVENT_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * (4 + len(EVENT_COLUMNS)))})")
_INSERT_SUMMARY = (f"INSERT INTO summaries (frame_id, idx, node_id, end_s, "
                   f"{', '.join(SUMMARY_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * (4 + len(SUMMARY_COLUMNS)))})")
_INSERT_STATUS = (f"INSERT INTO statuses (frame_id, node_id, time_s, {', '.join(STATUS_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * (3 + len(STATUS_COLUMNS)))})")


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
        if not create and self.path != ":memory:" and not Path(self.path).exists():
            raise StoreError(f"{self.path}: no such database")
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
        with self.transaction():
            self.conn.execute(
                "INSERT INTO nodes VALUES (?, ?, ?) ON CONFLICT (node_id) DO UPDATE "
                "SET key = excluded.key, added_ms = excluded.added_ms", (node_id, key, now_ms))

    def node_keys(self) -> dict[int, bytes]:
        return dict(self.conn.execute("SELECT node_id, key FROM nodes"))

    # --- frames and records ------------------------------------------------------------------

    def insert_frame(self, frame: Frame, received_ms: int, *, reassembled: bool = False
                     ) -> int | None:
        """Archive a frame; None when its (node, boot, seq) is already there."""
        h = frame.header
        msg = getattr(frame.body, "msg", None) if frame.kind == "fragment" else None
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO frames (node_id, boot, seq, kind, time_s, received_ms, "
            "reassembled, msg, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (h.node_id, h.boot, h.seq, frame.kind, h.time_s, received_ms, int(reassembled), msg,
             frame.raw))
        return cur.lastrowid if cur.rowcount == 1 else None

    def archived_raw(self, node_id: int, boot: int, seq: int) -> bytes | None:
        row = self.conn.execute("SELECT raw FROM frames WHERE node_id=? AND boot=? AND seq=?",
                                (node_id, boot, seq)).fetchone()
        return None if row is None else bytes(row[0])

    def insert_records(self, frame_id: int, frame: Frame) -> int:
        """Store the records a frame carries; returns how many rows."""
        h, body = frame.header, frame.body
        if isinstance(body, EventBatch):
            self.conn.executemany(_INSERT_EVENT, [
                (frame_id, i, h.node_id, e.start_ms(h), *(getattr(e, c) for c in EVENT_COLUMNS))
                for i, e in enumerate(body.events)])
            return len(body.events)
        if isinstance(body, SummaryBatch):
            self.conn.executemany(_INSERT_SUMMARY, [
                (frame_id, i, h.node_id, s.end_s(h), *(getattr(s, c) for c in SUMMARY_COLUMNS))
                for i, s in enumerate(body.summaries)])
            return len(body.summaries)
        if isinstance(body, Status):
            self.conn.execute(_INSERT_STATUS, (frame_id, h.node_id, h.time_s,
                                               *(getattr(body, c) for c in STATUS_COLUMNS)))
            return 1
        return 0

    def boot_seqs(self, node_id: int, boot: int) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT seq FROM frames WHERE node_id=? AND boot=? ORDER BY seq", (node_id, boot))]

    def fragment_raws(self, node_id: int, boot: int, msg: int) -> list[bytes]:
        return [bytes(r[0]) for r in self.conn.execute(
            "SELECT raw FROM frames WHERE node_id=? AND boot=? AND msg=? ORDER BY seq",
            (node_id, boot, msg))]

    def record_rejected(self, reason: str, node_id: int | None, received_ms: int, message: str,
                        raw: bytes) -> None:
        """Keep a refused frame for diagnosis; the same bytes are kept once."""
        digest = hashlib.sha256(raw).digest()[:16]
        self.conn.execute("INSERT OR IGNORE INTO rejected VALUES (?, ?, ?, ?, ?, ?)",
                          (digest, reason, node_id, received_ms, message, raw[:1024]))

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
