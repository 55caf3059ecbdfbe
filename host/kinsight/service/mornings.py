"""When each resident's morning analysis is due: a local time in their own time zone.

``Mornings`` keeps a priority queue of (when, resident): a resident is due at
``morning_min`` minutes after local midnight of each day, and at once when days
before today have not been analysed yet (after downtime, or for a resident new to
the store). What was analysed is the models table's ``last_day`` (see
``analysis.analyse``), so a restart neither skips a morning nor analyses a day twice.

>>> from kinsight.store import Store
>>> m = Mornings(Store(":memory:"), morning_min=7 * 60 + 30)
>>> m.due(0)  # nobody in the store: nobody due
[]
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ..residents import resident_tz
from ..store import Store
from .analysis import ensure_models

log = logging.getLogger(__name__)

DEFAULT_MORNING_MIN = 7 * 60 + 30


def local_day(ms: int, tz: str) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(ZoneInfo(tz)).date()


def morning_ms(day: date, tz: str, morning_min: int) -> int:
    t = datetime.combine(day, datetime.min.time(), ZoneInfo(tz)) + timedelta(
        minutes=morning_min)
    return int(t.timestamp() * 1000)


class Mornings:
    """See the module's docstring. ``due(now_ms)`` pops the residents whose morning has
    come; ``done(resident, now_ms)`` queues their next one."""

    def __init__(self, store: Store, morning_min: int = DEFAULT_MORNING_MIN,
                 detector: str = "engine"):
        if not 0 <= morning_min < 24 * 60:
            raise ValueError(f"morning_min must be 0..1439, not {morning_min}")
        self.store = store
        self.morning_min = morning_min
        self.detector = detector
        self._queue: list[tuple[int, str]] = []
        self._when: dict[str, int] = {}

    def add(self, residents: Iterable[str], now_ms: int) -> None:
        """Queue the residents not queued yet (new ones, or all at the start)."""
        ensure_models(self.store)
        for resident in residents:
            if resident not in self._when:
                self._push(resident, self._first_due(resident, now_ms))

    def _first_due(self, resident: str, now_ms: int) -> int:
        tz = resident_tz(self.store, resident)
        today = local_day(now_ms, tz)
        row = self.store.conn.execute(
            "SELECT last_day FROM models WHERE resident = ? AND detector = ?",
            (resident, self.detector)).fetchone()
        last = date.fromisoformat(row[0]) if row is not None and row[0] else None
        this_morning = morning_ms(today, tz, self.morning_min)
        if now_ms < this_morning:
            # Yesterday's morning analysed the day before it; one before that was missed.
            if last is not None and last < today - timedelta(days=2):
                return now_ms
            return this_morning
        if last is not None and last >= today - timedelta(days=1):
            return morning_ms(today + timedelta(days=1), tz, self.morning_min)  # done today
        return now_ms  # today's has come (and maybe others were missed)

    def _push(self, resident: str, when_ms: int) -> None:
        self._when[resident] = when_ms
        heapq.heappush(self._queue, (when_ms, resident))

    def next_ms(self) -> int | None:
        """When the next resident is due (None: nobody queued)."""
        while self._queue and self._when.get(self._queue[0][1]) != self._queue[0][0]:
            heapq.heappop(self._queue)  # replaced by a later entry
        return self._queue[0][0] if self._queue else None

    def due(self, now_ms: int, limit: int | None = None) -> list[str]:
        """The residents whose morning has come (at most ``limit``), oldest first."""
        out: list[str] = []
        while self._queue and self._queue[0][0] <= now_ms and (limit is None
                                                                or len(out) < limit):
            when, resident = heapq.heappop(self._queue)
            if self._when.get(resident) == when:
                del self._when[resident]
                out.append(resident)
        return out

    def done(self, resident: str, now_ms: int) -> None:
        """``resident`` was analysed at ``now_ms``: due again at tomorrow's morning."""
        tz = resident_tz(self.store, resident)
        today = local_day(now_ms, tz)
        self._push(resident, morning_ms(today + timedelta(days=1), tz, self.morning_min))
