"""Raw sensor signals for part of a simulated day, as the nodes' firmware reads them.

* seat: FSR counts on the 12-bit ADC at 10 Hz; empty about 300, a person
  1200..2000 more; sitting down takes 0.8 s, getting up falls linearly over the
  episode's rise time and ends at the episode's end.
* tap: the cumulative pulse count of a YF-S201 (450 pulses a litre) at 4 Hz;
  each draw's pulses are spread evenly from its start to its end.
* toilet: a PIR's present flag at 4 Hz, with still spells (5..30 s, shorter than
  the node's 60 s hold) inside each visit.
* heart_rate: a wearable's rate in bpm once a second (HR_MS), each simulated
  reading's rate +- 2 bpm from that reading to the next (HR_HOLD_MS at most);
  0 where nothing is received: the wearable is off at night, and wherever the
  simulation has no reading.

Only episodes (and heart rate readings) wholly inside the window are rendered;
``RawDay.events`` holds exactly those, the truth the firmware's events and
summaries are compared with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..residents import Activity
from .simulator import TZ, simulate

SEAT_MS = 100
FLOW_MS = 250
PRESENCE_MS = 250
HR_MS = 1000
HR_HOLD_MS = 20 * 60000  # longer after a reading and the wearer has taken it off
PULSES_PER_L = 450
SIT_DOWN_MS = 800
_EMPTY = 300


@dataclass
class RawDay:
    t0_ms: int  # UTC ms of the first sample; sample i is at t0_ms + i * period
    seat: list[int]  # ADC counts every SEAT_MS
    tap: list[int]  # cumulative pulses every FLOW_MS
    toilet: list[bool]  # present every PRESENCE_MS
    heart_rate: list[int]  # bpm every HR_MS, 0 when nothing is received
    events: list[Activity]  # the seat, tap and toilet episodes and heart rate readings rendered


def raw_day(persona: str, seed: int, day: int, start: date = date(2024, 3, 4),
            hours: tuple[float, float] = (6, 14), **variant: Any) -> RawDay:
    """Signals of local hours ``hours`` of day index ``day`` of ``simulate(persona,
    seed, day + 2, start, **variant)`` (outages off unless the variant asks)."""
    variant.setdefault("outages", False)
    _scenario, acts = simulate(persona, seed, day + 2, start, **variant)
    zone = ZoneInfo(TZ)
    midnight = datetime.combine(start + timedelta(days=day), datetime.min.time(), zone)
    t0 = int((midnight + timedelta(hours=hours[0])).timestamp() * 1000)
    t1 = int((midnight + timedelta(hours=hours[1])).timestamp() * 1000)
    return render(acts, t0, t1, f"raw/{persona}/{seed}/{day}")


def render(acts: list[Activity], t0: int, t1: int, key: str) -> RawDay:
    """The raw signals from UTC ms t0 to t1 of the seat, tap and toilet episodes and
    heart rate readings in ``acts`` wholly inside the window (2 min clear of its
    edges); ``key`` seeds the signals' noise."""
    margin = 120000  # clear of the edges: the extractors need quiet before and after
    inside = [a for a in acts if a.sensor in ("seat", "tap", "toilet", "heart_rate")
              and a.start_ms >= t0 + margin and a.end_ms <= t1 - margin]
    rng = random.Random(key)
    seat = _seat([a for a in inside if a.sensor == "seat"], rng, t0, t1)
    tap = _tap([a for a in inside if a.sensor == "tap"], t0, t1)
    toilet = _toilet([a for a in inside if a.sensor == "toilet"], rng, t0, t1)
    hr = _heart_rate([a for a in inside if a.sensor == "heart_rate"], rng, t0, t1)
    return RawDay(t0, seat, tap, toilet, hr, inside)


def _seat(eps: list[Activity], rng: random.Random, t0: int, t1: int) -> list[int]:
    n = (t1 - t0) // SEAT_MS
    out = [_EMPTY + rng.randint(-15, 15) for _ in range(n)]
    for a in eps:
        level = rng.randint(1200, 2000)
        rise_ms = int((a.value or 2.0) * 1000)
        s, e = a.start_ms - t0, a.end_ms - t0
        for i in range(-(-s // SEAT_MS), min(n, e // SEAT_MS + 1)):
            t = i * SEAT_MS
            if t < s + SIT_DOWN_MS:
                load = level * (t - s) // SIT_DOWN_MS
            elif t >= e - rise_ms:
                load = level * (e - t) // rise_ms
            else:
                load = level
            out[i] = min(4094, max(1, out[i] + load))
    return out


def _tap(draws: list[Activity], t0: int, t1: int) -> list[int]:
    pulses: list[float] = []
    for a in draws:
        count = max(2, round((a.value or 0) * PULSES_PER_L / 1000))
        span = a.end_ms - a.start_ms
        pulses.extend(a.start_ms - t0 + k * span / (count - 1) for k in range(count))
    pulses.sort()
    out = []
    k = 0
    for i in range((t1 - t0) // FLOW_MS):
        t = i * FLOW_MS
        while k < len(pulses) and pulses[k] <= t:
            k += 1
        out.append(k)
    return out


def _toilet(visits: list[Activity], rng: random.Random, t0: int, t1: int) -> list[bool]:
    n = (t1 - t0) // PRESENCE_MS
    out = [False] * n
    for a in visits:
        s = -(-(a.start_ms - t0) // PRESENCE_MS)
        e = (a.end_ms - t0) // PRESENCE_MS
        for i in range(s, min(n, e + 1)):
            out[i] = True
        i = s + 12
        while True:  # still spells: the PIR loses someone sitting still
            i += rng.randint(40, 200)
            still = rng.randint(20, 120)
            if i + still >= e - 12:
                break
            for j in range(i, i + still):
                out[j] = False
            i += still
    return out


def _heart_rate(readings: list[Activity], rng: random.Random, t0: int, t1: int) -> list[int]:
    n = (t1 - t0) // HR_MS
    out = [0] * n
    for k, a in enumerate(readings):
        until = a.start_ms + HR_HOLD_MS
        if k + 1 < len(readings):
            until = min(until, readings[k + 1].start_ms)
        s = -(-(a.start_ms - t0) // HR_MS)
        e = min(n, (until - t0) // HR_MS)
        bpm = min(248, max(30, round(a.value or 0)))  # jittered, still a rate (<= 250)
        # choices, not a randint a sample: a day has tens of thousands of them
        for i, jitter in enumerate(rng.choices(range(-2, 3), k=max(0, e - s)), s):
            out[i] = bpm + jitter
    return out
