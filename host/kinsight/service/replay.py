"""What Kinsight would have said: a store's history played on a simulated clock.

``play`` runs the very path a deployment runs (``kinsight serve``'s ``Scheduler``), on
a store that holds the history: the clock moves on an hour at a time (``tick_s``);
at every tick the real-time watcher checks the residents that are due against what
was known by then, and each morning (``morning_min`` after local midnight, 07:00 by
default) the morning analysis learns the day before. Nothing is sent. ``replay``
does this on a copy of a database in memory, starting from the history alone (no earlier alerts, no
learnt models), and writes the alerts the deployment would have raised back
into the database with the state ``replayed``: ``kinsight alerts`` lists them,
and they are never delivered, never hold back a live alert, never count as
acknowledged. Replaying the same days again replaces them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..alerts import AlertRecord, AlertRouter, Policy, list_alerts
from ..alerts.records import copy_alerts, ensure_tables
from ..residents import all_activities, resident_tz, residents
from ..store import Store
from .scheduler import Scheduler

log = logging.getLogger(__name__)

TICK_S = 3600.0
MORNING_MIN = 7 * 60
_DAY_MS = 86_400_000


@dataclass
class Played:
    """What one ``play`` did: the ticks and mornings run, and the alerts raised."""

    ticks: int = 0
    mornings: int = 0
    checks: int = 0  # residents' real-time checks
    raised: list[AlertRecord] = field(default_factory=list)


def midnight_ms(day: date, tz: str) -> int:
    return int(datetime.combine(day, datetime.min.time(), ZoneInfo(tz)).timestamp() * 1000)


def play(store: Store, router: AlertRouter, start_ms: int, end_ms: int, *,
         tick_s: float = TICK_S, morning_min: int = MORNING_MIN,
         only: Collection[str] | None = None, detector: str = "engine",
         on_morning: Callable[[str, date], None] | None = None) -> Played:
    """Play [start_ms, end_ms) on ``store``, which the alerts and models land in (use a
    scratch copy: see ``replay``). ``router.clock`` must read the returned clock's
    time: ``play`` sets ``router.clock`` itself. ``on_morning(resident, day)`` is
    called after each resident's morning analysis of ``day``. Every resident is checked
    at every tick: what arrives in a replay is what the clock passes."""
    now = [start_ms]
    router.clock = lambda: now[0]
    known = [r for r in residents(store) if only is None or r in only]
    scheduler = Scheduler(store, router, lambda: now[0], tick_s=tick_s,
                          morning_min=morning_min, detector=detector, only=known,
                          history=True, on_morning=on_morning)
    out = Played()
    tick_ms = int(tick_s * 1000)
    t = start_ms
    while t < end_ms:
        now[0] = t
        out.raised += scheduler.step()
        out.ticks += 1
        t += tick_ms
    out.mornings = scheduler.analysed
    out.checks = scheduler.watcher.checks
    return out


def scratch_copy(store: Store) -> Store:
    """The store's history in memory: everything but alerts, their trail and models."""
    copy = Store(":memory:")
    store.conn.backup(copy.conn)
    for table in ("alerts", "deliveries", "audit", "models"):
        exists = copy.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                   "name = ?", (table,)).fetchone()
        if exists:
            copy.conn.execute(f"DELETE FROM {table}")  # noqa: S608 - names from the list
    return copy


def replay(store: Store, policy: Policy, first: date | None = None, last: date | None = None,
           *, tick_s: float = TICK_S, only: Collection[str] | None = None
           ) -> list[AlertRecord]:
    """Play days ``first`` to ``last`` (both included; by default the whole history)
    on a copy of ``store`` and record the alerts raised in it as ``replayed``; the
    alerts recorded."""
    who = [r for r in residents(store) if only is None or r in only]
    if not who:
        return []
    span = _history_span(store, who)
    if span is None:
        return []
    tz = resident_tz(store, who[0])
    first = first or span[0]
    end_ms = midnight_ms((last or span[1]) + timedelta(days=1), tz)
    if last is None:
        # The history stops where its data stop: after that, the silence is not theirs.
        end_ms = min(end_ms, span[2] + 1)
    last = last or span[1]
    with scratch_copy(store) as work:
        router = AlertRouter(policy, work)
        played = play(work, router, midnight_ms(first, tz), end_ms, tick_s=tick_s, only=who)
        raised = list_alerts(work)
    log.info("replayed %s to %s: %d ticks, %d mornings, %d alerts", first, last,
             played.ticks, played.mornings, len(raised))
    return record_replayed(store, raised, first, last, who)


def _history_span(store: Store, who: list[str]) -> tuple[date, date, int] | None:
    """The first and the last day of the residents' history, and when its data stop."""
    spans = []
    for resident, acts in all_activities(store).items():
        if resident not in who or not acts:
            continue
        zi = ZoneInfo(resident_tz(store, resident))
        end = max(a.end_ms for a in acts)
        spans.append((datetime.fromtimestamp(acts[0].start_ms / 1000, zi).date(),
                      datetime.fromtimestamp(end / 1000, zi).date(), end))
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans), max(s[2] for s in spans)


def record_replayed(store: Store, alerts: list[AlertRecord], first: date, last: date,
                    who: Collection[str]) -> list[AlertRecord]:
    """Replace the replayed alerts of ``who`` about days ``first`` to ``last`` with
    ``alerts``, stored as ``replayed``."""
    ensure_tables(store)
    marks = ",".join("?" * len(who))
    with store.transaction():
        store.conn.execute(
            f"DELETE FROM alerts WHERE state = 'replayed' AND day >= ? AND day <= ? "  # noqa: S608
            f"AND resident IN ({marks})", (first.isoformat(), last.isoformat(), *who))
        copy_alerts(store, alerts, "replayed")
    return [a for a in list_alerts(store) if a.state == "replayed"
            and first.isoformat() <= a.day <= last.isoformat() and a.resident in who]

