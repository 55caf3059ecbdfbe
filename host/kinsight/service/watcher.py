"""Real-time alerts while listening: the real-time rules as frames arrive.

A ``RealtimeWatcher`` is a listener's ``after_batch`` hook (``kinsight listen
--alerts``). After a batch is stored and acked it runs ``realtime.check`` for
the residents whose nodes sent events in it, so a long toilet or stairs visit or
night wandering is raised within a second of the frame. Every ``tick_s`` (and
at the first call) it checks the placed residents that are due, because "not up
yet" and "no water for hours" are about frames that do not come: after each
check, ``realtime.next_due`` says when that resident's rules could next find
something with nothing new arriving, and the resident waits in a priority queue
until then (``recheck_s`` at the latest; everyone when another connection wrote
to the store). Each resident's check reads
only their last ``days.CHECK_WINDOW_MS`` of activities (and, when the home has
been quiet for longer, when someone was last there: ``days.with_last_sign``) and
their routine from the stored day summaries.

Findings go through the ``AlertRouter`` (policy, consent, sensitivity,
throttle). On top of that the watcher raises each real-time condition (for
equipment, each sensor) at most once per resident per local day: the rules
look back up to a day, so the same long visit is found again on every frame and
tick, and under a short
``throttle_hours`` it would be raised again as soon as its alert was
acknowledged. New alerts, and on each tick anything else due (escalations,
retries, held quiet-hours messages), are then delivered.

The checks run on the listener's thread and its store connection, after the
acks: a failing check is logged and the next resident still gets theirs.
Sending is the ``deliver`` callable's: by default the router's ``deliver_due``
on the same thread; ``kinsight listen`` gives it a ``DeliveryWorker``, whose own
thread and connection send what is due, so a mail or webhook server that is down
(retries, timeouts) never holds up the frames' acks or other residents' checks.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ..alerts import AlertRecord, AlertRouter
from ..learning import Finding, realtime
from ..learning.routine import Routine
from ..residents import Activity, as_seen_at, placements, recent_activities, resident_tz
from ..residents.from_nodes import NodeMarks, events_after, merge, node_marks
from ..store import Store
from .days import (
    CHECK_WINDOW_MS,
    ROUTINE_WINDOW_MS,
    routine_for,
    seen_since,
    with_last_sign,
)

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
# The rules read the 14 local days before today; two more days cover today so far
# and a night that runs into the first of those days, whatever the time zone.
WINDOW_MS = ROUTINE_WINDOW_MS
TICK_S = 60.0
# A resident with nothing new and no deadline is checked again after this at the latest:
# a safety net under ``realtime.next_due``, not the schedule.
RECHECK_S = 900.0
_REREAD_MS = 3_600_000


def _wall_ms() -> int:
    return int(time.time() * 1000)


class RealtimeWatcher:
    """See the module's docstring. ``clock`` gives the time in ms (the rules' now,
    and when the next tick is due); ``on_alert`` is called with each alert raised."""

    def __init__(self, store: Store, router: AlertRouter, clock: Callable[[], int] = _wall_ms,
                 *, tick_s: float = TICK_S,
                 on_alert: Callable[[AlertRecord], None] | None = None,
                 deliver: Callable[[int], Any] | None = None,
                 residents: Callable[[], Collection[str]] | None = None,
                 recheck_s: float | None = RECHECK_S, history: bool = False,
                 owns: Callable[[], Collection[str]] | None = None):
        if tick_s <= 0:
            raise ValueError(f"tick_s must be positive, not {tick_s}")
        if recheck_s is not None and recheck_s <= 0:
            raise ValueError(f"recheck_s must be positive, not {recheck_s}")
        self.store = store
        self.router = router
        self.clock = clock
        self.tick_ms = int(tick_s * 1000)
        self.on_alert = on_alert
        self.deliver = deliver or router.deliver_due
        # A replay: the store holds the whole history, and what "arrives" is what the
        # clock passes, never announced: every resident is checked at every tick.
        self.history = history
        if history:
            recheck_s = None
        self.ticks = 0
        self.checks = 0  # residents checked
        self.alerts_raised = 0
        self._last_tick_ms: int | None = None
        self._unplaced_noted: set[int] = set()
        self._residents = residents
        self._owns = owns  # the residents this worker looks after (None: all)
        # (resident, local day, activities before that day) -> the routine learnt
        self._routines: dict[str, tuple[date, Routine]] = {}
        # When each resident is next due on a tick, and the same as a heap (stale
        # entries are skipped when popped); None: every resident on every tick.
        self._recheck_ms = None if recheck_s is None else int(recheck_s * 1000)
        self._due: dict[str, int] = {}
        self._queue: list[tuple[int, str]] = []
        # What changes a window other than a batch's events: placements and imports.
        self._placed: dict[int, tuple[str, str | None]] | None = None
        self._imported = -1
        self._outside = 0  # counts those changes
        self._outside_checked = -1
        self._announced: set[str] = set()  # residents whose nodes' events a batch stored
        self._windows: dict[str, _Window] = {}

    def __call__(self, node_ids: frozenset[int]) -> None:
        self.after_batch(node_ids)

    def after_batch(self, node_ids: Collection[int]) -> list[AlertRecord]:
        """Check the residents of ``node_ids`` (and, when a tick is due, every placed
        resident); the alerts raised."""
        now_ms = self.clock()
        tick_due = self.tick_is_due(now_ms)
        if not node_ids and not tick_due:
            return []
        if tick_due:
            # Counted before the store is touched: a store that fails fails once a tick.
            self._last_tick_ms = now_ms
            self.ticks += 1
        placed = placements(self.store)
        imported = int(self.store.conn.execute(
            "SELECT COALESCE(MAX(rowid), 0) FROM activities").fetchone()[0])
        if placed != self._placed or imported != self._imported:
            # Placed, moved or imported since: every window is read again, everyone due.
            self._placed, self._imported = placed, imported
            self._outside += 1
        residents = {placed[n][0] for n in node_ids if n in placed}
        if self._owns is not None:
            residents &= set(self._owns())
        self._announced |= residents
        for n in set(node_ids) - placed.keys() - self._unplaced_noted:
            self._unplaced_noted.add(n)
            log.info("node %d is not placed with a resident: its events raise no alerts", n)
        if tick_due:
            residents.update(self._due_now(now_ms, self._residents() if self._residents
                                           is not None else {r for r, _room in placed.values()}))
        raised: list[AlertRecord] = []
        for resident in sorted(residents):
            try:
                raised += self.check(resident, now_ms)
            except Exception:  # one resident's bad data must not silence the others
                log.exception("real-time check of %s failed", resident)
        if raised or tick_due:
            self.deliver(now_ms)
        return raised

    def tick_is_due(self, now_ms: int) -> bool:
        """Whether ``after_batch`` at ``now_ms`` ticks. A clock that stepped back counts
        as due, so a tick is never skipped for long."""
        return (self._last_tick_ms is None
                or not 0 <= now_ms - self._last_tick_ms < self.tick_ms)

    def _due_now(self, now_ms: int, everyone: Collection[str]) -> set[str]:
        """Who a tick checks: those whose next deadline has come (``realtime.next_due``,
        at the latest ``recheck_s`` after their last check), those never checked, and
        everyone after a placement or an import."""
        if self._recheck_ms is None or self._outside != self._outside_checked:
            self._outside_checked = self._outside
            return set(everyone)
        due = {r for r in everyone if r not in self._due}
        while self._queue and self._queue[0][0] <= now_ms:
            when, resident = heapq.heappop(self._queue)
            if self._due.get(resident) == when:  # not a deadline since replaced
                due.add(resident)
        return due & set(everyone) if due else due

    def _schedule(self, resident: str, when_ms: int) -> None:
        self._due[resident] = when_ms
        heapq.heappush(self._queue, (when_ms, resident))

    def storage_was_full(self, since_ms: int, until_ms: int) -> list[AlertRecord]:
        """The host's store was full from ``since_ms`` to ``until_ms``: nothing the nodes
        sent meanwhile was stored or acked (they kept it and sent it again). Told to every
        placed resident's circle as equipment, once the store can hold an alert again."""
        out: list[AlertRecord] = []
        residents = sorted({r for r, _room in placements(self.store).values()})
        for resident in residents:
            zi = ZoneInfo(resident_tz(self.store, resident))
            since = datetime.fromtimestamp(since_ms / 1000, tz=timezone.utc).astimezone(zi)
            until = datetime.fromtimestamp(until_ms / 1000, tz=timezone.utc).astimezone(zi)
            finding = Finding(
                "device", "digest", 1.0,
                f"The host's storage was full from {since:%d %b %H:%M} to {until:%H:%M}: "
                "the sensors kept what they noticed and sent it again, but nothing new "
                "arrived meanwhile; please free space on the host and check it does not fill "
                "again (this is not a health alert)", [], subject="host storage")
            rec = self.router.raise_finding(resident, until.date(), finding)
            if rec is not None:
                self.alerts_raised += 1
                out.append(rec)
                if self.on_alert is not None:
                    self.on_alert(rec)
        if out:
            self.deliver(until_ms)
        return out

    def check(self, resident: str, now_ms: int) -> list[AlertRecord]:
        """Run the real-time rules for ``resident`` at ``now_ms``; the alerts raised."""
        self.checks += 1
        tz = resident_tz(self.store, resident)
        acts = as_seen_at(self._window(resident, now_ms - CHECK_WINDOW_MS), now_ms)
        if not seen_since(acts, now_ms - CHECK_WINDOW_MS):  # a home quiet for days
            acts = with_last_sign(self.store, resident, acts, now_ms - CHECK_WINDOW_MS, now_ms)
        today = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).astimezone(
            ZoneInfo(tz)).date()
        routine = self._routine(resident, today, tz, now_ms)
        findings = realtime.check(acts, now_ms, tz, routine=routine)
        if self._recheck_ms is not None:
            # Next: when a rule could next find something, or the safety net's recheck.
            due = min(realtime.next_due(acts, now_ms, tz, routine), now_ms + self._recheck_ms)
            self._schedule(resident, due)
        if not findings:
            return []
        done = self._conditions_raised(resident, today)
        out: list[AlertRecord] = []
        for finding in findings:
            key = _once_a_day(finding.condition, finding.subject)
            if key in done:
                continue
            rec = self.router.raise_finding(resident, today, finding)
            if rec is None:
                continue
            done.add(key)
            self.alerts_raised += 1
            log.info("alert %d %s %s: %s", rec.id, resident, rec.condition, rec.text)
            out.append(rec)
            if self.on_alert is not None:
                self.on_alert(rec)
        return out

    def _window(self, resident: str, since_ms: int) -> list[Activity]:
        """The resident's activities ending at or after ``since_ms``. Nothing is read
        on a tick with no new frames; after a batch with events of the resident's nodes,
        only the rows it added (``events_after``); everything again after a placement
        or an import, once the window has slid a day, or an hour after the last whole
        read (a late status caught up). Events stored by another process are seen at
        that hourly read."""
        cached = self._windows.get(resident)
        now = self.clock()
        if (cached is not None and cached.outside == self._outside
                and cached.since_ms <= since_ms
                < cached.since_ms + max(DAY_MS, WINDOW_MS - CHECK_WINDOW_MS)
                and 0 <= now - cached.read_ms < _REREAD_MS
                and not (self.history and now != cached.read_ms)):
            if resident in self._announced:
                self._announced.discard(resident)
                new = events_after(self.store, resident, cached.marks)
                if new:
                    cached.acts = merge(cached.acts, new)
            return [a for a in cached.acts if a.end_ms >= since_ms]
        self._announced.discard(resident)
        marks = node_marks(self.store, resident)
        # Up to now only: a replayed history's future is in the store already.
        acts = recent_activities(self.store, resident, since_ms, now if self.history else None)
        self._windows[resident] = _Window(self._outside, since_ms, now, acts, marks)
        return acts

    def held_activities(self) -> int:
        """How many activities the residents' windows hold in memory."""
        return sum(len(w.acts) for w in self._windows.values())

    def _routine(self, resident: str, today: date, tz: str, now_ms: int) -> Routine:
        """The routine is the fortnight before today's, from the stored day summaries
        (service.days): put together once a day."""
        cached = self._routines.get(resident)
        if cached is not None and cached[0] == today:
            return cached[1]
        routine = routine_for(self.store, resident, tz, today, now_ms)
        self._routines[resident] = (today, routine)
        return routine

    def _conditions_raised(self, resident: str, day: date) -> set[tuple[str, str]]:
        return {_once_a_day(str(c), str(s)) for (c, s) in self.store.conn.execute(
            "SELECT DISTINCT condition, subject FROM alerts WHERE resident = ? AND day = ? "
            "AND state != 'replayed'", (resident, day.isoformat()))}


@dataclass
class _Window:
    """One resident's activities as last read, and what the store held then."""

    outside: int  # the placements and imports it was read under
    since_ms: int
    read_ms: int  # when it was read whole
    acts: list[Activity]
    marks: NodeMarks


def _once_a_day(condition: str, subject: str) -> tuple[str, str]:
    """What the watcher raises at most once a day: each condition, and for equipment
    each sensor (a stuck fridge door must not hide a stuck toilet sensor)."""
    return (condition, subject if condition == "device" else "")


