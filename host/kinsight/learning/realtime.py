"""Real-time rules: one resident's recent Activities and the time now, Findings out.

Each rule looks at what is happening today, against the resident's own routine
(``routine.learn_routine``: the fortnight before today) rather than fixed numbers:

* ``prolonged_presence``: a stay in the bathroom or on the stairs far longer than the
  resident's own visits (between a floor and a ceiling), read only from a sensor
  whose "on" lasts as long as a visit, and urgent only when nothing else moved in
  the home meanwhile: a stay with the kitchen in use is not a fall.
* ``not_up``: not seen up although it is well past the personal get-up time (a
  margin from how much it varies), with the home's sensors live; not when the
  resident went out.
* ``silent_home``: seen up today, then no sign of anyone for longer than the
  resident's usual longest stretch without one: urgent. Going out of the front
  door and then silence is ``out``, not this.
* ``out_overnight``: out of the front door and not back in the heart of the night;
  for the record (a digest), never "down".
* ``no_water``: no water drawn for a daytime stretch much longer than usual while
  the resident is at home and moving about: for the digest.
* ``night_wandering``: up and about (not to the toilet) several more times than
  usual in the heart of the resident's own night; urgent only when the front door
  opened in such a night, for the digest when two of the last three nights were
  restless, nothing for one restless night alone (a well resident has those).
* ``stuck_sensor``: a sensor "on" far beyond its own longest while the rest of the
  home is in use is equipment, for the field team, never health evidence; so is
  one that ``chattering`` finds switching far more often than it ever does.

A Finding's ``score`` is how far past its limit the observation is (1.0 = at the
limit). Rules that need a personal baseline say nothing until there are
``MIN_DAYS`` days of history, and no rule speaks without any data in the last
day (a silent hub is a device question, not a health one).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from ..residents import Activity
from .features import DEFAULT_NIGHT, learn_night
from .findings import Finding
from .routine import (
    HISTORY_DAYS,
    MIN_DAYS,
    OCCUPANCY,
    TOILET_ROOMS,
    WANDER_NOT,
    Routine,
    at,
    evidence_spans,
    history,
    is_entrance,
    learn_routine,
    local,
    minutes_of,
    moving,
    night_core,
    spell_starts,
)

__all__ = ["HISTORY_DAYS", "MIN_DAYS", "LIMITS_MIN", "check", "learn_routine",
           "night_wandering", "no_water", "not_up", "out_overnight", "personal_getup_min",
           "personal_night", "prolonged_presence", "silent_home", "stuck_sensor",
           "chattering"]

_HOUR = 3_600_000
_MIN = 60_000
# A stay's limit: three times the resident's own longest usual visit, within these.
LIMITS_MIN = {"toilet": 45.0, "stairs": 10.0}
STAY_LIMITS_MIN = {"toilet": (30.0, 90.0), "stairs": (10.0, 30.0)}
# What a stay in a place is not: movement here or of its own sensors.
_PLACE_SENSORS = {"toilet": frozenset({"toilet", "toilet_long", "flush", "tap", "shower"}),
                  "stairs": frozenset({"stairs", "stairs_long"})}
_PLACE_ROOMS = {"toilet": TOILET_ROOMS, "stairs": frozenset()}
_CORROBORATING = 2  # signs elsewhere in the home that show a stay is not a fall
_OUT_MIN = 30.0  # silence after the front door this long: out


def _clock(minutes: float) -> str:
    m = int(round(minutes)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def _hours(ms: float) -> str:
    return f"{ms / _HOUR:.1f} h"


def _recent(acts: Sequence[Activity], now_ms: int) -> bool:
    # From the newest: in the usual order (by start) the answer is near the end.
    return any(now_ms - 24 * _HOUR <= a.end_ms and a.start_ms <= now_ms
               for a in reversed(acts))


def _elsewhere(acts: Sequence[Activity], place: str, lo: int, hi: int) -> list[Activity]:
    """Signs of someone in [lo, hi) that are not in ``place`` nor of its own sensors: a
    movement then, or a seat or presence occupied then."""
    return [a for start, end, a in evidence_spans(acts) if start < hi and end >= lo
            and (start >= lo or a.sensor in OCCUPANCY) and a.sensor != "bed"
            and a.sensor not in _PLACE_SENSORS[place] and a.room not in _PLACE_ROOMS[place]]


_NOT_SIGNS = frozenset({"heartbeat", "heart_rate"})


# One check asks for the last sign up to four times (out? not up? silent? no water?)
# of the same activities at the same moment: the last answer, with what it was for (the
# list itself is kept, so its id is never another's). One tuple, swapped whole: threads
# each see an answer with the question it belongs to.
_last_sign_memo: tuple[object, int, int, tuple[int, Activity] | None] = (None, -1, -1, None)


def _last_sign(acts: Sequence[Activity], now_ms: int) -> tuple[int, Activity] | None:
    """The last moment someone was seen at home by ``now_ms``, and by what (of two at
    the same moment, the one that began later)."""
    global _last_sign_memo
    memo_acts, memo_len, memo_now, found = _last_sign_memo
    if memo_acts is acts and memo_len == len(acts) and memo_now == now_ms:
        return found
    found = _find_last_sign(acts, now_ms)
    _last_sign_memo = (acts, len(acts), now_ms, found)
    return found


def _find_last_sign(acts: Sequence[Activity], now_ms: int) -> tuple[int, Activity] | None:
    best_moment = best_start = 0
    best: Activity | None = None
    for a in acts:  # every real-time check asks this more than once: kept tight
        start = a.start_ms
        if start > now_ms or a.sensor in _NOT_SIGNS:
            continue
        moment = a.end_ms if a.sensor in OCCUPANCY else start
        if moment > now_ms:
            moment = now_ms
        if best is None or moment > best_moment or (moment == best_moment
                                                     and start >= best_start):
            best_moment, best_start, best = moment, start, a
    return None if best is None else (best_moment, best)


def is_out(acts: Sequence[Activity], now_ms: int) -> int | None:
    """When the resident went out, if the last sign at home is the front door and
    nothing has moved since for ``_OUT_MIN``; else None."""
    last = _last_sign(acts, now_ms)
    if last is None or not is_entrance(last[1]) or now_ms - last[0] < _OUT_MIN * _MIN:
        return None
    return last[0]


def prolonged_presence(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
                       window_h: float = 24.0, limits_min: dict[str, float] | None = None,
                       routine: Routine | None = None) -> list[Finding]:
    """A stay (a node's ``*_long`` event, or a visit) far longer than the resident's own
    visits; ``limits_min`` replaces the learnt limits. Urgent when nothing moved
    elsewhere meanwhile; said of a sensor whose "on" measures a stay only."""
    zi = ZoneInfo(tz)
    r = routine if routine is not None else learn_routine(acts, local(now_ms, zi).date(), tz)
    out: list[Finding] = []
    for place in ("toilet", "stairs"):
        limit, usual = _stay_limit(place, r, limits_min)
        worst: tuple[float, Activity] | None = None
        for a in acts:
            if not (now_ms - window_h * _HOUR <= a.start_ms <= now_ms):
                continue
            if a.sensor not in (place, f"{place}_long"):
                continue
            profile = r.profile(a)
            if a.sensor == place and profile is not None and not profile.measures_stay:
                continue  # a flush or door contact: its "on" is not how long they stayed
            minutes = (min(a.end_ms, now_ms) - a.start_ms) / _MIN
            if (a.sensor.endswith("_long") or minutes > limit) and (
                    worst is None or minutes > worst[0]):
                worst = (minutes, a)
        if worst is None:
            continue
        minutes, a = worst
        end = min(a.end_ms, now_ms)
        # Time enough to get there and sit down; after that, anyone moving elsewhere
        # means the person is not lying on the bathroom floor.
        signs = _elsewhere(acts, place, a.start_ms + 2 * _MIN, end)
        # A seat or presence occupied elsewhere meanwhile is as good as two movements.
        if sum(_CORROBORATING if b.sensor in OCCUPANCY else 1 for b in signs) >= _CORROBORATING:
            continue
        where = "in the bathroom" if place == "toilet" else "on the stairs"
        since = _clock(minutes_of(a.start_ms, zi))
        usual_text = f"a visit usually takes {usual:.0f} min" if usual else (
            f"the limit is {limit:.0f} min")
        out.append(Finding(
            f"prolonged_{place}", "urgent", round(max(1.0, minutes / limit), 2),
            f"Stayed {where} for {minutes:.0f} min from {since} with nothing else moving "
            f"at home meanwhile ({usual_text}); they may have fallen or be unwell",
            [round(minutes, 1)], subject=_since(_subject(a.sensor, a.room), a.start_ms, zi)))
    return out


def _stay_limit(place: str, r: Routine, limits_min: dict[str, float] | None
                ) -> tuple[float, float | None]:
    """(the limit in minutes, the usual visit's minutes or None)."""
    if limits_min and place in limits_min:
        return limits_min[place], None
    lo, hi = STAY_LIMITS_MIN[place]
    p = r.sensors.get((place, None))
    if p is None or p.samples < MIN_DAYS or not p.measures_stay:
        return LIMITS_MIN[place], None
    return min(hi, max(lo, 3 * p.p95_min)), p.median_min


def personal_night(acts: Sequence[Activity], today: date, tz: str = "Europe/London"
                   ) -> tuple[float, float]:
    """The resident's night as ``features.learn_night`` learns it from the last 14 days
    before ``today`` (22:00 to 07:00 until there are enough of them)."""
    return learn_night(history(acts, today, tz))


def personal_getup_min(acts: Sequence[Activity], today: date, tz: str = "Europe/London"
                       ) -> float | None:
    """Median get-up time (minutes after midnight) of the last 14 days before ``today``,
    as ``features.daily_features`` sees it; None with fewer than MIN_DAYS days."""
    return learn_routine(acts, today, tz).getup_min


def not_up(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
           margin_min: float | None = None, routine: Routine | None = None) -> list[Finding]:
    """Nothing seen up today although it is ``margin_min`` past the usual get-up time
    (by default 90 min plus one and a half times how far the later get-ups go past
    it, 2 to 3.5 h); what happened before the earliest usual get-up (a trip to the
    toilet at dawn) does not count as being up."""
    zi = ZoneInfo(tz)
    today = local(now_ms, zi).date()
    r = routine if routine is not None else learn_routine(acts, today, tz)
    if r.getup_min is None or not _recent(acts, now_ms):
        return []
    margin = margin_min if margin_min is not None else min(
        210.0, max(120.0, 90.0 + 1.5 * r.getup_spread_min))
    late = minutes_of(now_ms, zi) - r.getup_min
    if late <= margin or local(now_ms, zi).hour >= 18:
        return []
    earliest = r.earliest_getup_min if r.earliest_getup_min is not None else r.getup_min
    since = at(today, max(4 * 60.0, min(earliest, r.getup_min - 60.0) - 30.0), zi)
    for a in acts:
        if moving(a) and since <= a.start_ms <= now_ms:
            return []
        if a.sensor == "bed" and since <= a.end_ms < now_ms:
            return []  # out of bed (a bed still on ends "now" in a live view)
    if is_out(acts, now_ms) is not None:
        return []
    last = _last_sign(acts, now_ms)
    alive = any(a.sensor == "heartbeat" and last is not None and a.start_ms > last[0]
                for a in acts)
    settle = r.settle_min if r.settle_min is not None else 22 * 60.0
    evening = at(today - timedelta(days=1), settle - 120, zi)
    if not alive and (last is None or last[0] < evening):
        # Sensors that cannot say they are alive went quiet early last evening: the home
        # may be offline, or the resident out without the door being heard. Ask.
        since_text = "" if last is None else (
            f" since {_clock(minutes_of(last[0], zi))} yesterday")
        return [Finding("device", "digest", 1.0,
                        f"No sign of anyone at home{since_text}, from earlier in the evening "
                        "than usual, and these sensors cannot say whether they are working: "
                        "please check the equipment, and that all is well (this is not a "
                        "health alert)", [], subject="home")]
    return [Finding("not_up", "urgent", round(late / margin, 2),
                    f"Not seen up and about yet at {_clock(minutes_of(now_ms, zi))}; usually "
                    f"up by {_clock(r.getup_min)} ({late / 60:.1f} h later than usual) and "
                    "the sensors are reporting", [round(r.getup_min, 1)],
                    subject=today.isoformat())]


def silent_home(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
                routine: Routine | None = None) -> list[Finding]:
    """Seen up today, then no sign of anyone at home for longer than the longest such
    stretch of the fortnight (a quarter more, 3 to 5 h) in the waking day; not when
    the last sign was the front door (out)."""
    zi = ZoneInfo(tz)
    today = local(now_ms, zi).date()
    r = routine if routine is not None else learn_routine(acts, today, tz)
    if r.longest_still_min is None or r.getup_min is None:
        return []
    limit = min(5 * 60.0, max(3 * 60.0, 1.25 * r.longest_still_min))
    day_start = at(today, max(4 * 60.0, r.getup_min - 60.0), zi)
    settle = r.settle_min if r.settle_min is not None else 22 * 60.0
    if not day_start < now_ms <= at(today, min(settle, 23 * 60.0) - 30.0, zi):
        return []
    today_acts = [a for a in acts if a.start_ms >= day_start and moving(a)]
    last = _last_sign(acts, now_ms)
    if not today_acts or last is None or last[0] < day_start:
        return []  # not up yet today: that is not_up's question
    still_min = (now_ms - last[0]) / _MIN
    if still_min <= limit or is_entrance(last[1]):
        return []
    beats = [a for a in acts if a.sensor == "heartbeat" and a.start_ms > last[0]]
    sensors = ("the sensors are reporting" if beats else
               "these sensors cannot say whether they are working")
    return [Finding("silent_home", "urgent", round(still_min / limit, 2),
                    f"No sign of anyone moving at home since "
                    f"{_clock(minutes_of(last[0], zi))} ({still_min / 60:.1f} h); in the day "
                    f"it has not been longer than {r.longest_still_min / 60:.1f} h in the last "
                    f"fortnight and "
                    f"the front door has not opened ({sensors}); please check on them",
                    [round(still_min, 1)], subject=_since("still", last[0], zi))]


def out_overnight(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
                  routine: Routine | None = None) -> list[Finding]:
    """Out of the front door and not back, in the heart of the resident's night."""
    zi = ZoneInfo(tz)
    today = local(now_ms, zi).date()
    r = routine if routine is not None else learn_routine(acts, today, tz)
    if r.days < MIN_DAYS:
        return []
    lo, hi = night_core(today, r.night, zi)
    if not lo <= now_ms < hi:
        lo, hi = night_core(today + timedelta(days=1), r.night, zi)
        if not lo <= now_ms < hi:
            return []
    left = is_out(acts, now_ms)
    if left is None or now_ms - left < 3 * _HOUR:
        return []
    return [Finding("out_overnight", "digest", 1.0,
                    f"Went out of the front door at {_clock(minutes_of(left, zi))} and not "
                    f"back by {_clock(minutes_of(now_ms, zi))} (nothing has moved at home "
                    f"since); this is not an alarm", [round((now_ms - left) / _HOUR, 1)],
                    subject=_since("out", left, zi))]


def no_water(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
             day_start_h: float = 8.0, day_end_h: float = 21.0, factor: float = 1.5,
             min_gap_h: float = 4.0, routine: Routine | None = None) -> list[Finding]:
    """No tap draw for longer than ``factor`` times the usual longest daytime gap (at
    least ``min_gap_h`` hours, and an hour past the longest of the fortnight),
    counted in the daytime only, while the resident was at home and moving about in
    at least three of those hours."""
    zi = ZoneInfo(tz)
    today = local(now_ms, zi).date()
    lo_today = at(today, day_start_h * 60, zi)
    if not lo_today < now_ms <= at(today, day_end_h * 60, zi) or not _recent(acts, now_ms):
        return []
    r = routine if routine is not None else learn_routine(acts, today, tz)
    # A tap in the fortnight or since: the resident has one to go without.
    if len(r.longest_tap_gap_h) < MIN_DAYS or not (("tap", None) in r.sensors
                                                    or any(a.sensor == "tap" for a in acts)):
        return []
    usual_h = statistics.median(r.longest_tap_gap_h)
    # Past the longest stretch of the fortnight too: where long ones are ordinary (a tap
    # used only now and then), this rule has nothing to say.
    limit = max(min_gap_h, factor * usual_h, max(r.longest_tap_gap_h) + 1.0) * _HOUR
    last = max((a.start_ms for a in acts if a.sensor == "tap" and a.start_ms <= now_ms),
               default=None)
    start = lo_today if last is None or last < lo_today else last
    gap = now_ms - start
    if gap <= limit or is_out(acts, now_ms) is not None:
        return []
    hours = {(a.start_ms - start) // _HOUR for a in acts
             if start < a.start_ms <= now_ms and moving(a) and a.sensor != "tap"}
    if len(hours) < 3:
        return []  # out, or asleep: not a day at home without a drink
    return [Finding("no_water", "digest", round(gap / limit, 2),
                    f"No water drawn since {_clock(minutes_of(start, zi))} ({_hours(gap)} of "
                    f"the day) while at home and about; the longest daytime stretch without "
                    f"water is usually {usual_h:.1f} h", [round(gap / _HOUR, 1)],
                    subject=_since("tap", start, zi))]


def _episodes(acts: Sequence[Activity], lo: int, hi: int) -> list[Activity]:
    """First activity of each spell of being up (activities 10 min apart or less are one)."""
    chosen = sorted((a for a in acts if a.sensor not in WANDER_NOT and lo <= a.start_ms < hi
                     and a.room not in TOILET_ROOMS), key=lambda a: a.start_ms)
    return [chosen[i] for i in spell_starts([(a.start_ms, a.end_ms) for a in chosen])]


def night_wandering(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
                    extra: int = 3, night: tuple[float, float] | None = None,
                    routine: Routine | None = None) -> list[Finding]:
    """Last night (the heart of the resident's night, see ``routine.night_core``; the night
    ``now`` is in or the one just gone) had at least ``extra`` more spells up and
    about than the usual night (the median of the last 14) and at least 3. Urgent
    when the front door opened in it; for the digest when one of the two nights
    before was restless too; otherwise nothing. ``night`` is learnt from the
    history when not given."""
    zi = ZoneInfo(tz)
    today = local(now_ms, zi).date()
    if not _recent(acts, now_ms):
        return []
    if routine is not None:
        past = routine.past_days
    else:
        first = today - timedelta(days=HISTORY_DAYS)
        past = sorted({d for a in acts if first <= (d := local(a.start_ms, zi).date()) < today})
    if len(past) < MIN_DAYS:
        return []
    night = night or personal_night(acts, today, tz)
    lo, hi = night_core(today, night, zi)
    if now_ms < lo:
        return []
    cache = routine.night_spells if routine is not None and night == routine.night else {}
    counts = {}
    for d in past:
        if d not in cache:
            cache[d] = len(_episodes(acts, *night_core(d, night, zi)))
        counts[d] = cache[d]
    usual = statistics.median(counts.values())
    until = min(now_ms, hi)
    spells = _episodes(acts, lo, until)
    limit = max(3.0, usual + extra)
    if len(spells) < limit:
        return []
    restless_before = sum(counts.get(today - timedelta(days=i), 0) >= limit for i in (1, 2))
    door = [a for a in acts if is_entrance(a) and lo <= a.start_ms < until]
    if not door and not restless_before:
        return []  # one restless night is not a pattern; two of the last three are
    where = f"{_clock(minutes_of(lo, zi))} and {_clock(minutes_of(hi, zi))}"
    text = (f"Up and about {len(spells)} times between {where} last night (toilet visits "
            f"not counted); usually {usual:.0f} times")
    if door:
        text += f"; the front door opened at {_clock(minutes_of(door[0].start_ms, zi))}"
    if restless_before:
        text += f"; {restless_before + 1} of the last 3 nights were like this"
    return [Finding("night_wandering", "urgent" if door else "digest",
                    round(len(spells) / limit, 2), text, [float(usual), float(len(spells))],
                    subject=_since("night", lo, zi))]


def _subject(sensor: str, room: str | None) -> str:
    """Which sensor an equipment notice is about."""
    return f"{sensor}/{room}" if room else sensor


def _since(what: str, start_ms: int, zi: ZoneInfo) -> str:
    """Which incident a finding is about (a stay, a silence, a night out): the next
    one is another incident, and the throttle holds only the same one again."""
    return f"{what} {local(start_ms, zi).strftime('%Y-%m-%dT%H:%M')}"


def stuck_sensor(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
                 routine: Routine | None = None) -> list[Finding]:
    """Each sensor on far beyond its own longest while the rest of the home is in use."""
    zi = ZoneInfo(tz)
    r = routine if routine is not None else learn_routine(acts, local(now_ms, zi).date(), tz)
    out: list[Finding] = []
    for a in acts:
        if a.sensor in ("heartbeat", "heart_rate") or a.start_ms < now_ms - 48 * _HOUR:
            continue
        profile = r.profile(a)
        if profile is None or profile.samples < MIN_DAYS:
            continue  # too little of it to know its own longest
        on_min = (min(a.end_ms, now_ms) - a.start_ms) / _MIN
        limit = profile.stuck_after_min()
        if on_min <= limit:
            continue
        others = {(b.sensor, b.room) for b in acts if a.start_ms < b.start_ms <= now_ms
                  and moving(b) and (b.sensor, b.room) != (a.sensor, a.room)}
        if len(others) < 2:
            continue  # the home is still too: a stay, not a stuck sensor
        name = a.sensor.replace("_", " ") + (f" sensor in the {a.room}" if a.room else " sensor")
        out.append(Finding(
            "device", "digest", round(on_min / limit, 2),
            f"The {name} has been on for {on_min / 60:.1f} h since "
            f"{_clock(minutes_of(a.start_ms, zi))} while the rest of the home is in use: it "
            f"may be stuck; please check it (this is not a health alert)", [round(on_min, 1)],
            subject=_subject(a.sensor, a.room)))
    return out


def chattering(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
               routine: Routine | None = None) -> list[Finding]:
    """A sensor switching far more often in the last hour than in its busiest hour of
    the fortnight (three times, and at least 30): a fault, for the field team."""
    zi = ZoneInfo(tz)
    r = routine if routine is not None else learn_routine(acts, local(now_ms, zi).date(), tz)
    counts: dict[tuple[str, str | None], int] = {}
    for a in acts:
        if now_ms - _HOUR < a.start_ms <= now_ms and a.sensor not in ("heartbeat",
                                                                    "heart_rate"):
            counts[(a.sensor, a.room)] = counts.get((a.sensor, a.room), 0) + 1
    # A sensor's room may be known for one source and not for another (an import and a
    # node): None sorts as "".
    for (sensor, room), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        limit = max(30, 3 * r.busiest_hour.get((sensor, room), 0))
        if n > limit:
            name = sensor.replace("_", " ") + (f" sensor in the {room}" if room else " sensor")
            return [Finding("device", "digest", round(n / limit, 2),
                            f"The {name} switched {n} times in the last hour (at most "
                            f"{r.busiest_hour.get((sensor, room), 0)} in an hour over the last "
                            "fortnight): it may be faulty; please check it (this is not a "
                            "health alert)", [float(n)], subject=_subject(sensor, room))]
    return []


# How far back prolonged_presence (24 h), stuck_sensor (48 h) and chattering (1 h) look.
_RECENT_MS = 48 * _HOUR


def check(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
          routine: Routine | None = None) -> list[Finding]:
    """Every rule's findings for one resident at ``now_ms``; the routine they all learn
    from (``routine``: already learnt for today) is learnt once."""
    today = local(now_ms, ZoneInfo(tz)).date()
    r = routine if routine is not None else learn_routine(acts, today, tz)
    # The rules that look back two days at most (a stay, a stuck or chattering sensor)
    # see those days only: the same findings, without walking the fortnight each.
    recent = [a for a in acts if a.end_ms >= now_ms - _RECENT_MS]
    if is_out(acts, now_ms) is not None:
        return [*out_overnight(acts, now_ms, tz, routine=r),
                *stuck_sensor(recent, now_ms, tz, routine=r)]
    night = r.night if r.days >= MIN_DAYS else DEFAULT_NIGHT
    return [*prolonged_presence(recent, now_ms, tz, routine=r),
            *not_up(acts, now_ms, tz, routine=r),
            *silent_home(acts, now_ms, tz, routine=r),
            *no_water(acts, now_ms, tz, routine=r),
            *night_wandering(acts, now_ms, tz, night=night, routine=r),
            *stuck_sensor(recent, now_ms, tz, routine=r),
            *chattering(recent, now_ms, tz, routine=r)]


def next_due(acts: Sequence[Activity], now_ms: int, tz: str, routine: Routine) -> int:
    """The earliest moment after ``now_ms`` at which ``check`` could find what it does
    not find at ``now_ms`` if nothing new arrives meanwhile: when a threshold of a rule
    that grows with time is crossed (not up by, silent since, no water since, a stay or
    a sensor on for too long, out for half an hour or three hours, a window of the day
    or night opening), or the next local midnight (a new day, a new routine). Whatever
    arrives (a frame, an import) is checked when it arrives; between the two, a
    resident need not be checked at all.

    >>> next_due([], 0, "UTC", Routine(days=0)) == 8 * 3_600_000 + 1  # no_water's day
    True
    """
    zi = ZoneInfo(tz)
    today = local(now_ms, zi).date()
    r = routine
    due = at(today + timedelta(days=1), 0, zi)

    def add(t: float) -> None:
        nonlocal due
        if now_ms < t < due:
            due = int(t)

    last = _last_sign(acts, now_ms)
    if last is not None:
        add(last[0] + _OUT_MIN * _MIN)  # is_out
        add(last[0] + 3 * _HOUR)  # out_overnight
    for d in (today, today + timedelta(days=1)):
        add(night_core(d, r.night, zi)[0])  # out_overnight, night_wandering
        add(night_core(d, DEFAULT_NIGHT, zi)[0])
    if r.getup_min is not None:
        margin = min(210.0, max(120.0, 90.0 + 1.5 * r.getup_spread_min))
        # not_up compares whole seconds: a second past, it is surely past.
        add(at(today, r.getup_min + margin, zi) + 1000)
        day_start = at(today, max(4 * 60.0, r.getup_min - 60.0), zi)
        add(day_start + 1)  # silent_home's day begins
        if r.longest_still_min is not None and last is not None:
            limit = min(5 * 60.0, max(3 * 60.0, 1.25 * r.longest_still_min))
            add(last[0] + limit * _MIN + 1)
    lo_today = at(today, 8 * 60.0, zi)
    add(lo_today + 1)  # no_water's day begins
    if len(r.longest_tap_gap_h) >= MIN_DAYS:
        usual_h = statistics.median(r.longest_tap_gap_h)
        limit_ms = max(4.0, 1.5 * usual_h, max(r.longest_tap_gap_h) + 1.0) * _HOUR
        tap = max((a.start_ms for a in acts if a.sensor == "tap" and a.start_ms <= now_ms),
                  default=None)
        add((lo_today if tap is None or tap < lo_today else tap) + limit_ms + 1)
    for a in acts:
        if a.end_ms < now_ms or a.sensor in _NOT_SIGNS:
            continue  # over: it grows no longer
        for place in ("toilet", "stairs"):
            if a.sensor == place:
                add(a.start_ms + _stay_limit(place, r, None)[0] * _MIN + 1)
        profile = r.profile(a)
        if profile is not None and profile.samples >= MIN_DAYS:
            add(a.start_ms + profile.stuck_after_min() * _MIN + 1)
    return due
