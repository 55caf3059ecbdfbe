"""Real histories made fit for evaluation: longer, and with health changes written in.

``extend_days`` lengthens a short recording by resampling whole real days (weekdays
from weekdays, weekends from weekends); ``inject`` writes one of the health changes
the detectors look for into a copy of it. ``real_homes.evaluate_db`` puts them
together.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from ..residents.activity import Activity
from ..residents.history_import import (
    DEFAULT_TZ,
    HistoryError,
    at,
    local,
    local_day,
    to_ms,
    zone,
)

_HOUR_MS = 3_600_000

def _by_day(activities: Iterable[Activity], tz: ZoneInfo) -> dict[date, list[Activity]]:
    days: dict[date, list[Activity]] = defaultdict(list)
    for a in activities:
        days[local_day(a.start_ms, tz)].append(a)
    return days


def _moved(a: Activity, source: date, target: date, tz: ZoneInfo) -> Activity:
    """``a`` at the same wall-clock time ``target - source`` days later, same length."""
    t = local(a.start_ms, tz)
    wall = t.replace(tzinfo=None) + (target - source)
    start = to_ms(wall.replace(tzinfo=tz, fold=0))
    return Activity(a.resident, a.sensor, start, start + a.end_ms - a.start_ms, a.value, a.room)


def is_weekend(day: date) -> bool:
    return day.weekday() >= 5


def complete_days(activities: Sequence[Activity], tz: ZoneInfo) -> list[date]:
    """Days fit to resample: those with at least a quarter of the median day's events
    (a recording's first and last days are often only partly covered), and whose first
    sign of the day comes no later than four hours after the usual one unless it is
    the front door (coming home): a morning missing from a recording is not a
    morning in bed, and pasted after another day it would read as one."""
    days = _by_day(activities, tz)
    if not days:
        return []
    floor = statistics.median(len(v) for v in days.values()) / 4

    def first(acts: list[Activity]) -> Activity | None:
        signs = [a for a in acts if a.sensor not in ("heartbeat", "heart_rate")
                 and _minute(a.start_ms, tz) >= 4 * 60]
        return min(signs, key=lambda a: a.start_ms) if signs else None

    firsts = {d: f for d, acts in days.items() if (f := first(acts)) is not None}
    usual = statistics.median(_minute(f.start_ms, tz) for f in firsts.values()) if firsts else 0

    def whole(d: date) -> bool:
        f = firsts.get(d)
        return f is None or _minute(f.start_ms, tz) <= usual + 4 * 60 or (
            f.sensor == "door" and f.room in ENTRANCE)

    return sorted(d for d, acts in days.items() if len(acts) >= floor and whole(d))


def _minute(ms: int, tz: ZoneInfo) -> float:
    t = local(ms, tz)
    return t.hour * 60 + t.minute + t.second / 60


def extend_days(activities: Sequence[Activity], min_days: int = 60, seed: int = 0,
                tz: str = DEFAULT_TZ) -> list[Activity]:
    """The recording from its first to its last complete day, followed by whole real
    days drawn at random (``seed``) until it spans at least ``min_days`` days: a
    weekday's events come from a recorded weekday, a weekend day's from a weekend day
    (from any day when the recording has none of that kind). Events that would overlap
    the previous one of the same sensor at a seam are trimmed."""
    zi = zone(tz)
    pool = complete_days(activities, zi)
    if not pool:
        return []
    first, last = pool[0], pool[-1]
    days = _by_day(activities, zi)
    kept = [a for d in sorted(days) if first <= d <= last for a in days[d]]
    n = (last - first).days + 1
    if n >= min_days:
        return sorted(kept, key=_order)
    rng = random.Random(seed)
    weekdays = [d for d in pool if not is_weekend(d)] or pool
    weekends = [d for d in pool if is_weekend(d)] or pool
    out = list(kept)
    last_end: dict[str, int] = {}
    for a in kept:
        last_end[a.sensor] = max(last_end.get(a.sensor, 0), a.end_ms)
    for i in range(n, min_days):
        target = first + timedelta(days=i)
        source = rng.choice(weekends if is_weekend(target) else weekdays)
        for a in sorted(days[source], key=_order):
            m = _moved(a, source, target, zi)
            start = max(m.start_ms, last_end.get(m.sensor, m.start_ms))
            if start > m.end_ms or (start == m.end_ms and m.end_ms > m.start_ms):
                continue
            m = Activity(m.resident, m.sensor, start, m.end_ms, m.value, m.room)
            last_end[m.sensor] = max(last_end.get(m.sensor, 0), m.end_ms)
            out.append(m)
    return sorted(out, key=_order)


def _order(a: Activity) -> tuple[int, int, str]:
    return (a.start_ms, a.end_ms, a.sensor)


# --- injecting changes -----------------------------------------------------------------------

# How many days each injected change lasts.
CONDITIONS = {"dehydration": 2, "uti": 3, "inactivity": 1, "prolonged_sitting": 1,
              "silent_home": 1, "out_overnight": 2, "stuck_sensor": 1}
TAP_SENSORS = ("tap",)
# What a home needs for a change to show in its sensors at all.
NEEDS: dict[str, tuple[str, ...]] = {"dehydration": ("tap",), "uti": ("toilet",),
                                     "prolonged_sitting": ("seat",), "stuck_sensor": ("toilet",),
                                     "out_overnight": ("door",)}
ENTRANCE = ("entrance", "foyer", "hall", "hallway", "porch", "front", None)


def applicable(activities: Sequence[Activity], condition: str) -> bool:
    """Whether the home's sensors can show ``condition`` (no seat, no sitting change;
    no front door, no going out)."""
    have = {a.sensor for a in activities}
    if condition == "out_overnight":
        return any(a.sensor == "door" and a.room in ENTRANCE for a in activities)
    return all(s in have for s in NEEDS.get(condition, ()))


def _clear(activities: Iterable[Activity], w0: int, w1: int,
           spare: Callable[[Activity], bool] = lambda a: False) -> list[Activity]:
    """``activities`` with nothing happening in [w0, w1): events crossing it are cut
    back to its edges, events inside it dropped (except those ``spare`` keeps)."""
    out = []
    for a in activities:
        if spare(a) or a.end_ms <= w0 or a.start_ms >= w1:
            if not (a.start_ms == a.end_ms and w0 <= a.start_ms < w1) or spare(a):
                out.append(a)
            continue
        if a.start_ms < w0:
            out.append(Activity(a.resident, a.sensor, a.start_ms, w0, a.value, a.room))
        elif a.end_ms > w1:
            out.append(Activity(a.resident, a.sensor, w1, a.end_ms, a.value, a.room))
    return out


def usual_getup_minute(activities: Sequence[Activity], tz: str = DEFAULT_TZ) -> float:
    """Median minute of the day the resident leaves bed for the day: per day, the last
    bed episode ending between 04:00 and 14:00; without bed data, the first other
    event after 05:00; 08:00 when there is nothing to go on."""
    zi = zone(tz)
    minutes: dict[date, float] = {}
    for a in activities:
        if a.sensor == "bed":
            t = local(a.end_ms, zi)
            m = t.hour * 60 + t.minute + t.second / 60
            if 4 * 60 <= m <= 14 * 60:
                minutes[t.date()] = max(minutes.get(t.date(), m), m)
    if not minutes:
        for a in activities:
            t = local(a.start_ms, zi)
            m = t.hour * 60 + t.minute + t.second / 60
            if m >= 5 * 60:
                minutes[t.date()] = min(minutes.get(t.date(), m), m)
    return statistics.median(minutes.values()) if minutes else 8 * 60.0


def usual_longest_sitting_ms(activities: Sequence[Activity], tz: str = DEFAULT_TZ) -> int:
    """Median over days of the day's longest seat episode (0 without seat data)."""
    zi = zone(tz)
    longest: dict[date, int] = {}
    for a in activities:
        if a.sensor == "seat":
            d = local_day(a.start_ms, zi)
            longest[d] = max(longest.get(d, 0), a.end_ms - a.start_ms)
    return int(statistics.median(longest.values())) if longest else 0


def inject(activities: Sequence[Activity], condition: str, start_day: date,
           tz: str = DEFAULT_TZ) -> list[Activity]:
    """A copy of ``activities`` with ``condition`` written in from local day ``start_day``:

    * ``dehydration``: no tap (basin) use at all for two days;
    * ``uti``: for three days every toilet visit is joined by a second one 40 minutes
      later (or the nearest free slot), and two more come at 02:30 and 04:30;
    * ``inactivity``: the resident is not seen up until four hours after the usual
      get-up time: the morning's bed episode (if any) lasts until then, and nothing
      else happens from the usual get-up time (or the day's earlier real get-up);
    * ``prolonged_sitting``: the day's longest sitting episode (or one from 13:00)
      lasts six hours longer than the usual longest one, and nothing else happens
      meanwhile;
    * ``silent_home``: up as usual, then nothing at all from two and a half hours
      after the usual get-up time for six hours (sensors that say they are alive
      still do);
    * ``out_overnight``: out of the front door an hour before the usual settling
      time and back an hour after the next day's usual get-up, nothing at home
      meanwhile;
    * ``stuck_sensor``: the toilet sensor stays on for ten hours from 10:00 while the
      day goes on as usual.

    What is "usual" is learnt from the days before ``start_day``."""
    if condition not in CONDITIONS:
        raise HistoryError([("inject", 0, f"unknown condition {condition!r} "
                             f"(known: {', '.join(CONDITIONS)})")])
    zi = zone(tz)
    acts = sorted(activities, key=_order)
    resident = acts[0].resident if acts else "resident"
    before = [a for a in acts if local_day(a.start_ms, zi) < start_day] or acts
    span = {start_day + timedelta(days=i) for i in range(CONDITIONS[condition])}
    if condition == "dehydration":
        out = [a for a in acts
               if not (a.sensor in TAP_SENSORS and local_day(a.start_ms, zi) in span)]
    elif condition == "uti":
        out = _inject_uti(acts, span, resident, zi)
    elif condition == "inactivity":
        out = _inject_inactivity(acts, start_day, usual_getup_minute(before, tz), zi)
    elif condition == "silent_home":
        w0 = at(start_day, usual_getup_minute(before, tz) + 150, zi)
        # At home, not out: a front door just before the silence is taken out too.
        earlier = [a for a in acts if a.start_ms < w0 and a.sensor != "heartbeat"]
        leaving = []
        while earlier and earlier[-1].sensor == "door" and earlier[-1].room in ENTRANCE:
            leaving.append(earlier.pop())  # a door is often heard twice, open and shut
        acts = [a for a in acts if not any(a is d for d in leaving)]
        out = _clear(acts, w0, w0 + 6 * _HOUR_MS, spare=lambda a: a.sensor == "heartbeat")
    elif condition == "out_overnight":
        out = _inject_out(acts, before, start_day, resident, tz)
    elif condition == "stuck_sensor":
        toilets = [a for a in before if a.sensor == "toilet"]
        room = toilets[-1].room if toilets else None
        t0 = at(start_day, 10 * 60, zi)
        out = acts + [Activity(resident, "toilet", t0, t0 + 10 * _HOUR_MS, None, room)]
    else:
        usual = usual_longest_sitting_ms(before, tz)
        seats = [a for a in acts if a.sensor == "seat" and local_day(a.start_ms, zi) == start_day]
        if seats:
            seat = max(seats, key=lambda a: a.end_ms - a.start_ms)
        else:
            t0 = at(start_day, 13 * 60, zi)
            seat = Activity(resident, "seat", t0, t0, None, None)
        end = seat.start_ms + max(usual + 6 * _HOUR_MS, seat.end_ms - seat.start_ms)
        longer = Activity(seat.resident, seat.sensor, seat.start_ms, end, seat.value, seat.room)
        out = _clear([a for a in acts if a is not seat], seat.start_ms, end) + [longer]
    return sorted(out, key=_order)


def _morning_bed(acts: list[Activity], day: date, zi: ZoneInfo) -> Activity | None:
    """The day's last bed episode ending between 04:00 and 14:00, as features see get-up."""
    found = None
    for a in acts:
        if a.sensor == "bed":
            t = local(a.end_ms, zi)
            if t.date() == day and 4 <= t.hour < 14:
                found = a
    return found


def _inject_inactivity(acts: list[Activity], day: date, getup_minute: float, zi: ZoneInfo
                       ) -> list[Activity]:
    w0 = at(day, getup_minute, zi)
    w1 = w0 + 4 * _HOUR_MS
    bed = _morning_bed(acts, day, zi)
    if bed is None and not any(a.sensor == "bed" for a in acts):
        # No bed sensor to hold the night: nothing from before dawn, so no early start
        # of the real day is left to say they were up.
        w0 = min(w0, at(day, 4 * 60, zi))
    if bed is None or bed.end_ms >= w1:
        return _clear(acts, w0, w1, spare=lambda a: a.sensor == "heartbeat")
    longer = Activity(bed.resident, bed.sensor, bed.start_ms, w1, bed.value, bed.room)
    return _clear([a for a in acts if a is not bed], min(bed.end_ms, w0), w1) + [longer]


def _inject_uti(acts: list[Activity], span: set[date], resident: str, zi: ZoneInfo
                ) -> list[Activity]:
    toilets = [a for a in acts if a.sensor == "toilet"]
    busy = [(a.start_ms, a.end_ms) for a in toilets]
    durations = [a.end_ms - a.start_ms for a in toilets]
    typical = int(statistics.median(durations)) if durations else 60_000

    def free(s: int, e: int) -> bool:
        return all(e <= b0 or s >= b1 for b0, b1 in busy)

    added: list[Activity] = []

    def add(a: Activity, start: int) -> None:
        new = Activity(a.resident, a.sensor, start, start + a.end_ms - a.start_ms, a.value,
                       a.room)
        busy.append((new.start_ms, new.end_ms))
        added.append(new)

    for a in toilets:
        d = local_day(a.start_ms, zi)
        if d not in span:
            continue
        length = a.end_ms - a.start_ms
        for minutes in (40, 25, 60, 15, 90, -40, 120, -90, 180):
            s = a.start_ms + minutes * 60_000
            if local_day(s, zi) == d and free(s, s + length):
                add(a, s)
                break
    room = toilets[0].room if toilets else None
    for d in sorted(span):
        for minute in (150, 270):
            s = at(d, minute, zi)
            while not free(s, s + typical):
                s += 5 * 60_000
            add(Activity(resident, "toilet", 0, typical, None, room), s)
    return acts + added


def usual_settle_minute(activities: Sequence[Activity], tz: str = DEFAULT_TZ) -> float:
    """Median minute of the day's last event before 03:00 the next morning (may pass
    1440); 22:00 when there is nothing to go on."""
    zi = zone(tz)
    last: dict[date, float] = {}
    for a in activities:
        if a.sensor == "heartbeat":
            continue
        t = local(a.start_ms, zi)
        m = t.hour * 60 + t.minute + t.second / 60
        day = t.date() - timedelta(days=1) if m < 3 * 60 else t.date()
        m = m + 1440 if m < 3 * 60 else m
        last[day] = max(last.get(day, m), m)
    return statistics.median(last.values()) if last else 22 * 60.0


def _inject_out(acts: list[Activity], before: list[Activity], day: date, resident: str,
                tz: str) -> list[Activity]:
    zi = zone(tz)
    doors = [a for a in before if a.sensor == "door" and a.room in ENTRANCE]
    room = doors[-1].room if doors else "entrance"
    leave = at(day, usual_settle_minute(before, tz) - 60, zi)
    back = at(day + timedelta(days=1), usual_getup_minute(before, tz) + 60, zi)
    out = _clear(acts, leave, back, spare=lambda a: a.sensor == "heartbeat")
    return out + [Activity(resident, "door", leave, leave + 5_000, None, room),
                  Activity(resident, "door", back, back + 5_000, None, room)]
