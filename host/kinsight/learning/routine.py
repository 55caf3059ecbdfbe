"""What a resident's last fortnight says is usual, for the real-time rules.

A ``Routine`` is learnt from the 14 local days before today (``learn_routine``):
the get-up time and how much it varies, the night, the longest stretch without
any movement at home on an ordinary day, and each sensor's own readings. Sensors
are not alike: a Kinsight toilet node's presence lasts as long as the visit, but
a flush contact or a bathroom door can stay "on" for half an hour or for hours,
and a PIR fires in bursts. So every sensor (kind and room) gets a
``SensorProfile`` of its own on-durations, and only a sensor whose usual "on" is
as short as a visit is read as telling how long someone stayed.

>>> p = SensorProfile(samples=20, median_min=4.0, p95_min=9.0, longest_min=12.0)
>>> p.measures_stay, round(p.stuck_after_min())
(True, 240)
>>> SensorProfile(samples=20, median_min=0.4, p95_min=0.9, longest_min=2.0).measures_stay
False
>>> SensorProfile(samples=20, median_min=80.0, p95_min=200.0, longest_min=300.0).measures_stay
False
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ..residents import Activity
from .features import ACTIVE, DEFAULT_NIGHT, daily_features, debounced, learn_night

HISTORY_DAYS = 14
MIN_DAYS = 5
MIN_SAMPLES = 5
_HOUR_MS = 3_600_000
_MIN_MS = 60_000

# Not evidence that someone is moving about at home: the node's own status, a worn
# sensor, lying in bed.
NOT_MOVING = frozenset({"heartbeat", "heart_rate", "bed"})
# Sensors whose "on" means someone is there all along.
OCCUPANCY = frozenset({"seat", "bed", "presence"})
# Rooms whose door is the way in and out of the home (a door with no room is taken so).
ENTRANCE_ROOMS = frozenset({"entrance", "foyer", "hall", "hallway", "porch", "front", "out",
                            "in"})
# A visit's usual "on" must be this long, and no longer, for the sensor to say how long
# a stay lasted: a flush or a door is "on" for seconds, or for hours, whatever the visit.
STAY_MEDIAN_MIN_MIN = 1.0
STAY_MEDIAN_MAX_MIN = 15.0
STAY_P95_MAX_MIN = 45.0


# Local time, the fast way: the rules ask it millions of times a replay (the importer's
# exact wall-clock arithmetic, residents.history_import, is for parsing files).
def local(ms: int, zi: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(zi)


def at(day: date, minutes: float, zi: ZoneInfo) -> int:
    t = datetime.combine(day, datetime.min.time(), zi) + timedelta(minutes=minutes)
    return int(t.timestamp() * 1000)


def minutes_of(ms: int, zi: ZoneInfo) -> float:
    t = local(ms, zi)
    return t.hour * 60 + t.minute + t.second / 60


def is_entrance(a: Activity) -> bool:
    """The front door: a door in an entrance, or a door whose room is not known."""
    return a.sensor == "door" and (a.room is None or a.room in ENTRANCE_ROOMS)


def moving(a: Activity) -> bool:
    """Evidence that someone is up and moving about at home."""
    return a.sensor not in NOT_MOVING


def _quantile(values: Sequence[float], q: float, *, is_sorted: bool = False) -> float:
    s = values if is_sorted else sorted(values)
    pos = q * (len(s) - 1)
    i = int(pos)
    j = min(i + 1, len(s) - 1)
    return s[i] + (s[j] - s[i]) * (pos - i)


def _profile(ordered: list[float]) -> SensorProfile:
    """A sensor's profile from its "on" minutes, in order (sorted once, not thrice)."""
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return SensorProfile(n, median, _quantile(ordered, 0.95, is_sorted=True), ordered[-1])


@dataclass(frozen=True)
class SensorProfile:
    """One sensor's own readings over the fortnight: how many, and how long "on" lasts."""

    samples: int
    median_min: float
    p95_min: float
    longest_min: float

    @property
    def measures_stay(self) -> bool:
        """Whether its "on" lasts as long as a visit (a presence or radar sensor), rather
        than a moment (a flush) or far longer (a door or flush contact, a light)."""
        return (self.samples < MIN_SAMPLES
                or (STAY_MEDIAN_MIN_MIN <= self.median_min <= STAY_MEDIAN_MAX_MIN
                    and self.p95_min <= STAY_P95_MAX_MIN))

    def stuck_after_min(self) -> float:
        """On for longer than this, with the home in use meanwhile, it is stuck: half
        as long again as its own long readings, two hours past its longest, and never
        under 4 hours."""
        if self.samples < MIN_SAMPLES:
            return 6 * 60.0
        return max(4 * 60.0, 1.5 * self.p95_min, self.longest_min + 2 * 60.0)


@dataclass
class Routine:
    """See the module's docstring; ``days`` is how many days it was learnt from."""

    days: int
    night: tuple[float, float] = DEFAULT_NIGHT
    getup_min: float | None = None  # median get-up time, minutes after midnight
    getup_spread_min: float = 30.0  # how far the later get-ups go past it
    earliest_getup_min: float | None = None  # the early get-ups (10th percentile)
    settle_min: float | None = None  # median settling time (may pass 1440)
    longest_still_min: float | None = None  # the usual longest stretch without movement
    sensors: dict[tuple[str, str | None], SensorProfile] = field(default_factory=dict)
    longest_tap_gap_h: list[float] = field(default_factory=list)  # per day, 08:00-21:00
    night_spells: dict[date, int] = field(default_factory=dict)  # spells up, per past night
    past_days: list[date] = field(default_factory=list)  # the days with any data
    busiest_hour: dict[tuple[str, str | None], int] = field(default_factory=dict)

    def profile(self, a: Activity) -> SensorProfile | None:
        return self.sensors.get((a.sensor, a.room)) or self.sensors.get((a.sensor, None))


def history(acts: Sequence[Activity], today: date, tz: str) -> dict[date, dict[str, float]]:
    """The daily features of the last ``HISTORY_DAYS`` days before ``today``."""
    zi = ZoneInfo(tz)
    lo = at(today - timedelta(days=HISTORY_DAYS), 0, zi)
    hi = at(today, 0, zi)
    feats = daily_features([a for a in acts if lo <= a.start_ms < hi or lo <= a.end_ms < hi],
                           tz)
    return {d: f for d, f in feats.items() if d < today}


# What a day says about the routine, kept as JSON (service.days stores one a day).
_SEP = "\t"  # between a sensor and its room in a summary's keys


def _key(sensor: str, room: str | None) -> str:
    return sensor + _SEP + (room or "")


def _unkey(key: str) -> tuple[str, str | None]:
    sensor, _, room = key.partition(_SEP)
    return sensor, room or None


def summary_window(day: date, zi: ZoneInfo) -> tuple[int, int]:
    """The activities ``day_summary`` reads for ``day``: those ending at or after
    midnight starting the day before, and beginning before 04:00 the day after (a
    bed it settled in after midnight)."""
    return at(day - timedelta(days=1), 0, zi), at(day + timedelta(days=1), 4 * 60, zi)


def first_and_last(acts: Sequence[Activity], day: date, zi: ZoneInfo
                   ) -> tuple[float | None, float | None]:
    """``day``'s first_activity_min and last_activity_min as ``daily_features`` finds
    them in ``acts`` (those of its ``summary_window``), without the rest of its work."""
    first = last = None
    bed_end = bed_last = None
    for a in debounced(sorted(acts, key=lambda a: a.start_ms)):
        if a.sensor == "bed":
            end = local(a.end_ms, zi)
            if end.date() == day and 4 * 60 <= (m := _minute(end)) < 13 * 60:
                bed_end = m  # the last such wins
            start = local(a.start_ms, zi)
            m = _minute(start)
            if bed_last is None:
                if start.date() == day and m >= 19 * 60:
                    bed_last = m
                elif start.date() == day + timedelta(days=1) and m < 3 * 60:
                    bed_last = m + 1440
        elif a.sensor in ACTIVE:
            t = local(a.start_ms, zi)
            if t.date() == day:
                m = _minute(t)
                if first is None and m >= 5 * 60:
                    first = m
                last = m
    return (bed_end if bed_end is not None else first,
            bed_last if bed_last is not None else last)


def _minute(t: datetime) -> float:
    return t.hour * 60 + t.minute + t.second / 60


def day_summary(acts: Sequence[Activity], day: date, tz: str) -> dict[str, object]:
    """What ``day`` (a past local day) contributes to a routine, from ``acts`` holding
    at least those of its ``summary_window`` (in time order): its get-up and settling
    times, whether anything was seen (moving, or at all), each sensor's "on" minutes
    and busiest hour, the longest stretch of the waking day without a sign of anyone,
    the longest daytime stretch without the tap, and the spells up in the small hours
    that end on its morning.

    >>> day_summary([], date(2024, 5, 1), "Europe/London")
    {'any': False, 'moving': False}
    """
    zi = ZoneInfo(tz)
    lo, hi = summary_window(day, zi)
    near = [a for a in acts if a.end_ms >= lo and a.start_ms < hi]
    d0, d1 = at(day, 0, zi), at(day + timedelta(days=1), 0, zi)
    own = [a for a in near if d0 <= a.start_ms < d1]
    out: dict[str, object] = {"any": bool(own),
                              "moving": any(a.sensor != "heartbeat" for a in own)}
    first, last = first_and_last(near, day, zi)
    if first is not None:
        out["first"] = first
    if last is not None:
        out["last"] = last
    on: dict[str, list[float]] = defaultdict(list)
    hours: dict[tuple[str, int], int] = defaultdict(int)
    for a in own:
        if a.sensor != "heartbeat" and a.end_ms > a.start_ms:
            on[_key(a.sensor, a.room)].append((a.end_ms - a.start_ms) / _MIN_MS)
        hours[(_key(a.sensor, a.room), a.start_ms // _HOUR_MS)] += 1
    busiest: dict[str, int] = {}
    for (key, _hour), n in hours.items():
        busiest[key] = max(busiest.get(key, 0), n)
    if on:
        out["on_min"] = dict(on)
    if busiest:
        out["busiest"] = busiest
    if out["moving"]:
        # Spans from the day before too: a seat occupied since last night is a sign.
        since = [a for a in near if a.start_ms < d1 and a.start_ms >= lo]
        gaps = still_gaps(since, at(day, 6 * 60, zi), at(day, 22 * 60, zi))
        if gaps:
            out["still_min"] = max(b - a for a, b in gaps) / _MIN_MS
        out["tap_gap_h"] = _tap_gaps(own, [day], zi)[0]
    spells = [[a.start_ms, a.end_ms] for a in near if a.sensor not in WANDER_NOT
              and a.room not in TOILET_ROOMS and at(day - timedelta(days=1), 20 * 60, zi)
              <= a.start_ms < at(day, 11 * 60, zi)]
    if spells:
        out["night"] = spells
    return out


def summary_is_final(acts: Sequence[Activity], day: date, now_ms: int, tz: str) -> bool:
    """Whether ``day_summary`` of ``day`` can no longer change after ``now_ms``: its
    window is over and nothing begun in the day is still on (a replay cuts what is
    still on at now; a live store holds it open)."""
    zi = ZoneInfo(tz)
    lo, hi = summary_window(day, zi)
    d0, d1 = at(day, 0, zi), at(day + timedelta(days=1), 0, zi)
    return hi <= now_ms and not any(d0 <= a.start_ms < d1 and a.end_ms >= now_ms
                                    for a in acts)


def learn_routine(acts: Sequence[Activity], today: date, tz: str = "Europe/London"
                  ) -> Routine:
    """The resident's routine from the fortnight before ``today``: each day's
    ``day_summary`` (from ``acts``, which must reach back to the day before the
    fortnight), put together by ``routine_from``."""
    days = [today - timedelta(days=i) for i in range(HISTORY_DAYS, 0, -1)]
    return routine_from({d: day_summary(acts, d, tz) for d in days}, today, tz)


def routine_from(summaries: dict[date, dict[str, object]], today: date,
                 tz: str = "Europe/London") -> Routine:
    """The routine of the fortnight before ``today`` from its days' ``day_summary``
    (a day missing is a day with nothing seen)."""
    zi = ZoneInfo(tz)
    days = [today - timedelta(days=i) for i in range(HISTORY_DAYS, 0, -1)]
    got = [(d, summaries[d]) for d in days if d in summaries]
    feats = {d: {k: float(s[n]) for n, k in (("first", "first_activity_min"),  # type: ignore[arg-type]
                                             ("last", "last_activity_min")) if n in s}
             for d, s in got}
    moving_days = [d for d, s in got if s.get("moving")]
    r = Routine(days=len(moving_days), night=learn_night(feats),
                past_days=[d for d, s in got if s.get("any")])
    getups = [f["first_activity_min"] for f in feats.values() if "first_activity_min" in f]
    if len(getups) >= MIN_DAYS:
        r.getup_min = float(statistics.median(getups))
        # How far the later mornings go: the 90th percentile, or most of the way to the
        # latest one (a lie-in a fortnight is ordinary, and sits past the 90th).
        r.getup_spread_min = max(30.0, _quantile(getups, 0.9) - r.getup_min,
                                 0.75 * (max(getups) - r.getup_min))
        r.earliest_getup_min = _quantile(getups, 0.1)
    settles = [f["last_activity_min"] for f in feats.values() if "last_activity_min" in f]
    if len(settles) >= MIN_DAYS:
        r.settle_min = float(statistics.median(settles))
    durations: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    for _d, s in got:
        for key, minutes in s.get("on_min", {}).items():  # type: ignore[union-attr]
            sensor, room = _unkey(key)
            durations[(sensor, room)] += minutes
            durations[(sensor, None)] += minutes
        for key, n in s.get("busiest", {}).items():  # type: ignore[union-attr]
            k = _unkey(key)
            r.busiest_hour[k] = max(r.busiest_hour.get(k, 0), int(n))
    r.sensors = {k: _profile(sorted(v)) for k, v in durations.items()}
    stills = [float(s["still_min"]) for _d, s in got if "still_min" in s]  # type: ignore[arg-type]
    r.longest_still_min = max(stills) if len(stills) >= MIN_DAYS else None
    r.longest_tap_gap_h = [float(s["tap_gap_h"]) for _d, s in got  # type: ignore[arg-type]
                           if "tap_gap_h" in s]
    for d, s in got:
        if s.get("any"):
            lo, hi = night_core(d, r.night, zi)
            spells = [(a, b) for a, b in s.get("night", [])  # type: ignore[union-attr]
                      if lo <= a < hi]
            r.night_spells[d] = count_spells(spells)
    return r


# A trip to the toilet at night is not wandering (night visits are the daily model's).
WANDER_NOT = frozenset({"toilet", "toilet_long", "flush", "heartbeat", "heart_rate", "bed",
                        "bed_exit"})
TOILET_ROOMS = frozenset({"bathroom", "toilet", "wc"})
_EPISODE_GAP_MS = 10 * _MIN_MS


def night_core(day: date, night: tuple[float, float], zi: ZoneInfo) -> tuple[int, int]:
    """The heart of the night that ends on the morning of ``day``: an hour in from
    the usual settling and get-up times (at least two hours long), so an early
    rise or a late evening is not counted as night-time activity."""
    lo = at(day - timedelta(days=1), night[0] + 60, zi)
    hi = max(lo + 2 * _HOUR_MS, at(day, night[1] - 60, zi))
    return lo, hi


def count_spells(spans: Sequence[tuple[int, int]]) -> int:
    """How many spells of being up (activities 10 min apart or less are one) the
    (start, end) spans, in time order of their starts, make."""
    return len(spell_starts(spans))


def spell_starts(spans: Sequence[tuple[int, int]]) -> list[int]:
    """The index in ``spans`` of each spell's first span (see ``count_spells``)."""
    out: list[int] = []
    end = -1
    for i, (start, stop) in enumerate(sorted(spans, key=lambda s: s[0])):
        if out and start - end <= _EPISODE_GAP_MS:
            end = max(end, stop)  # the same spell goes on
            continue
        out.append(i)
        end = stop
    return out


def evidence_spans(acts: Sequence[Activity]) -> list[tuple[int, int, Activity]]:
    """When someone was seen at home, in time order: a moment for a contact or a draw,
    the whole span of an occupancy (a seat, a bed, a presence sensor)."""
    out = [(a.start_ms, a.end_ms if a.sensor in OCCUPANCY else a.start_ms, a)
           for a in acts if a.sensor not in ("heartbeat", "heart_rate")]
    return sorted(out, key=lambda s: (s[0], s[1]))


def still_gaps(acts: Sequence[Activity], lo: int, hi: int,
               spans: list[tuple[int, int, Activity]] | None = None) -> list[tuple[int, int]]:
    """Stretches in [lo, hi] between the first and the last sign of anyone at home with
    no sign at all; a stretch that begins at the front door is time out, not counted.
    ``spans``: ``evidence_spans(acts)``, when already at hand."""
    gaps = []
    seen_until: int | None = None
    last: Activity | None = None
    for start, end, a in spans if spans is not None else evidence_spans(acts):
        if end < lo or start > hi:
            continue
        if seen_until is not None and start > seen_until and last is not None \
                and not is_entrance(last):
            gaps.append((seen_until, start))
        if seen_until is None or end >= seen_until:
            seen_until, last = max(end, start), a
    return gaps


def _tap_gaps(past: Sequence[Activity], days: list[date], zi: ZoneInfo) -> list[float]:
    taps = sorted(a.start_ms for a in past if a.sensor == "tap")
    out = []
    for d in days:
        lo, hi = at(d, 8 * 60, zi), at(d, 21 * 60, zi)
        points = [lo, *(t for t in taps if lo <= t <= hi), hi]
        out.append(max(b - a for a, b in zip(points, points[1:], strict=False)) / _HOUR_MS)
    return out
