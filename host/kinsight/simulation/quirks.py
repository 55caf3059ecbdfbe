"""Real homes' quirks, written into a simulated resident's activities.

Real sensors are not the simulator's clean ones, and a model that only works on
clean data fails in the first home it meets. ``apply`` rewrites a resident's
activities with any of:

* ``door_bathroom``: the bathroom is watched by a door contact: a toilet visit's
  "on" lasts as long as the door stays shut, minutes to hours, or a moment;
* ``pir_bursts``: PIRs in the kitchen and the lounge fire in short bursts around
  whatever the resident does there;
* ``stuck``: on two days the toilet sensor sticks "on" for 6 to 12 hours;
* ``chatter``: on two days a sensor chatters, dozens of short "on"s within an hour;
* ``no_volume``: the taps say that water was drawn, not how much;
* ``outings``: (a routine field, see ``simulator.simulate``) out more often.

None of them is a change in health: any health alert they cause is a false one.

>>> from kinsight.residents import Activity
>>> acts = [Activity("r", "tap", 0, 1000, 250.0)]
>>> apply(acts, ("no_volume",), seed=1)[0].value is None
True
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence

from ..residents import Activity

QUIRKS = ("door_bathroom", "pir_bursts", "stuck", "chatter", "no_volume", "outings")
_MIN = 60_000
_DAY = 86_400_000


def apply(activities: Sequence[Activity], quirks: Collection[str], seed: int | str
          ) -> list[Activity]:
    """``activities`` with ``quirks`` written in (seeded: the same seed, the same quirks)."""
    unknown = set(quirks) - set(QUIRKS)
    if unknown:
        raise ValueError(f"unknown quirks {sorted(unknown)} (known: {', '.join(QUIRKS)})")
    rng = random.Random(f"quirks/{seed}")
    acts = list(activities)
    if not acts:
        return acts
    if "no_volume" in quirks:
        acts = [_with(a, value=None) if a.sensor == "tap" else a for a in acts]
    if "door_bathroom" in quirks:
        acts = _door_visits(acts, rng)
    if "pir_bursts" in quirks:
        acts += _bursts(acts, rng)
    days = _days(acts)
    if "stuck" in quirks:
        acts += _stuck(acts, days, rng)
    if "chatter" in quirks:
        acts += _chatter(acts, days, rng)
    return sorted(acts, key=lambda a: (a.start_ms, a.sensor))


def _with(a: Activity, *, start: int | None = None, end: int | None = None,
          value: float | None = None, room: str | None = None) -> Activity:
    return Activity(a.resident, a.sensor, a.start_ms if start is None else start,
                    a.end_ms if end is None else end, value, room if room is not None else a.room)


def _door_visits(acts: list[Activity], rng: random.Random) -> list[Activity]:
    """Toilet visits as a door contact sees them: "on" from the visit until the door
    opens again, which is at the latest just before the next visit (one contact
    cannot be "on" twice at once)."""
    visits = sorted((a for a in acts if a.sensor == "toilet"), key=lambda a: a.start_ms)
    starts = [a.start_ms for a in visits[1:]] + [None]
    doors = {}
    for a, following in zip(visits, starts, strict=True):
        r = rng.random()
        if r < 0.2:
            minutes = rng.uniform(0.05, 0.3)  # opened and shut again at once
        elif r < 0.9:
            minutes = rng.uniform(10, 60)  # left shut after the visit
        else:
            minutes = rng.uniform(120, 300)
        end = a.start_ms + int(minutes * _MIN)
        if following is not None:
            end = min(end, following - 3 * _MIN)  # opened again before the next visit
        doors[id(a)] = _with(a, end=max(a.start_ms + 1000, end), value=a.value,
                             room="bathroom")
    return [doors.get(id(a), a) for a in acts]


def _bursts(acts: list[Activity], rng: random.Random) -> list[Activity]:
    out = []
    for a in acts:
        room = {"tap": "kitchen", "seat": "lounge", "presence": "kitchen"}.get(a.sensor)
        if room is None:
            continue
        t = a.start_ms
        for _ in range(rng.randint(2, 6)):
            t += int(rng.uniform(0.2, 4) * _MIN)
            out.append(Activity(a.resident, "presence", t, t + int(rng.uniform(5, 40) * 1000),
                                None, room))
    return out


def _days(acts: list[Activity]) -> list[int]:
    first = min(a.start_ms for a in acts)
    last = max(a.start_ms for a in acts)
    return list(range(first - first % _DAY, last, _DAY))


def _later_days(days: list[int], rng: random.Random, n: int) -> list[int]:
    pool = days[20:] or days
    return rng.sample(pool, min(n, len(pool)))


def _stuck(acts: list[Activity], days: list[int], rng: random.Random) -> list[Activity]:
    resident = acts[0].resident
    room = next((a.room for a in acts if a.sensor == "toilet"), None)
    out = []
    for day in _later_days(days, rng, 2):
        t = day + int(rng.uniform(9 * 60, 15 * 60) * _MIN)
        out.append(Activity(resident, "toilet", t, t + int(rng.uniform(6, 12) * 60 * _MIN),
                            None, room))
    return out


def _chatter(acts: list[Activity], days: list[int], rng: random.Random) -> list[Activity]:
    resident = acts[0].resident
    out = []
    for day in _later_days(days, rng, 2):
        sensor, room = rng.choice((("toilet", None), ("door", "bathroom"), ("tap", None)))
        t = day + int(rng.uniform(8 * 60, 20 * 60) * _MIN)
        for _ in range(rng.randint(40, 150)):
            on = int(rng.uniform(2, 20) * 1000)
            out.append(Activity(resident, sensor, t, t + on, None, room))
            t += on + int(rng.uniform(5, 40) * 1000)
    return out
