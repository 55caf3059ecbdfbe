"""Residents' days at the host's level: one Activity per episode.

Each resident has a routine (get-up and settle times, drinks, toilet visits,
sitting, stairs, outings, a wearable or not) drawn around their persona's
values from the seed, and each day varies around it (weekends later, naps,
outings, poor nights). Changes ramp in from their onset to the crisis (a
severity s of 0 at onset, the variant's ``severity`` at the day before the
crisis; a UTI's symptoms reach it two days after onset and stay); after a
crisis the resident is in hospital for some days (no data at all) and comes
home at their baseline. Sensor outages (one sensor for 1..3
days) and hub outages (every sensor, 6..48 h) take activities out, and the
sensors' heartbeats with them: each sensor says it is alive every 3 hours
(``heartbeat`` activities, the sensor in ``room``), as a node's status frame does,
at home or not.

Persona models (effects at full severity 1.0):

* ``healthy``: no changes.
* ``mrs_s``: 74, home from hospital at the start. Dehydration before each
  readmission: water drawn falls by 65 %, two more night wanderings (out of
  bed, kitchen presence), wearable heart rate up by 18 bpm.
* ``daphne``: 83, drinks little (~0.9 L), slow on the stairs (1.5..3 min a
  trip), rises slowly. Recurrent UTIs (every 25..45 days): day toilet visits
  doubled and 2.5 more at night in the days before each episode.
* ``john``: 74, Parkinson's. Mobility declines slowly before a fall (the
  crisis): rise time +2.8 s, 40 % fewer sit-stand transitions, 50 min less
  time up each end of the day, stairs 80 % slower. One night in ten is poor
  (3..6 times out of bed) and the next day is a bad day (rise +1.2 s, fewer
  transitions, later up).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..residents import Activity
from . import quirks
from .truth import Change, Outage, Scenario

TZ = "Europe/London"
_MIN = 60000


@dataclass(frozen=True)
class Routine:
    wake_min: float = 7 * 60 + 15  # weekday get-up, minutes after midnight
    settle_min: float = 22 * 60 + 40  # to bed
    weekend_shift_min: float = 40
    water_ml: float = 1600
    toilet_day: float = 5.5
    toilet_night: float = 0.7
    sit_count: float = 9  # sit-stand transitions a day
    rise_s: float = 1.8
    stairs_trips: float = 4
    stairs_s: float = 25
    outing_p: float = 0.35
    hr: float | None = None  # resting heart rate from a wearable; None: no wearable
    nap_p: float = 0.2
    poor_night_p: float = 0.03


@dataclass(frozen=True)
class Persona:
    name: str
    routine: Routine
    condition: str | None  # the change this persona goes through, if any
    description: str


PERSONAS: dict[str, Persona] = {
    "healthy": Persona("healthy", Routine(), None, "a well resident, no changes"),
    "mrs_s": Persona(
        "mrs_s",
        Routine(wake_min=7 * 60 + 40, settle_min=22 * 60 + 10, water_ml=1400, sit_count=8,
                rise_s=2.2, stairs_trips=3, outing_p=0.15, hr=74, toilet_night=0.9),
        "dehydration", "74, home from hospital; drinks less, up at night, heart rate up"),
    "daphne": Persona(
        "daphne",
        Routine(wake_min=8 * 60, settle_min=21 * 60 + 50, water_ml=950, toilet_day=5,
                toilet_night=1.0, sit_count=7, rise_s=2.7, stairs_trips=3, stairs_s=110,
                outing_p=0.05, nap_p=0.5),
        "uti", "83, barely drinks, long on the stairs, recurrent UTIs"),
    "john": Persona(
        "john",
        Routine(wake_min=7 * 60 + 30, settle_min=22 * 60 + 20, water_ml=1500, sit_count=11,
                rise_s=2.4, stairs_trips=4, stairs_s=35, outing_p=0.25, hr=70,
                poor_night_p=0.1, nap_p=0.4),
        "mobility", "74, Parkinson's: slowly declining mobility, bad days after poor nights"),
}


def personas() -> dict[str, str]:
    """Persona name -> what it models."""
    return {name: p.description for name, p in PERSONAS.items()}


@dataclass
class _Effects:
    water: float = 1.0
    toilet_day: float = 1.0
    toilet_night_add: float = 0.0
    wander_add: float = 0.0
    rise_add: float = 0.0
    sits: float = 1.0
    up_less_min: float = 0.0
    stairs: float = 1.0
    hr_add: float = 0.0


@dataclass
class _Plan:
    changes: list[Change]
    hospital: set[int] = field(default_factory=set)  # day indexes away


def _schedule(persona: Persona, rng: random.Random, days: int, start: date,
              variant: dict[str, Any]) -> _Plan:
    """Onsets and crises. Variants: onset_day (first onset), lead_days (onset to
    crisis), every_days (between episodes), episodes (how many at most)."""
    plan = _Plan([])
    cond = persona.condition
    if cond is None:
        return plan
    scale = min(1.0, days / 90)
    if cond == "dehydration":
        first = variant.get("onset_day", rng.randint(3, max(4, int(30 * scale))))
        lead = (rng.randint(5, 10),)
        every, stay = (rng.randint(40, 60), rng.randint(4, 9))
    elif cond == "uti":
        first = variant.get("onset_day", rng.randint(3, max(4, int(20 * scale))))
        lead = (rng.randint(4, 8),)
        every, stay = (rng.randint(25, 45), rng.randint(2, 6))
    else:  # mobility: slow
        first = variant.get("onset_day", rng.randint(3, max(4, int(20 * scale))))
        lead = (max(10, int(rng.randint(45, 75) * scale)),)
        every, stay = (10**6, rng.randint(5, 10))
    lead_days = int(variant.get("lead_days", lead[0]))
    every = int(variant.get("every_days", every))
    episodes = int(variant.get("episodes", 10))
    onset = int(first)
    while len(plan.changes) < episodes:
        crisis = onset + lead_days
        if crisis >= days:
            break
        plan.changes.append(Change(cond, start + timedelta(days=onset),
                                   start + timedelta(days=crisis)))
        plan.hospital.update(range(crisis, min(days, crisis + stay)))
        onset = crisis + stay + max(3, every - lead_days - stay)
    return plan


# Urinary symptoms (frequency, nocturia) come on over a day or two and stay until
# treated; dehydration and a decline in mobility build up over the whole lead.
_UTI_COMES_ON_DAYS = 2


def _effects(plan: _Plan, start: date, d: int, severity: float) -> _Effects:
    e = _Effects()
    day = start + timedelta(days=d)
    for ch in plan.changes:
        if not ch.onset <= day < ch.crisis:
            continue
        span = max(1, (ch.crisis - ch.onset).days - 1)
        if ch.condition == "uti":
            span = min(span, _UTI_COMES_ON_DAYS)
        s = severity * min(1.0, (day - ch.onset).days / span)
        if ch.condition == "dehydration":
            e.water *= 1 - 0.65 * s
            e.wander_add += 2.0 * s
            e.hr_add += 18 * s
        elif ch.condition == "uti":
            e.toilet_day *= 1 + 1.0 * s
            e.toilet_night_add += 2.5 * s
            e.wander_add += 0.5 * s
        elif ch.condition == "mobility":
            e.rise_add += 2.8 * s
            e.sits *= 1 - 0.4 * s
            e.up_less_min += 50 * s
            e.stairs *= 1 + 0.8 * s
    return e


def _poisson(rng: random.Random, lam: float) -> int:
    lam = max(0.0, lam)
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _jitter(rng: random.Random, r: Routine) -> Routine:
    """A resident of a persona: the persona's routine, a little of their own."""
    return replace(
        r,
        wake_min=r.wake_min + rng.uniform(-45, 45),
        settle_min=r.settle_min + rng.uniform(-40, 40),
        water_ml=r.water_ml * rng.uniform(0.85, 1.15),
        toilet_day=r.toilet_day * rng.uniform(0.85, 1.15),
        sit_count=r.sit_count * rng.uniform(0.85, 1.15),
        rise_s=r.rise_s * rng.uniform(0.85, 1.1),
        stairs_s=r.stairs_s * rng.uniform(0.85, 1.15),
        hr=None if r.hr is None else r.hr + rng.uniform(-6, 6),
    )


class _Day:
    """Builds one day's activities, keeping each sensor's episodes apart."""

    def __init__(self, rng: random.Random, resident: str, midnight_ms: int):
        self.rng = rng
        self.resident = resident
        self.t0 = midnight_ms
        self.acts: list[Activity] = []
        self.busy: dict[str, list[tuple[float, float]]] = {}

    def free(self, sensor: str, a: float, b: float, margin: float = 2.5) -> bool:
        return all(b + margin <= x or a >= y + margin for x, y in self.busy.get(sensor, []))

    def add(self, sensor: str, a: float, b: float, value: float | None = None,
            room: str | None = None) -> None:
        """An episode from minute a to minute b after midnight."""
        self.busy.setdefault(sensor, []).append((a, b))
        self.acts.append(Activity(self.resident, sensor, self.t0 + round(a * _MIN),
                                  self.t0 + round(b * _MIN), value, room))

    def place(self, sensor: str, spans: list[tuple[float, float]], length: float,
              value: float | None = None, room: str | None = None) -> bool:
        """Somewhere in one of the spans (minutes) with room for it; False if none."""
        fits = [(a, b) for a, b in spans if b - a > length + 1]
        for _ in range(25):
            if not fits:
                return False
            weights = [b - a for a, b in fits]
            a, b = self.rng.choices(fits, weights)[0]
            at = self.rng.uniform(a + 0.5, b - length - 0.5)
            if self.free(sensor, at, at + length):
                self.add(sensor, at, at + length, value, room)
                return True
        return False


def simulate(persona: str, seed: int, days: int, start: date, **variant: Any
             ) -> tuple[Scenario, list[Activity]]:
    """A resident of ``persona`` over ``days`` days from ``start`` (local dates,
    Europe/London), seeded: the same arguments give the same activities.

    Variants: ``severity`` (1.0), ``onset_day``, ``lead_days``, ``every_days``,
    ``episodes``, ``outages`` (False for none), ``resident`` (the id), ``quirks``
    (real homes' quirks, see ``quirks.QUIRKS``), and any Routine field
    (``wake_min``, ``water_ml``, ...) to change the routine.
    """
    if persona not in PERSONAS:
        raise ValueError(f"no persona {persona!r} (one of {', '.join(PERSONAS)})")
    p = PERSONAS[persona]
    rng = random.Random(f"{persona}/{seed}")
    routine = _jitter(rng, p.routine)
    fields = {k: v for k, v in variant.items() if k in Routine.__dataclass_fields__}
    routine = replace(routine, **fields)
    home_quirks = tuple(variant.get("quirks", ()))
    if "outings" in home_quirks:
        routine = replace(routine, outing_p=max(routine.outing_p, 0.6))
    severity = float(variant.get("severity", 1.0))
    resident = str(variant.get("resident", f"{persona}-{seed}"))
    plan = _schedule(p, rng, days, start, variant)
    zone = ZoneInfo(TZ)
    midnights = [int(datetime.combine(start + timedelta(days=d), datetime.min.time(), zone)
                     .timestamp() * 1000) for d in range(days + 1)]
    # Get-up and settle times, and poor nights, drawn ahead (a night spans two days).
    wakes, settles, poor = [], [], []
    for d in range(days + 1):
        e = _effects(plan, start, d, severity)
        weekend = (start + timedelta(days=d)).weekday() >= 5
        poor.append(rng.random() < routine.poor_night_p)
        shift = routine.weekend_shift_min if weekend else 0.0
        bad = 40.0 if d > 0 and poor[d - 1] and persona == "john" else 0.0
        wakes.append(routine.wake_min + shift + bad + e.up_less_min + rng.gauss(0, 20))
        settles.append(routine.settle_min + shift / 2 - e.up_less_min + rng.gauss(0, 25))
    acts: list[Activity] = []
    for d in range(days):
        if d in plan.hospital:
            continue
        e = _effects(plan, start, d, severity)
        bad_day = d > 0 and poor[d - 1] and persona == "john"
        day = _Day(rng, resident, midnights[d])
        _daytime(day, routine, e, wakes[d], settles[d], bad_day, d)
        if d + 1 < days and d + 1 not in plan.hospital:
            _night(day, routine, e, settles[d], 1440 + wakes[d + 1], poor[d])
        acts.extend(day.acts)
    if home_quirks:
        acts = quirks.apply(acts, home_quirks, f"{persona}/{seed}")
    outages = _outages(rng, days, midnights, variant.get("outages", True), routine.hr)
    # Each node keeps its own clock: their status frames do not come at the same instant.
    acts += [Activity(resident, "heartbeat", t + i * 7 * _MIN, t + i * 7 * _MIN, None, sensor)
             for i, sensor in enumerate(_NODES)
             for t in range(midnights[0] + _HEARTBEAT_MS // 2, midnights[-1], _HEARTBEAT_MS)]
    acts = [a for a in acts if not any(
        o.sensor in ("*", a.room if a.sensor == "heartbeat" else a.sensor)
        and a.start_ms < o.end_ms and a.end_ms > o.start_ms for o in outages)]
    acts.sort(key=lambda a: (a.start_ms, a.sensor))
    scenario = Scenario(resident, persona, days, start, plan.changes, outages=outages)
    return scenario, acts


def _daytime(day: _Day, r: Routine, e: _Effects, wake: float, settle: float,
             bad_day: bool, d: int) -> None:
    rng = day.rng
    # Sitting: transitions spread over the day, a nap after lunch some days.
    n_sits = max(2, _poisson(rng, r.sit_count * e.sits * (0.7 if bad_day else 1.0)))
    up_spans: list[tuple[float, float]] = []
    t = wake + rng.uniform(15, 35)
    up_spans.append((wake, t))
    awake = settle - t
    mean_up = min(25.0, awake / n_sits * 0.35)
    mean_sit = max(5.0, awake / n_sits - mean_up)
    outing: tuple[float, float] | None = None
    if rng.random() < r.outing_p * (0.5 if bad_day else 1.0):
        leave = rng.uniform(max(t + 30, 9.5 * 60), 15 * 60)
        outing = (leave, leave + rng.uniform(60, 240))
    rise_mean = r.rise_s + e.rise_add + (1.2 if bad_day else 0.0)
    while t < settle - 10:
        length = min(170.0, rng.expovariate(1 / mean_sit) + 3)
        if 13 * 60 < t < 15 * 60 and rng.random() < r.nap_p:
            length = rng.uniform(40, 110)
        end = min(t + length, settle - 5)
        if outing is not None and t < outing[1] and end > outing[0] - 3:
            up_spans.append((t, outing[0]))
            day.add("door", outing[0], outing[0] + 0.5, room="out")
            day.add("door", outing[1], outing[1] + 0.5, room="in")
            t = outing[1] + 1
            outing = None
            continue
        if end - t >= 2:
            rise = max(0.6, rng.lognormvariate(math.log(rise_mean), 0.18))
            day.add("seat", t, end, round(rise, 1))
        up = rng.expovariate(1 / mean_up) + 3
        up_spans.append((end, end + up))
        t = end + up
    up_spans.append((settle - 5, settle))
    # Water: a day's volume shared among draws of 100 ml and up.
    target = r.water_ml * e.water * rng.lognormvariate(0, 0.15)
    n = max(1, _poisson(rng, target / 280))
    weights = [rng.uniform(0.5, 1.5) for _ in range(n)]
    for w in weights:
        ml = max(100.0, round(target * w / sum(weights)))
        flow = rng.uniform(3000, 7000)  # ml/min
        day.place("tap", up_spans, ml / flow, round(ml))
    # Toilet visits in the day; stairs trips (often on the way).
    for _ in range(_poisson(rng, r.toilet_day * e.toilet_day)):
        day.place("toilet", up_spans, rng.uniform(1.5, 6))
    for _ in range(_poisson(rng, r.stairs_trips)):
        secs = r.stairs_s * e.stairs * rng.lognormvariate(0, 0.25) * (1.3 if bad_day else 1.0)
        day.place("stairs", up_spans, secs / 60)
    if r.hr is not None:
        m = wake
        while m < settle:
            bpm = r.hr + e.hr_add + rng.gauss(0, 5) + (6 if bad_day else 0)
            day.add("heart_rate", m, m, round(bpm))
            m += 15 + rng.uniform(-3, 3)
    del d


def _night(day: _Day, r: Routine, e: _Effects, settle: float, wake: float, poor: bool) -> None:
    """In bed from settle to wake (minutes after this day's midnight), split by trips."""
    rng = day.rng
    trips: list[tuple[float, float, str]] = []
    n_toilet = _poisson(rng, r.toilet_night + e.toilet_night_add)
    n_wander = _poisson(rng, e.wander_add + (3.5 if poor else 0.0))
    for kind in ["toilet"] * n_toilet + ["wander"] * n_wander:
        length = rng.uniform(3, 9) if kind == "toilet" else rng.uniform(5, 30)
        for _ in range(20):
            a = rng.uniform(settle + 20, wake - length - 10)
            if a > settle and all(a + length + 5 < x or a > y + 5 for x, y, _k in trips):
                trips.append((a, a + length, kind))
                break
    trips.sort()
    t = settle
    for a, b, kind in trips:
        day.add("bed", t, a)
        if kind == "toilet":
            day.add("toilet", a + 1, a + 1 + (b - a - 2) * rng.uniform(0.5, 0.9))
        else:
            day.add("presence", a + 1, b - 1, room="kitchen")
            if rng.random() < 0.3:
                day.add("tap", a + 2, a + 2 + 0.05, 200.0)
        t = b
    day.add("bed", t, wake)


_NODES = ("seat", "bed", "tap", "toilet", "stairs")
_HEARTBEAT_MS = 3 * 3_600_000


def _outages(rng: random.Random, days: int, midnights: list[int], enabled: Any,
             hr: float | None) -> list[Outage]:
    if not enabled:
        return []
    sensors = ["seat", "bed", "tap", "toilet", "stairs"] + (["heart_rate"] if hr else [])
    out: list[Outage] = []
    for d in range(days):
        for s in sensors:
            if rng.random() < 1 / 150:
                a = midnights[d] + rng.randint(0, 86399) * 1000
                out.append(Outage(s, a, a + rng.randint(1, 3) * 86400000))
        if rng.random() < 1 / 60:
            a = midnights[d] + rng.randint(0, 86399) * 1000
            out.append(Outage("*", a, a + rng.randint(6, 48) * 3600000))
    return out
