"""Each resident's days as features, computed once and kept: what a morning needs.

A morning reads the new day(s), not the whole history. Day features are stored per
resident and local day (``day_features``) with the version of their definition
(``learning.FEATURES_VERSION``), and each resident's own night (``resident_nights``)
once it is settled: learnt from the first ``LEARNING_DAYS`` days with data, it does
not change after them. Until then (a resident's first fortnight) the days are
computed from everything there is, as ``learning.personal_features`` does. A day's features
depend on the activities from the evening before it to the small hours after, so
the new days are computed from a window that starts two days before the first of
them. Stored days of another version are derived again, and the log says so.

The real-time rules' routine (``learning.routine``) is put together from each day's
summary, kept the same way (``routine_days``) once it can no longer change: the
routine of a morning reads 14 small rows, not a fortnight of activities, and the
rules themselves read the last ``CHECK_WINDOW_MS`` only (further back only when
nothing in it says when someone was last at home). A day's summary, like its
features, is not revised by data that arrives more than a day after it.

>>> from kinsight.store import Store
>>> store = Store(":memory:")
>>> ensure_days(store)
>>> stored_night(store, "r-1") is None
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import orjson

from ..learning import DEFAULT_NIGHT, FEATURES_VERSION, daily_features, learn_night
from ..learning.routine import (
    HISTORY_DAYS,
    OCCUPANCY,
    Routine,
    day_summary,
    routine_from,
    summary_is_final,
    summary_window,
)
from ..residents import Activity, activities_of, as_seen_at, recent_activities
from ..residents.from_nodes import latest_activities, merge
from ..store import Migration, Store

log = logging.getLogger(__name__)

LEARNING_DAYS = 14  # the night is the first fortnight's (personal_features' default)
_WINDOW_BEFORE_DAYS = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS day_features (
    resident TEXT NOT NULL,
    day TEXT NOT NULL,
    version INTEGER NOT NULL,
    features TEXT NOT NULL,
    PRIMARY KEY (resident, day)
);
CREATE TABLE IF NOT EXISTS routine_days (
    resident TEXT NOT NULL,
    day TEXT NOT NULL,
    version INTEGER NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (resident, day)
);
CREATE TABLE IF NOT EXISTS resident_nights (
    resident TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    start_min REAL NOT NULL,
    end_min REAL NOT NULL
);
"""
MIGRATIONS = (Migration(1, 'stored day features, day summaries and settled nights', _SCHEMA),)



def _json(value: object) -> str:
    """A stored row's JSON, keys sorted (the same value, the same text)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def ensure_days(store: Store) -> None:
    store.migrate('days', MIGRATIONS)


def stored_night(store: Store, resident: str) -> tuple[float, float] | None:
    """The resident's settled night, if it is settled under today's definitions."""
    row = store.conn.execute("SELECT version, start_min, end_min FROM resident_nights "
                             "WHERE resident = ?", (resident,)).fetchone()
    if row is None or int(row[0]) != FEATURES_VERSION:
        return None
    return float(row[1]), float(row[2])


def _midnight_ms(day: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, time(), zone).timestamp() * 1000)


def days_window_start(first_new: date, tz: str) -> int:
    """Where ``new_days`` starts reading for days from ``first_new``."""
    return _midnight_ms(first_new - timedelta(days=_WINDOW_BEFORE_DAYS), ZoneInfo(tz))


def _rederive_if_old(store: Store, resident: str) -> None:
    night = store.conn.execute("SELECT version FROM resident_nights WHERE resident = ?",
                               (resident,)).fetchone()
    if night is not None and int(night[0]) == FEATURES_VERSION:
        return  # settled under today's definitions, and so was every day kept with it
    old = store.conn.execute(
        "SELECT COUNT(*) FROM day_features WHERE resident = ? AND version != ?",
        (resident, FEATURES_VERSION)).fetchone()[0]
    if old:
        log.warning("%s: %d stored days are of feature definitions other than version %d; "
                    "deriving them again", resident, old, FEATURES_VERSION)
        with store.transaction():
            store.conn.execute("DELETE FROM day_features WHERE resident = ?", (resident,))
            store.conn.execute("DELETE FROM routine_days WHERE resident = ?", (resident,))
            store.conn.execute("DELETE FROM resident_nights WHERE resident = ?", (resident,))


def new_days(store: Store, resident: str, tz: str, first_new: date | None, now_ms: int,
             recent_from_ms: int) -> tuple[dict[date, dict[str, float]], list[Activity]]:
    """Features of the days from ``first_new`` (None: from the first day there is) up to
    the day of ``now_ms``, as seen at ``now_ms``; and the activities read, at least
    those ending at or after ``recent_from_ms`` (what the real-time rules look at)."""
    ensure_days(store)
    _rederive_if_old(store, resident)
    zone = ZoneInfo(tz)
    night = stored_night(store, resident)
    if night is None or first_new is None:
        # As personal_features: the night of the first days with data, then every day.
        acts = as_seen_at(activities_of(store, resident), now_ms)
        first = daily_features(acts, tz)
        learnt = learn_night(first, sorted(first)[:LEARNING_DAYS])
        feats = first if learnt == DEFAULT_NIGHT else daily_features(acts, tz, learnt)
        today = datetime.fromtimestamp(now_ms / 1000, tz=zone).date()
        complete = [d for d in sorted(first) if d < today]
        # Settled once the first days are all complete ones: today's, seen in part, may
        # not be among them (later mornings would learn it whole, and differently).
        if night is None and len(complete) >= LEARNING_DAYS:
            with store.transaction():
                store.conn.execute(
                    "INSERT OR REPLACE INTO resident_nights VALUES (?, ?, ?, ?)",
                    (resident, FEATURES_VERSION, learnt[0], learnt[1]))
        return feats, acts
    days_from_ms = days_window_start(first_new, tz)
    acts = as_seen_at(recent_activities(store, resident, min(days_from_ms, recent_from_ms),
                                        now_ms),
                      now_ms)
    # The new days' features from their own window only, however much more was read.
    feats = daily_features([a for a in acts if a.end_ms >= days_from_ms], tz, night)
    return {d: f for d, f in feats.items() if d >= first_new}, acts


def keep_days(store: Store, resident: str, feats: dict[date, dict[str, float]],
              days: Iterable[date]) -> None:
    """Store the features of ``days`` (complete days: a morning's new ones)."""
    ensure_days(store)
    rows = [(resident, d.isoformat(), FEATURES_VERSION, _json(feats.get(d, {})))
            for d in days]
    if rows:
        with store.transaction():
            store.conn.executemany("INSERT OR REPLACE INTO day_features VALUES (?, ?, ?, ?)",
                                   rows)


def stored_days(store: Store, resident: str, since: date | None = None
                ) -> dict[date, dict[str, float]]:
    """The resident's stored day features (from ``since``), for reports and charts."""
    ensure_days(store)
    sql = "SELECT day, features FROM day_features WHERE resident = ? AND version = ?"
    params: tuple[object, ...] = (resident, FEATURES_VERSION)
    if since is not None:
        sql += " AND day >= ?"
        params = (*params, since.isoformat())
    return {date.fromisoformat(d): orjson.loads(f) for d, f in store.conn.execute(sql, params)}


# What the real-time rules read besides the routine: the stays, nights and sensors
# of the last two days, and when someone was last seen (see ``realtime_activities``).
CHECK_WINDOW_MS = 2 * 24 * 3_600_000
# As far as a routine's days reach (the fortnight and the evening before it).
ROUTINE_WINDOW_MS = (HISTORY_DAYS + 2) * 24 * 3_600_000


def seen_since(acts: Iterable[Activity], lo_ms: int) -> bool:
    """Whether some sign of someone at home in ``acts`` is at ``lo_ms`` or later (as
    the rules time a sign: an occupancy by its end, anything else by its start)."""
    return any((a.end_ms if a.sensor in OCCUPANCY else a.start_ms) >= lo_ms
               for a in acts if a.sensor not in ("heartbeat", "heart_rate"))


def realtime_activities(store: Store, resident: str, now_ms: int) -> list[Activity]:
    """What the real-time rules need at ``now_ms``, as seen then: the activities of the
    last ``CHECK_WINDOW_MS``, with ``with_last_sign`` for a home quiet for longer."""
    lo = now_ms - CHECK_WINDOW_MS
    acts = as_seen_at(recent_activities(store, resident, lo, now_ms), now_ms)
    if seen_since(acts, lo):
        return acts
    return with_last_sign(store, resident, acts, lo, now_ms)


def _moment(a: Activity) -> int:
    return a.end_ms if a.sensor in OCCUPANCY else a.start_ms


def with_last_sign(store: Store, resident: str, acts: list[Activity], lo_ms: int,
                   now_ms: int) -> list[Activity]:
    """``acts`` (those ending at or after ``lo_ms``, with no sign of anyone in them) and
    the last signs before ``lo_ms``, found by index (``latest_activities``): when
    someone was last at home, and by what, is all the rules ask of older days. When
    the signs found cannot be sure to hold the last one, the ``ROUTINE_WINDOW_MS``
    before now are read instead."""
    older, bound = latest_activities(store, resident, lo_ms)
    signs = [a for a in older if a.sensor not in ("heartbeat", "heart_rate")]
    if bound is None or (signs and max(_moment(a) for a in signs) > bound):
        return merge(as_seen_at(older, now_ms), acts)
    return as_seen_at(recent_activities(store, resident, now_ms - ROUTINE_WINDOW_MS, now_ms),
                      now_ms)


def routine_for(store: Store, resident: str, tz: str, today: date, now_ms: int,
                acts: list[Activity] | None = None, acts_since_ms: int | None = None
                ) -> Routine:
    """The resident's routine for ``today`` (the fortnight before it) from the stored
    day summaries; the days not stored yet are summarised from the store, or from
    ``acts`` (all those ending at or after ``acts_since_ms``) when they reach back far
    enough, and kept once final."""
    ensure_days(store)
    zone = ZoneInfo(tz)
    days = [today - timedelta(days=i) for i in range(HISTORY_DAYS, 0, -1)]
    summaries: dict[date, dict[str, object]] = {
        date.fromisoformat(d): orjson.loads(text) for d, text in store.conn.execute(
            "SELECT day, summary FROM routine_days WHERE resident = ? AND day >= ? AND "
            "day < ? AND version = ?", (resident, days[0].isoformat(), today.isoformat(),
                                        FEATURES_VERSION))}
    missing = [d for d in days if d not in summaries]
    if missing:
        lo = summary_window(missing[0], zone)[0]
        if acts is None or acts_since_ms is None or acts_since_ms > lo:
            acts = as_seen_at(recent_activities(store, resident, lo, now_ms), now_ms)
        rows = []
        for d in missing:
            summaries[d] = day_summary(acts, d, tz)
            if summary_is_final(acts, d, now_ms, tz):
                rows.append((resident, d.isoformat(), FEATURES_VERSION,
                             _json(summaries[d])))
        if rows:
            with store.transaction():
                store.conn.executemany(
                    "INSERT OR REPLACE INTO routine_days VALUES (?, ?, ?, ?)", rows)
    return routine_from(summaries, today, tz)
