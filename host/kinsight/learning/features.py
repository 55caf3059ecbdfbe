"""Daily features of one resident's activities, by local calendar day.

A day D runs from local midnight to midnight. Night features of D describe the
night that ends on the morning of D: from ``night[0]`` minutes after midnight
on D-1 (1440 and more: past midnight) to ``night[1]`` minutes after midnight on
D. The night is each resident's own: ``learn_night`` takes it from their usual
settling and get-up times (``personal_features`` does both steps); 22:00 to
07:00 until there is enough to learn from. Keys are absent when the day has no
data for them (a sensor outage is not a zero), except that a sensor which said it
was alive that day (a ``heartbeat`` activity whose ``room`` names the sensor: a
node's status frame, no more than 4 hours apart all day) and saw nothing gives
zeros, on days when the resident was seen at all (an empty home, say in hospital,
gives nothing). ``heartbeats`` is how many sensors said so that day.

>>> learn_night({date(2024, 5, d): {"last_activity_min": 23 * 60 + 30.0,
...                                 "first_activity_min": 8 * 60.0} for d in range(1, 8)})
(1410.0, 480.0)
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

from ..residents import Activity

# Water by time of day: hours 0-11 (two bins of six, one feature), 12-17, 18-23.
_WATER_BINS = ("water_morning_ml", "water_morning_ml", "water_afternoon_ml",
               "water_evening_ml")

# What a live sensor that saw nothing all day says: these features are zero.
_ZERO_WHEN_ALIVE = {"tap": ("water_ml", "draws"), "toilet": ("toilet_day",),
                    "seat": ("sit_count", "sit_total_min"), "stairs": ("stairs_min",)}

# Sensors that say the resident is up and about (not bed, not a worn sensor).
ACTIVE = frozenset({"seat", "tap", "toilet", "stairs", "door", "presence", "fridge"})
_OUT_MIN_MS = 2 * 60 * 1000  # as the bed node: an absence of 2 min .. 3 h
_OUT_MAX_MS = 3 * 3600 * 1000

# The version of what the features mean: raised whenever a definition changes, so that
# stored days (the service's day_features) are derived again, never mixed with new ones.
FEATURES_VERSION = 1

DEFAULT_NIGHT: tuple[float, float] = (22 * 60.0, 7 * 60.0)
# A learnt night starts between 19:00 and 03:00 and ends between 04:00 and 12:00, so a
# few odd days (or a night worker's data) cannot turn the afternoon into "night".
_NIGHT_START_MIN = (19 * 60.0, 27 * 60.0)
_NIGHT_END_MIN = (4 * 60.0, 12 * 60.0)
MIN_NIGHT_DAYS = 5
_ALIVE_GAP_MS = 4 * 3600 * 1000  # nodes send their status every 3 hours
_DEBOUNCED = frozenset({"toilet", "tap", "stairs", "door", "flush", "shower"})
_BOUNCE_MS = 60_000


def _local(ms: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(zone)


def _minutes(t: datetime) -> float:
    return t.hour * 60 + t.minute + t.second / 60


def _night_of(t: datetime, night: tuple[float, float]) -> date | None:
    """The day whose night holds local time t, or None in the daytime."""
    m = _minutes(t)
    if night[0] <= m:
        return t.date() + timedelta(days=1)
    if night[0] <= m + 1440 and m < night[1]:
        return t.date()
    return None


def _night_window_ms(day: date, zone: ZoneInfo, night: tuple[float, float]
                     ) -> tuple[int, int]:
    start = datetime.combine(day - timedelta(days=1), datetime.min.time(), zone) + timedelta(
        minutes=night[0])
    end = datetime.combine(day, datetime.min.time(), zone) + timedelta(minutes=night[1])
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def learn_night(feats: dict[date, dict[str, float]], days: Iterable[date] | None = None
                ) -> tuple[float, float]:
    """A resident's night, (start, end) in minutes as ``daily_features`` takes it: the
    median settling time to the median get-up time of ``days`` (all days of
    ``feats`` when None), each bounded to a plausible range; ``DEFAULT_NIGHT`` with
    fewer than ``MIN_NIGHT_DAYS`` days that have them."""
    chosen = feats if days is None else {d: feats[d] for d in days if d in feats}
    settles = [f["last_activity_min"] for f in chosen.values() if "last_activity_min" in f]
    getups = [f["first_activity_min"] for f in chosen.values() if "first_activity_min" in f]
    if len(settles) < MIN_NIGHT_DAYS or len(getups) < MIN_NIGHT_DAYS:
        return DEFAULT_NIGHT
    start = min(max(statistics.median(settles), _NIGHT_START_MIN[0]), _NIGHT_START_MIN[1])
    end = min(max(statistics.median(getups), _NIGHT_END_MIN[0]), _NIGHT_END_MIN[1])
    return float(round(start)), float(round(end))


def personal_features(activities: Iterable[Activity], tz: str = "Europe/London",
                      learning_days: int = 14
                      ) -> tuple[dict[date, dict[str, float]], tuple[float, float]]:
    """``daily_features`` with the resident's own night, learnt from their first
    ``learning_days`` days with data (the learning period, so no day that is later
    judged shapes it); returns the features and the night."""
    acts = list(activities)
    first = daily_features(acts, tz)
    night = learn_night(first, sorted(first)[:learning_days])
    if night == DEFAULT_NIGHT:
        return first, night
    return daily_features(acts, tz, night), night


def daily_features(activities: Iterable[Activity], tz: str = "Europe/London",
                   night: tuple[float, float] = DEFAULT_NIGHT) -> dict[date, dict[str, float]]:
    """Per local day: water_ml, draws, water_morning_ml (before 12:00),
    water_afternoon_ml (12:00 to 18:00), water_evening_ml (from 18:00), toilet_day,
    toilet_night, toilet_dwell_min (the median day visit), sit_total_min,
    sit_count, sit_longest_min (the longest sitting bout), rise_s_median,
    bed_night_min, out_of_bed_night, first_activity_min, last_activity_min,
    night_activity_count, stairs_min, hr_mean.

    first_activity_min is the get-up time (minutes after midnight): the end of the
    last bed episode ending between 04:00 and 13:00, else the first activity at or
    after 05:00. last_activity_min is the settling time: the start of the first bed
    episode starting between 19:00 and 03:00 (may exceed 1440), else the last
    activity of the day. Activities of one resident only.
    """
    zone = ZoneInfo(tz)
    out: dict[date, dict[str, float]] = defaultdict(dict)
    acts = debounced(sorted(activities, key=lambda a: a.start_ms))
    rises: dict[date, list[float]] = defaultdict(list)
    dwells: dict[date, list[float]] = defaultdict(list)
    hrs: dict[date, list[float]] = defaultdict(list)
    beds: list[Activity] = []
    first: dict[date, float] = {}
    last: dict[date, float] = {}
    beats: dict[tuple[date, str], list[int]] = defaultdict(list)
    seen: set[date] = set()

    def add(day: date, key: str, amount: float) -> None:
        feats = out[day]
        feats[key] = feats.get(key, 0.0) + amount

    for a in acts:
        t = _local(a.start_ms, zone)
        day = t.date()
        minutes = (a.end_ms - a.start_ms) / 60000
        s = a.sensor
        if s == "heartbeat":
            if a.room:
                beats[(day, a.room)].append(a.start_ms)
            continue
        seen.add(day)
        if s == "tap":
            add(day, "water_ml", a.value or 0.0)
            add(day, _WATER_BINS[min(t.hour // 6, 3)], a.value or 0.0)
            add(day, "draws", 1)
        elif s == "toilet":
            n = _night_of(t, night)
            if n is None:
                add(day, "toilet_day", 1)
                dwells[day].append(minutes)
                out[day].setdefault("toilet_night", 0.0)
            else:
                add(n, "toilet_night", 1)
        elif s == "seat":
            add(day, "sit_total_min", minutes)
            add(day, "sit_count", 1)
            out[day]["sit_longest_min"] = max(out[day].get("sit_longest_min", 0.0), minutes)
            if a.value is not None:
                rises[day].append(a.value)
        elif s == "stairs":
            add(day, "stairs_min", minutes)
        elif s == "heart_rate":
            if a.value is not None:
                hrs[day].append(a.value)
        elif s == "bed":
            beds.append(a)
        if s in ACTIVE:
            n = _night_of(t, night)
            if n is not None:
                add(n, "night_activity_count", 1)
            m = _minutes(t)
            if m >= 5 * 60:
                first.setdefault(day, m)
            last[day] = m
    for day, values in rises.items():
        out[day]["rise_s_median"] = float(statistics.median(values))
    for day, values in dwells.items():
        out[day]["toilet_dwell_min"] = float(statistics.median(values))
    for day, values in hrs.items():
        out[day]["hr_mean"] = float(statistics.fmean(values))
    _bed_features(beds, zone, night, out)
    for day, m in first.items():
        out[day].setdefault("first_activity_min", m)
    for day, m in last.items():
        out[day].setdefault("last_activity_min", m)
    for (day, sensor), times in beats.items():
        if day not in seen or not _alive_all_day(day, times, zone):
            continue  # nobody seen (away), or the sensor was not heard from all day
        out[day]["heartbeats"] = out[day].get("heartbeats", 0.0) + 1
        for key in _ZERO_WHEN_ALIVE.get(sensor, ()):
            out[day].setdefault(key, 0.0)
    for feats in out.values():
        if "draws" in feats:  # the tap reported: a part of the day without water is a zero
            for key in dict.fromkeys(_WATER_BINS):
                feats.setdefault(key, 0.0)
    return {d: dict(out[d]) for d in sorted(out)}


def debounced(acts: list[Activity]) -> list[Activity]:
    """``acts`` (in time order) with the "on"s of one sensor less than a minute apart
    made one: the hot and the cold tap of one wash, a contact that bounces, a sensor
    that chatters dozens of times an hour are one use, never a flood of them."""
    out: list[Activity] = []
    last: dict[tuple[str, str | None], int] = {}
    for a in acts:
        key = (a.sensor, a.room)
        i = last.get(key)
        if a.sensor in _DEBOUNCED and i is not None and a.start_ms - out[i].end_ms <= _BOUNCE_MS:
            prev = out[i]
            value = (None if prev.value is None and a.value is None
                     else (prev.value or 0.0) + (a.value or 0.0))
            out[i] = Activity(prev.resident, prev.sensor, prev.start_ms,
                              max(prev.end_ms, a.end_ms), value, prev.room)
            continue
        last[key] = len(out)
        out.append(a)
    return out


def _alive_all_day(day: date, times: list[int], zone: ZoneInfo) -> bool:
    lo = int(datetime.combine(day, datetime.min.time(), zone).timestamp() * 1000)
    hi = int(datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
             .timestamp() * 1000)
    points = [lo, *sorted(times), hi]
    return max(b - a for a, b in pairwise(points)) <= _ALIVE_GAP_MS


def _bed_features(beds: list[Activity], zone: ZoneInfo, night: tuple[float, float],
                  out: dict[date, dict[str, float]]) -> None:
    nights: set[date] = set()
    for a in beds:
        for ms in (a.start_ms, a.end_ms):
            t = _local(ms, zone)
            nights.add(t.date())
            nights.add(t.date() + timedelta(days=1))
    for day in sorted(nights):
        lo, hi = _night_window_ms(day, zone, night)
        overlap = sum(max(0, min(a.end_ms, hi) - max(a.start_ms, lo)) for a in beds)
        if overlap > 0:
            out[day]["bed_night_min"] = overlap / 60000
            out[day].setdefault("out_of_bed_night", 0.0)
    for prev, nxt in pairwise(beds):
        gap = nxt.start_ms - prev.end_ms
        n = _night_of(_local(prev.end_ms, zone), night)
        if n is not None and _OUT_MIN_MS <= gap <= _OUT_MAX_MS:
            out[n]["out_of_bed_night"] = out[n].get("out_of_bed_night", 0.0) + 1
    for a in beds:
        end = _local(a.end_ms, zone)
        if 4 * 60 <= _minutes(end) < 13 * 60:
            out[end.date()]["first_activity_min"] = _minutes(end)  # the last such wins
        start = _local(a.start_ms, zone)
        m = _minutes(start)
        if m >= 19 * 60:
            out[start.date()].setdefault("last_activity_min", m)
        elif m < 3 * 60:
            out[start.date() - timedelta(days=1)].setdefault("last_activity_min", m + 1440)
