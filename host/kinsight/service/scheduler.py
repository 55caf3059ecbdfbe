"""The service's clock-driven work, on one store connection: what is due, when it is due.

A ``Scheduler`` step at ``now_ms`` runs the morning analysis of every resident whose
morning has come (``Mornings``: a local time in their own time zone, missed ones
caught up), then the real-time watcher on the residents a batch announced and, on its
tick, on those whose next deadline has come (``RealtimeWatcher``), then, when asked
to, sends what is due. ``kinsight serve`` steps it on the wall clock from a thread of
its own; ``replay.play`` steps it on a simulated clock over a store's history. A step
when nothing is due costs a few dictionary lookups and no query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from datetime import date, timedelta

from ..alerts import AlertRecord, AlertRouter
from ..residents import resident_tz, residents
from ..store import Store
from .analysis import analyse
from .mornings import DEFAULT_MORNING_MIN, Mornings, local_day
from .watcher import RECHECK_S, TICK_S, RealtimeWatcher

log = logging.getLogger(__name__)


class Scheduler:
    """See the module's docstring. ``only``: the residents looked after (None: everyone
    in the store, read again on every tick); ``deliver``: send what is due on each
    tick (a service with a delivery thread leaves that to it);
    ``on_analysed(resident, seconds)`` and ``on_alert(record)`` are told as things
    happen; ``history``: a replay of a store's history (see ``RealtimeWatcher``)."""

    def __init__(self, store: Store, router: AlertRouter, clock: Callable[[], int], *,
                 tick_s: float = TICK_S, morning_min: int = DEFAULT_MORNING_MIN,
                 detector: str = "engine", only: Collection[str] | None = None,
                 recheck_s: float | None = RECHECK_S, deliver: bool = False,
                 history: bool = False,
                 on_morning: Callable[[str, date], None] | None = None,
                 on_analysed: Callable[[str, float], None] | None = None,
                 on_alert: Callable[[AlertRecord], None] | None = None,
                 owns: Callable[[], Collection[str]] | None = None):
        self.store = store
        self.owns = owns
        self.router = router
        self.clock = clock
        self.detector = detector
        self.only = None if only is None else sorted(only)
        self.deliver = deliver
        self.on_morning = on_morning
        self.on_analysed = on_analysed
        self.on_alert = on_alert
        self.mornings = Mornings(store, morning_min, detector)
        self.watcher = RealtimeWatcher(store, router, clock, tick_s=tick_s,
                                       on_alert=on_alert, deliver=self._deliver,
                                       residents=self._residents, recheck_s=recheck_s,
                                       history=history, owns=owns)
        self.analysed = 0  # resident-mornings
        self._known: list[str] | None = None
        self._listed_tick = -1

    def _residents(self) -> list[str]:
        """Those looked after: ``only``, or everyone in the store; of them, with
        ``owns``, those whose lease this worker holds."""
        if self.only is not None:
            everyone = self.only
        else:
            if self._known is None or self._listed_tick != self.watcher.ticks:
                self._known = residents(self.store)
                self._listed_tick = self.watcher.ticks
            everyone = self._known
        if self.owns is None:
            return everyone
        mine = self.owns()
        return [r for r in everyone if r in mine]

    def _deliver(self, now_ms: int) -> list[dict[str, object]]:
        return self.router.deliver_due(now_ms) if self.deliver else []

    def step(self, nodes: Collection[int] = frozenset()) -> list[AlertRecord]:
        """One round at the clock's time: the mornings due, then the real-time rules for
        ``nodes``' residents and, on a tick, for whoever is due."""
        now = self.clock()
        raised: list[AlertRecord] = []
        if self.watcher.tick_is_due(now) or self._known is None:
            self.mornings.add(self._residents(), now)
        next_morning = self.mornings.next_ms()
        if next_morning is not None and next_morning <= now:
            raised += self._mornings(now)
        raised += self.watcher.after_batch(frozenset(nodes))
        return raised

    def _mornings(self, now_ms: int) -> list[AlertRecord]:
        raised: list[AlertRecord] = []
        mine = None if self.owns is None else self.owns()
        for resident in self.mornings.due(now_ms):
            if mine is not None and resident not in mine:
                continue  # another worker's now: it catches the morning up
            t0 = time.perf_counter()
            try:
                summary = analyse(self.store, self.router, now_ms, self.detector,
                                  deliver=False, only=[resident])
            except Exception:  # one resident's bad data must not stop the others' mornings
                log.exception("morning analysis of %s failed", resident)
                self.mornings.done(resident, now_ms)
                continue
            self.mornings.done(resident, now_ms)
            self.analysed += 1
            raised += summary.raised
            if self.on_analysed is not None:
                self.on_analysed(resident, time.perf_counter() - t0)
            if self.on_alert is not None:
                for rec in summary.raised:
                    self.on_alert(rec)
            if self.on_morning is not None:
                today = local_day(now_ms, resident_tz(self.store, resident))
                self.on_morning(resident, today - timedelta(days=1))
        return raised
