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
from .features import DEFAULT_NIGHT, daily_features, learn_night

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


def _quantile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    pos = q * (len(s) - 1)
    i = int(pos)
    j = min(i + 1, len(s) - 1)
    return s[i] + (s[j] - s[i]) * (pos - i)


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


def learn_routine(acts: Sequence[Activity], today: date, tz: str = "Europe/London",
                  feats: dict[date, dict[str, float]] | None = None) -> Routine:
    """The resident's routine from the fortnight before ``today``; ``feats``: that
    fortnight's daily features, when already at hand."""
    zi = ZoneInfo(tz)
    feats = feats if feats is not None else history(acts, today, tz)
    lo, hi = at(today - timedelta(days=HISTORY_DAYS), 0, zi), at(today, 0, zi)
    past = [a for a in acts if lo <= a.start_ms < hi]
    dates = [local(a.start_ms, zi).date() for a in past]  # once each
    days = sorted({d for d, a in zip(dates, past, strict=True) if a.sensor != "heartbeat"})
    r = Routine(days=len(days), night=learn_night(feats), past_days=sorted(set(dates)))
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
    for a in past:
        if a.sensor != "heartbeat" and a.end_ms > a.start_ms:
            minutes = (a.end_ms - a.start_ms) / _MIN_MS
            durations[(a.sensor, a.room)].append(minutes)
            durations[(a.sensor, None)].append(minutes)
    r.sensors = {k: SensorProfile(len(v), statistics.median(v), _quantile(v, 0.95), max(v))
                 for k, v in durations.items()}
    hours: dict[tuple[tuple[str, str | None], int], int] = defaultdict(int)
    for a in past:
        hours[((a.sensor, a.room), a.start_ms // _HOUR_MS)] += 1
    for (key, _hour), n in hours.items():
        r.busiest_hour[key] = max(r.busiest_hour.get(key, 0), n)
    r.longest_still_min = _usual_longest_still(past, days, zi, r)
    r.longest_tap_gap_h = _tap_gaps(past, days, zi)
    return r


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


def _usual_longest_still(past: Sequence[Activity], days: list[date], zi: ZoneInfo,
                         r: Routine) -> float | None:
    """The longest, over the days at home, of the day's longest stretch with no sign of
    anyone between 06:00 and 22:00 (time out of the home not counted): how long the
    resident's day can go without a sign, not how long it usually does."""
    del r
    longest = []
    spans = evidence_spans(past)  # once, not once a day
    for d in days:
        gaps = still_gaps(past, at(d, 6 * 60, zi), at(d, 22 * 60, zi), spans)
        if gaps:
            longest.append(max(b - a for a, b in gaps) / _MIN_MS)
    return max(longest) if len(longest) >= MIN_DAYS else None


def _tap_gaps(past: Sequence[Activity], days: list[date], zi: ZoneInfo) -> list[float]:
    taps = sorted(a.start_ms for a in past if a.sensor == "tap")
    out = []
    for d in days:
        lo, hi = at(d, 8 * 60, zi), at(d, 21 * 60, zi)
        points = [lo, *(t for t in taps if lo <= t <= hi), hi]
        out.append(max(b - a for a, b in zip(points, points[1:], strict=False)) / _HOUR_MS)
    return out
