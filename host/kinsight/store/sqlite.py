"""The SQLite store: node keys, the archive of accepted frames, decoded records.

One file, in WAL mode. The frame archive keeps every accepted frame's bytes, so
records can always be rebuilt from it; the record tables (events, summaries,
statuses) take their columns from the field tables of ``kinsight_wire``. A frame
kept whole but whose records were not filed (a quarantined frame) says why in
``frames.quarantine``. Writes happen inside ``transaction()``: a batch is stored
whole or not at all; a full disk is a ``StoreFullError`` and leaves nothing of it.

Refused frames are counted exactly, by reason and node (``refusals``), but only
the newest of them are kept for diagnosis (``rejected``, a ring per reason within
``RejectArchiveLimits``): a sender without a key cannot fill the disk.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import kinsight_wire as wire

from ..errors import StoreError, StoreFullError
from .migrations import Migration, migrate
from .postgres import PgConnection, is_postgres_url

SCHEMA_VERSION = 4
_ENUM_FIELDS = {"type", "role", "reset_cause", "crash_cause"}


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
    quarantine TEXT,
    UNIQUE (node_id, boot, seq)
);
-- seq too, so that a message's pieces in order need neither the boot's scan nor a sort
CREATE INDEX IF NOT EXISTS frames_msg_seq ON frames (node_id, boot, msg, seq)
    WHERE msg IS NOT NULL;
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
CREATE INDEX IF NOT EXISTS rejected_reason ON rejected (reason);
-- node_id is -1 when the frame named no node with a key: ids a sender makes up
-- must not make rows here
CREATE TABLE IF NOT EXISTS refusals (
    reason TEXT NOT NULL,
    node_id INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (reason, node_id)
);
"""

# From schema 1: frames gain their quarantine column, the pieces' index takes seq, and the
# refusals counted so far (one per distinct frame kept) seed the counters.
_FROM_V1 = """
ALTER TABLE frames ADD COLUMN quarantine TEXT;
DROP INDEX IF EXISTS frames_msg;
"""
_FROM_V1_COUNTS = """
INSERT INTO refusals SELECT reason, CASE WHEN node_id IN (SELECT node_id FROM nodes)
    THEN node_id ELSE -1 END, COUNT(*) FROM rejected GROUP BY 1, 2;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
"""

#: Reasons whose frames are kept whole, and acked, but whose records are not filed.
QUARANTINE_REASONS = frozenset({"implausible_time"})

# What a kept refused row costs beyond its frame and message bytes: digest, numbers,
# the b-tree cells of the table and of its two indexes (measured: about 90 bytes).
_REJECTED_ROW_OVERHEAD = 96
_REJECTED_RAW_MAX = 1024
_REJECTED_MESSAGE_MAX = 256

def _insert(table: str, first: tuple[str, ...], columns: list[str]) -> str:
    names = [*first, *columns]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


_INSERT_FRAME = _insert("frames", ("node_id", "boot", "seq", "kind", "time_s", "received_ms",
                                   "reassembled", "msg", "raw", "quarantine"), [])
_INSERT_EVENT = _insert("events", ("node_id", "boot", "seq", "idx", "start_ms"), EVENT_COLUMNS)
_INSERT_SUMMARY = _insert("summaries", ("node_id", "boot", "seq", "idx", "end_s"),
                          SUMMARY_COLUMNS)
#: A message's archived pieces: by frames_msg_seq, never by the boot's whole range.
FRAGMENT_RAWS_SQL = ("SELECT raw FROM frames WHERE node_id = ? AND boot = ? AND msg = ? "
                     "ORDER BY seq")
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


@dataclass(frozen=True)
class RejectArchiveLimits:
    """How many refused frames are kept for diagnosis, per reason: the newest, within
    max_rows and max_bytes (frame, message and row overhead). Counts stay exact."""

    max_rows: int = 2000
    max_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_bytes < 1:
            raise ValueError("the refused-frame archive must keep at least one row and byte")


def rejected_row(reason: str, node_id: int | None, received_ms: int, message: str,
                 raw: bytes) -> tuple[Any, ...]:
    """A refused frame, kept for diagnosis: the same bytes are kept once."""
    digest = hashlib.sha256(raw).digest()[:16]
    return (digest, reason, node_id, received_ms, message[:_REJECTED_MESSAGE_MAX],
            raw[:_REJECTED_RAW_MAX])


_SQLITE_FULL = 13  # SQLite's result code; sqlite3 names it (and gives the code) from 3.11


def _is_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF == _SQLITE_FULL
    return "database or disk is full" in str(exc)


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
    rejected: int  # refused outright
    last_received_ms: int | None
    quarantined: int = 0  # kept whole, records not filed


class Store:
    """A Kinsight SQLite database. Use as a context manager, or call close()."""

    def __init__(self, path: str | Path, *, create: bool = True,
                 reject_archive: RejectArchiveLimits | None = None):
        self.path = str(path)
        self._own_changes = 0  # key changes through this connection (see change_mark)
        self.reject_archive = reject_archive or RejectArchiveLimits()
        # (rows, bytes) kept per reason, read once then kept up to date; a rollback forgets.
        self._kept: dict[str, list[int]] = {}
        self._ensured: set[str] = set()  # the layers' schema scripts already run here
        self.backend = "postgresql" if is_postgres_url(self.path) else "sqlite"
        if (self.backend == "sqlite" and not create and self.path != ":memory:"
                and not Path(self.path).exists()):
            raise StoreError(f"no database at {self.path}")
        try:
            if self.backend == "postgresql":
                # It takes the same statements as sqlite3's connection (store.postgres).
                self.conn = cast(sqlite3.Connection, PgConnection(self.path))
            else:
                self.conn = sqlite3.connect(self.path, isolation_level=None,
                                            check_same_thread=False)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.where}: not a usable Kinsight database ({exc})") from None

    @property
    def where(self) -> str:
        """The database, as said in messages (a PostgreSQL URL without its password)."""
        return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", self.path)

    def _migrate(self) -> None:
        row = None
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.OperationalError:
            pass
        old = None if row is None else int(row[0])
        if old not in (None, 1, 2, 3, SCHEMA_VERSION):
            raise StoreError(f"{self.path}: database schema {old} is not {SCHEMA_VERSION}")
        self.conn.executescript(
            "BEGIN IMMEDIATE;" + (_FROM_V1 if old == 1 else "") + _SCHEMA
            + (_FROM_V1_COUNTS if old == 1 else "") + "INSERT OR IGNORE INTO meta VALUES "
            f"('schema_version', '{SCHEMA_VERSION}'); COMMIT;")
        if old in (1, 2, 3):
            # Schema 3: status frames say more (crash records, firmware bundles); schema 4:
            # events and summaries do (a wearable's heart rate).
            with self.transaction():
                for table, spec in (("statuses", wire.STATUS_FIELDS),
                                    ("events", wire.EVENT_FIELDS),
                                    ("summaries", wire.SUMMARY_FIELDS)):
                    have = {str(r[1]) for r in self.conn.execute(f"PRAGMA table_info({table})")}
                    for column in _columns(spec):
                        if column.split()[0] not in have:
                            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
                self.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                  (str(SCHEMA_VERSION),))
        if old == 1:
            with self.transaction():
                for (reason,) in self.conn.execute(
                        "SELECT DISTINCT reason FROM rejected").fetchall():
                    self._trim_rejected(reason)

    def migrate(self, layer: str, steps: Sequence[Migration]) -> int:
        """Bring ``layer``'s tables to the last of ``steps`` (``migrations``), once per
        connection; the layer's version."""
        key = "migrate:" + layer
        if key in self._ensured:
            return max((s.version for s in steps), default=0)
        import time

        version = migrate(self, layer, steps, int(time.time() * 1000))
        self._ensured.add(key)
        return version

    def ensure_schema(self, script: str) -> bool:
        """Run a layer's ``CREATE ... IF NOT EXISTS`` script, once per connection: the
        hot paths ask for their tables on every call. True the first time."""
        if script in self._ensured:
            return False
        if self.conn.in_transaction:  # executescript would commit the open transaction
            for statement in script.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
        else:
            self.conn.executescript(script)
        self._ensured.add(script)
        return True

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside land together or not at all. A full disk (or database at its
        size limit) is a StoreFullError, after the rollback."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback()
                raise
        except sqlite3.Error as exc:
            if _is_full(exc):
                raise StoreFullError(f"{self.path}: database or disk is full; nothing of "
                                     "this batch was stored") from exc
            raise

    def _rollback(self) -> None:
        self._kept.clear()
        # SQLite may have rolled back already (it does on some SQLITE_FULL errors).
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

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

    def note_change(self) -> None:
        """A change the ingest path reads (keys, staged updates) made through this
        connection: it shows in ``change_mark``."""
        self._own_changes += 1

    def change_mark(self) -> tuple[int, int]:
        """Changes since: another connection's commits (SQLite's ``data_version``) and
        this one's key changes and staged updates. Cheap enough to ask once a batch."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        return int(version), self._own_changes

    def node_added_ms(self, node_id: int) -> int | None:
        """When the node's key was added (or last replaced): it was provisioned then."""
        row = self.conn.execute("SELECT added_ms FROM nodes WHERE node_id = ?",
                                (node_id,)).fetchone()
        return None if row is None else int(row[0])

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
            self._archive_rejected(rows.rejected)

    def _archive_rejected(self, rows: list[tuple[Any, ...]]) -> None:
        """Count every refusal; keep the newest refused frames of each reason."""
        c = self.conn
        counts: dict[tuple[str, int | None], int] = {}
        for row in rows:
            counts[row[1], row[2]] = counts.get((row[1], row[2]), 0) + 1
        c.executemany(
            "INSERT INTO refusals VALUES (?, COALESCE((SELECT node_id FROM nodes WHERE "
            "node_id = ?), -1), ?) ON CONFLICT (reason, node_id) DO UPDATE SET count = "
            "count + excluded.count", [(r, n, k) for (r, n), k in counts.items()])
        touched = set()
        for row in rows:
            kept = self._kept_usage(row[1])
            if c.execute("INSERT OR IGNORE INTO rejected VALUES (?, ?, ?, ?, ?, ?)",
                         row).rowcount:
                kept[0] += 1
                kept[1] += len(row[5]) + len(row[4].encode()) + _REJECTED_ROW_OVERHEAD
                touched.add(row[1])
        for reason in touched:
            self._trim_rejected(reason)

    def _kept_usage(self, reason: str) -> list[int]:
        kept = self._kept.get(reason)
        if kept is None:
            n, size = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(length(raw) + length(CAST(message AS BLOB))), 0) "
                "FROM rejected WHERE reason = ?", (reason,)).fetchone()
            kept = self._kept[reason] = [n, size + n * _REJECTED_ROW_OVERHEAD]
        return kept

    def _trim_rejected(self, reason: str) -> None:
        """Forget the oldest refused frames of a reason until it is within its limits."""
        lim = self.reject_archive
        kept = self._kept_usage(reason)
        if kept[0] <= lim.max_rows and kept[1] <= lim.max_bytes:
            return
        doomed = []
        rows = self.conn.execute(
            "SELECT rowid, length(raw) + length(CAST(message AS BLOB)) FROM rejected "
            "WHERE reason = ? ORDER BY rowid", (reason,))
        for rowid, size in rows:
            if kept[0] <= lim.max_rows and kept[1] <= lim.max_bytes:
                break
            doomed.append((rowid,))
            kept[0] -= 1
            kept[1] -= size + _REJECTED_ROW_OVERHEAD
        rows.close()
        self.conn.executemany("DELETE FROM rejected WHERE rowid = ?", doomed)

    def archived_raw(self, node_id: int, boot: int, seq: int) -> bytes | None:
        row = self.conn.execute("SELECT raw FROM frames WHERE node_id=? AND boot=? AND seq=?",
                                (node_id, boot, seq)).fetchone()
        return None if row is None else bytes(row[0])

    def boot_seqs(self, node_id: int, boot: int) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT seq FROM frames WHERE node_id=? AND boot=? ORDER BY seq", (node_id, boot))]

    def seqs_above(self, node_id: int, boot: int, after: int) -> list[int]:
        """The sequence numbers of (node, boot) stored above ``after``, in order."""
        return [r[0] for r in self.conn.execute(
            "SELECT seq FROM frames WHERE node_id=? AND boot=? AND seq > ? ORDER BY seq",
            (node_id, boot, after))]

    def fragment_raws(self, node_id: int, boot: int, msg: int) -> list[bytes]:
        """The archived pieces of a message, in order (by the pieces' index)."""
        return [bytes(r[0]) for r in self.conn.execute(FRAGMENT_RAWS_SQL,
                                                       (node_id, boot, msg))]

    # --- reading -----------------------------------------------------------------------------

    def reject_counts(self) -> dict[str, int]:
        """Every frame refused, or kept but quarantined, since the store began, by reason."""
        return dict(self.conn.execute(
            "SELECT reason, SUM(n) FROM (SELECT reason, count AS n FROM refusals UNION ALL "
            "SELECT quarantine, COUNT(*) FROM frames WHERE quarantine IS NOT NULL GROUP BY 1) "
            "AS counted GROUP BY reason ORDER BY reason"))

    def lost_frames(self) -> dict[int, int]:
        """Per node, sequence numbers never received (gaps and missing tails are not known)."""
        return dict(self.conn.execute(
            "SELECT node_id, SUM(top + 1 - n) FROM (SELECT node_id, MAX(seq) AS top, "
            "COUNT(*) AS n FROM frames GROUP BY node_id, boot) AS boots GROUP BY node_id"))

    def node_summaries(self) -> list[NodeSummary]:
        lost = self.lost_frames()
        quarantine = ", ".join(f"'{r}'" for r in sorted(QUARANTINE_REASONS))
        rejected = dict(self.conn.execute(
            "SELECT node_id, SUM(count) FROM refusals WHERE node_id >= 0 AND reason NOT IN "
            f"({quarantine}) GROUP BY node_id"))  # noqa: S608 - our own constants
        quarantined = dict(self.conn.execute(
            "SELECT node_id, COUNT(*) FROM frames WHERE quarantine IS NOT NULL GROUP BY node_id"))

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
                            lost=lost.get(n, 0), rejected=rejected.get(n, 0), last_received_ms=t,
                            quarantined=quarantined.get(n, 0))
                for n, f, t in sorted(rows)]

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()
