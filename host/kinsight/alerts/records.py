"""Stored alerts: the ``alerts``, ``deliveries``, ``audit`` and ``sensitivity`` tables.

``AlertRecord`` is an alert as stored; ``list_alerts`` and ``get_alert`` read them
back, and ``learned_sensitivity`` is what carers' acknowledgements have taught.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..store import Migration, Store, add_column

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    resident TEXT NOT NULL,
    condition TEXT NOT NULL,
    severity TEXT NOT NULL,
    day TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    score REAL NOT NULL,
    text TEXT NOT NULL,
    series TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    outcome TEXT,
    acknowledged_by TEXT,
    acknowledged_ms INTEGER,
    snoozed_until_ms INTEGER,
    subject TEXT NOT NULL DEFAULT '',
    series_of TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    member TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_ms INTEGER NOT NULL DEFAULT 0,
    sent_ms INTEGER,
    error TEXT,
    UNIQUE (alert_id, member, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state);
CREATE INDEX IF NOT EXISTS alerts_resident ON alerts (resident, created_ms);
CREATE TABLE IF NOT EXISTS audit (
    ts_ms INTEGER NOT NULL,
    alert_id INTEGER,
    resident TEXT,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_resident ON audit (resident, ts_ms);
CREATE TABLE IF NOT EXISTS away (
    resident TEXT NOT NULL,
    from_day TEXT NOT NULL,
    to_day TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_ms INTEGER NOT NULL,
    PRIMARY KEY (resident, from_day)
);
CREATE TABLE IF NOT EXISTS sensitivity (
    resident TEXT NOT NULL,
    condition TEXT NOT NULL,
    multiplier REAL NOT NULL,
    PRIMARY KEY (resident, condition)
);
"""


MIGRATIONS = (
    Migration(1, "alerts, deliveries, audit, away and sensitivity tables", _SCHEMA),
    Migration(2, "alerts say what they are about (a sensor)",
              add_column("alerts", "subject", "TEXT NOT NULL DEFAULT ''")),
    Migration(3, "alerts say what their series is of (its unit)",
              add_column("alerts", "series_of", "TEXT NOT NULL DEFAULT ''")),
)


def ensure_tables(store: Store) -> None:
    store.migrate("alerts", MIGRATIONS)


@dataclass(frozen=True)
class AlertRecord:
    id: int
    resident: str
    condition: str
    severity: str  # "urgent" | "digest"
    day: str  # ISO date the finding is about
    created_ms: int
    text: str  # plain English with the evidence
    series: list[list[Any]]  # [[ISO date, value], ...], oldest first
    state: str  # "open" | "acknowledged" | "snoozed"
    score: float = 0.0
    outcome: str | None = None
    acknowledged_by: str | None = None
    acknowledged_ms: int | None = None
    snoozed_until_ms: int | None = None
    subject: str = ""  # what it is about, where a condition has several (a sensor)
    series_of: str = ""  # the feature ``series`` is of (its unit), "" where unknown

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLS = ("id, resident, condition, severity, day, created_ms, text, series, state, score, "
         "outcome, acknowledged_by, acknowledged_ms, snoozed_until_ms, subject, series_of")


def _record(row: tuple[Any, ...]) -> AlertRecord:
    (i, r, c, sev, day, created, text, series, state, score, outcome, by, ack_ms,
     snz, subject, series_of) = row
    return AlertRecord(i, r, c, sev, day, created, text, json.loads(series), state, score,
                       outcome, by, ack_ms, snz, str(subject), str(series_of))


def list_alerts(store: Store, resident: str | None = None, state: str | None = None
                ) -> list[AlertRecord]:
    """The alerts (of ``resident``, in ``state``), oldest first."""
    ensure_tables(store)
    where = [(c, v) for c, v in (("resident", resident), ("state", state)) if v is not None]
    sql = f"SELECT {_COLS} FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(f"{c} = ?" for c, _v in where)
    params = tuple(v for _c, v in where)
    return [_record(r) for r in store.conn.execute(sql + " ORDER BY created_ms, id", params)]


def get_alert(store: Store, alert_id: int) -> AlertRecord | None:
    ensure_tables(store)
    row = store.conn.execute(f"SELECT {_COLS} FROM alerts WHERE id = ?",
                             (alert_id,)).fetchone()
    return None if row is None else _record(row)


def copy_alerts(store: Store, alerts: list[AlertRecord], state: str | None = None) -> None:
    """Store ``alerts`` (from another store) as new rows, in their own state or in
    ``state``; their deliveries and audit trail stay behind."""
    ensure_tables(store)
    store.conn.executemany(
        "INSERT INTO alerts (resident, condition, severity, day, created_ms, score, text, "
        "series, state, subject, series_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(a.resident, a.condition, a.severity, a.day, a.created_ms, a.score, a.text,
          json.dumps(a.series), state or a.state, a.subject, a.series_of) for a in alerts])


@dataclass(frozen=True)
class Away:
    """The resident away from home (holiday, hospital) from one day to another,
    set from the care team's app: nothing is raised about those days."""

    from_day: str
    to_day: str
    set_by: str
    set_ms: int


def away_periods(store: Store, resident: str) -> list[Away]:
    ensure_tables(store)
    return [Away(*r) for r in store.conn.execute(
        "SELECT from_day, to_day, set_by, set_ms FROM away WHERE resident = ? "
        "ORDER BY from_day", (resident,))]


def is_away(store: Store, resident: str, day: str) -> bool:
    return store.conn.execute("SELECT 1 FROM away WHERE resident = ? AND from_day <= ? AND "
                              "to_day >= ? LIMIT 1", (resident, day, day)).fetchone() is not None


def learned_sensitivity(store: Store, resident: str, condition: str) -> float:
    ensure_tables(store)
    row = store.conn.execute("SELECT multiplier FROM sensitivity WHERE resident = ? AND "
                             "condition = ?", (resident, condition)).fetchone()
    return float(row[0]) if row else 1.0
