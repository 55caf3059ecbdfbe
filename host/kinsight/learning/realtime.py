"""Real-time rules: one resident's recent Activities and the time now, Findings out.

Each rule looks at what is happening today rather than at whole days:

* ``prolonged_presence``: a ``toilet_long``/``stairs_long`` event, or a toilet or
  stairs visit longer than its limit, in the last ``window_h`` hours;
* ``not_up``: nothing seen up today although it is later than the personal get-up
  time (median first activity of the last 14 days) plus a margin;
* ``no_water``: no water drawn for a daytime stretch much longer than usual;
* ``night_wandering``: up and about (not to the toilet) several more times than
  usual in the heart of the resident's own night (their learnt night, an hour in
  from each end); urgent when the front door opened then or when far beyond the
  usual, for the daily digest when two of the last three nights were restless,
  and nothing for one restless night alone (a well resident has those).

A Finding's ``score`` is how far past its limit the observation is (1.0 = at the
limit). Rules that need a personal baseline say nothing until there are
``MIN_DAYS`` days of history, and no rule speaks without any data in the last
day (a silent home is a device question, not a health one).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ..residents import Activity
from .features import daily_features, learn_night
from .model import Finding

HISTORY_DAYS = 14
MIN_DAYS = 5
_HOUR = 3_600_000
_MIN = 60_000
_UP = frozenset({"seat", "tap", "toilet", "stairs", "door", "presence", "fridge", "flush",
                 "toilet_long", "stairs_long"})
LIMITS_MIN = {"toilet": 45.0, "stairs": 10.0}


def _local(ms: int, zi: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(zi)


def _at(day: date, minutes: float, zi: ZoneInfo) -> int:
    t = datetime.combine(day, datetime.min.time(), zi) + timedelta(minutes=minutes)
    return int(t.timestamp() * 1000)


def _clock(minutes: float) -> str:
    m = int(round(minutes)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def _past_days(acts: Sequence[Activity], today: date, zi: ZoneInfo) -> list[date]:
    first = today - timedelta(days=HISTORY_DAYS)
    return sorted({d for a in acts if first <= (d := _local(a.start_ms, zi).date()) < today})


def _recent(acts: Sequence[Activity], now_ms: int) -> bool:
    return any(now_ms - 24 * _HOUR <= a.end_ms and a.start_ms <= now_ms for a in acts)


def prolonged_presence(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
                       window_h: float = 24.0, limits_min: dict[str, float] | None = None
                       ) -> list[Finding]:
    limits = {**LIMITS_MIN, **(limits_min or {})}
    zi = ZoneInfo(tz)
    out: list[Finding] = []
    for place in ("toilet", "stairs"):
        worst: tuple[float, Activity] | None = None
        for a in acts:
            if not (now_ms - window_h * _HOUR <= a.start_ms <= now_ms):
                continue
            minutes = (min(a.end_ms, now_ms) - a.start_ms) / _MIN
            flagged = a.sensor == f"{place}_long" or (a.sensor == place
                                                      and minutes > limits[place])
            if flagged and (worst is None or minutes > worst[0]):
                worst = (minutes, a)
        if worst is None:
            continue
        minutes, a = worst
        where = "in the bathroom" if place == "toilet" else "on the stairs"
        out.append(Finding(
            f"prolonged_{place}", "urgent", round(max(1.0, minutes / limits[place]), 2),
            f"Stayed {where} for {minutes:.0f} min from {_clock(_minutes(a.start_ms, zi))} "
            f"(the limit is {limits[place]:.0f} min); they may have fallen or be unwell",
            [round(minutes, 1)]))
    return out


def _minutes(ms: int, zi: ZoneInfo) -> float:
    t = _local(ms, zi)
    return t.hour * 60 + t.minute + t.second / 60


def _history(acts: Sequence[Activity], today: date, tz: str) -> dict[date, dict[str, float]]:
    zi = ZoneInfo(tz)
    lo = _at(today - timedelta(days=HISTORY_DAYS), 0, zi)
    hi = _at(today, 0, zi)
    feats = daily_features([a for a in acts if lo <= a.start_ms < hi or lo <= a.end_ms < hi],
                           tz)
    return {d: f for d, f in feats.items() if d < today}


def personal_night(acts: Sequence[Activity], today: date, tz: str = "Europe/London"
                   ) -> tuple[float, float]:
    """The resident's night as ``features.learn_night`` learns it from the last 14 days
    before ``today`` (22:00 to 07:00 until there are enough of them)."""
    return learn_night(_history(acts, today, tz))


def personal_getup_min(acts: Sequence[Activity], today: date, tz: str = "Europe/London"
                       ) -> float | None:
    """Median get-up time (minutes after midnight) of the last 14 days before ``today``,
    as ``features.daily_features`` sees it; None with fewer than MIN_DAYS days."""
    return _getup(_history(acts, today, tz))


def _getup(history: dict[date, dict[str, float]]) -> float | None:
    mins = [f["first_activity_min"] for f in history.values() if "first_activity_min" in f]
    return float(statistics.median(mins)) if len(mins) >= MIN_DAYS else None


def not_up(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
           margin_min: float = 120.0,
           history: dict[date, dict[str, float]] | None = None) -> list[Finding]:
    """``history``: the last 14 days' features (``_history``), when already at hand."""
    zi = ZoneInfo(tz)
    now = _local(now_ms, zi)
    today = now.date()
    usual = _getup(history if history is not None else _history(acts, today, tz))
    if usual is None or not _recent(acts, now_ms):
        return []
    late = _minutes(now_ms, zi) - usual
    if late <= margin_min:
        return []
    since = _at(today, 4 * 60, zi)
    for a in acts:
        if a.sensor in _UP and since <= a.start_ms <= now_ms:
            return []
        if a.sensor == "bed" and since <= a.end_ms <= now_ms:
            return []
    return [Finding("not_up", "urgent", round(late / margin_min, 2),
                    f"Not seen up and about yet at {_clock(_minutes(now_ms, zi))}; usually up "
                    f"by {_clock(usual)} ({late / 60:.1f} h later than usual)", [usual])]


def _longest_gap(draws: list[int], lo: int, hi: int) -> int:
    points = [lo, *sorted(t for t in draws if lo <= t <= hi), hi]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def no_water(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
             day_start_h: float = 8.0, day_end_h: float = 21.0, factor: float = 1.5,
             min_gap_h: float = 4.0) -> list[Finding]:
    """No tap draw for longer than ``factor`` times the usual longest daytime gap
    (at least ``min_gap_h`` hours), counted within the daytime only; the rule speaks
    only in the daytime (a whole day's water is the daily model's)."""
    zi = ZoneInfo(tz)
    today = _local(now_ms, zi).date()
    lo_today = _at(today, day_start_h * 60, zi)
    hi_today = now_ms
    if not lo_today < now_ms <= _at(today, day_end_h * 60, zi) or not _recent(acts, now_ms):
        return []
    draws = [a.start_ms for a in acts if a.sensor == "tap"]
    usual_gaps = []
    for d in _past_days([a for a in acts if a.sensor == "tap"], today, zi):
        usual_gaps.append(_longest_gap(draws, _at(d, day_start_h * 60, zi),
                                       _at(d, day_end_h * 60, zi)))
    if len(usual_gaps) < MIN_DAYS:
        return []
    limit = max(min_gap_h * _HOUR, factor * statistics.median(usual_gaps))
    last = max((t for t in draws if t <= hi_today), default=None)
    start = lo_today if last is None or last < lo_today else last
    gap = hi_today - start
    if gap <= limit:
        return []
    usual_h = statistics.median(usual_gaps) / _HOUR
    return [Finding("no_water", "urgent", round(gap / limit, 2),
                    f"No water drawn since {_clock(_minutes(start, zi))} "
                    f"({gap / _HOUR:.1f} h of the day); the longest daytime stretch without "
                    f"water is usually {usual_h:.1f} h", [round(gap / _HOUR, 2)])]


# A trip to the toilet at night is not wandering (night visits are the daily model's).
_WANDER = _UP - {"toilet", "toilet_long", "flush"}
_EPISODE_GAP_MS = 10 * _MIN


def _night_core(day: date, night: tuple[float, float], zi: ZoneInfo) -> tuple[int, int]:
    """The heart of the night that ends on the morning of ``day``: an hour in from
    the usual settling and get-up times (at least two hours long), so an early
    rise or a late evening is not counted as night-time activity."""
    lo = _at(day - timedelta(days=1), night[0] + 60, zi)
    hi = max(lo + 2 * _HOUR, _at(day, night[1] - 60, zi))
    return lo, hi


def _episodes(acts: Sequence[Activity], lo: int, hi: int) -> list[Activity]:
    """First activity of each spell of being up (activities 10 min apart or less are one)."""
    out: list[Activity] = []
    end = -1
    for a in sorted((a for a in acts if a.sensor in _WANDER and lo <= a.start_ms < hi),
                    key=lambda a: a.start_ms):
        if out and a.start_ms - end <= _EPISODE_GAP_MS:
            end = max(end, a.end_ms)  # the same spell goes on
            continue
        out.append(a)
        end = a.end_ms
    return out


def night_wandering(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London",
                    extra: int = 3, night: tuple[float, float] | None = None
                    ) -> list[Finding]:
    """Last night (the heart of the resident's night, see ``_night_core``; the night
    ``now`` is in or the one just gone) had at least ``extra`` more spells up and
    about than the usual night (the median of the last 14) and at least 3. Urgent
    when the front door opened in it or at ``2 * extra`` more than usual; for the
    digest when one of the two nights before was restless too; otherwise nothing.
    ``night`` is learnt from the history when not given."""
    zi = ZoneInfo(tz)
    today = _local(now_ms, zi).date()
    if not _recent(acts, now_ms):
        return []
    past = _past_days(acts, today, zi)
    if len(past) < MIN_DAYS:
        return []
    night = night or personal_night(acts, today, tz)
    lo, hi = _night_core(today, night, zi)
    if now_ms < lo:
        return []
    counts = {d: len(_episodes(acts, *_night_core(d, night, zi))) for d in past}
    usual = statistics.median(counts.values())
    until = min(now_ms, hi)
    spells = _episodes(acts, lo, until)
    limit = max(3.0, usual + extra)
    if len(spells) < limit:
        return []
    restless_before = sum(counts.get(today - timedelta(days=i), 0) >= limit for i in (1, 2))
    door = [a for a in acts if a.sensor == "door" and lo <= a.start_ms < until]
    urgent = bool(door) or len(spells) >= usual + 2 * extra
    if not urgent and not restless_before:
        return []  # one restless night is not a pattern; two of the last three are
    where = f"{_clock(_minutes(lo, zi))} and {_clock(_minutes(hi, zi))}"
    text = (f"Up and about {len(spells)} times between {where} last night (toilet visits "
            f"not counted); usually {usual:.0f} times")
    if door:
        text += f"; the door opened at {_clock(_minutes(door[0].start_ms, zi))}"
    if restless_before:
        text += f"; {restless_before + 1} of the last 3 nights were like this"
    return [Finding("night_wandering", "urgent" if urgent else "digest",
                    round(len(spells) / limit, 2), text, [float(usual), float(len(spells))])]


def check(acts: Sequence[Activity], now_ms: int, tz: str = "Europe/London") -> list[Finding]:
    """Every rule's findings for one resident at ``now_ms``; the fortnight's features
    that ``not_up`` and ``night_wandering`` both learn from are computed once."""
    history = _history(acts, _local(now_ms, ZoneInfo(tz)).date(), tz)
    return [*prolonged_presence(acts, now_ms, tz),
            *not_up(acts, now_ms, tz, history=history),
            *no_water(acts, now_ms, tz),
            *night_wandering(acts, now_ms, tz, night=learn_night(history))]
