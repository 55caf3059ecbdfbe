"""Sensor histories from other systems: import, extend, change, evaluate.

``kinsight import`` reads JSON Lines, one event a line::

    {"resident": "r1", "sensor": "seat", "start": "2024-03-01T09:00:00",
     "end": "2024-03-01T09:40:00", "value": 250, "room": "living"}

``start`` and ``end`` are ISO 8601 date-times. With an offset (``+01:00``,
``Z``) they are absolute; without one they are wall-clock times in the
resident's time zone (``--tz``). A wall-clock time that does not exist (in the
spring-forward gap) is refused; one that happens twice (in the autumn fall-back)
is taken as the earlier, unless that would put an event's end before its start.
``value`` is an optional number, ``room`` an optional name. Every line of every
file is checked before anything is written: a file with a bad line leaves the
store as it was, and the error lists each bad line with its number. Events are
kept in UTC milliseconds in the ``activities`` table; the same event imported
twice is stored once.

For evaluation on real histories, ``extend_days`` lengthens a short recording
by resampling whole real days (weekdays from weekdays, weekends from weekends)
and ``inject`` writes one of the health changes the detector looks for into a
copy of it; ``evaluate_db`` puts them together.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import statistics
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .activity import Activity
from .detect import Detector
from .errors import KinsightError
from .evaluate import LEARNING_DAYS, Change, Report, Scenario, evaluate
from .store import Store

log = logging.getLogger(__name__)

DEFAULT_TZ = "Europe/London"
MAX_LINE_BYTES = 65536
MAX_DURATION_MS = 7 * 86_400_000
MAX_REPORTED = 20
FIELDS = ("resident", "sensor", "start", "end", "value", "room")
REQUIRED = ("resident", "sensor", "start", "end")

_SENSOR = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS residents (resident TEXT PRIMARY KEY, tz TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS activities (
    resident TEXT NOT NULL,
    sensor TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    value REAL,
    room TEXT,
    source TEXT,
    UNIQUE (resident, sensor, start_ms, end_ms)
);
"""


class HistoryError(KinsightError, ValueError):
    """A history file cannot be imported; nothing of it (or its batch) was written.

    ``problems`` holds ``(path, line, message)`` for every bad line (line 0: the
    file as a whole)."""

    reason = "history"

    def __init__(self, problems: Sequence[tuple[str, int, str]]):
        self.problems = list(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self, limit: int = MAX_REPORTED) -> list[str]:
        """One line per problem, ``FILE: line N: what``, at most ``limit`` then a count."""
        out = [f"{path}: line {n}: {msg}" if n else f"{path}: {msg}"
               for path, n, msg in self.problems[:limit]]
        if len(self.problems) > limit:
            out.append(f"... and {len(self.problems) - limit} more invalid lines")
        return out


@dataclass(frozen=True)
class ImportResult:
    """What one file brought: its events, how many were new, whose they are."""

    path: str
    events: int
    inserted: int
    residents: tuple[str, ...]

    @property
    def duplicates(self) -> int:
        return self.events - self.inserted


@dataclass
class _Parsed:
    path: str
    rows: list[tuple[int, Activity]] = field(default_factory=list)  # (line, activity)
    problems: list[tuple[str, int, str]] = field(default_factory=list)


# --- time ------------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or a HistoryError saying it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HistoryError([("--tz", 0, f"unknown time zone {name!r}")]) from None


def to_ms(dt: datetime) -> int:
    """An aware datetime as UTC milliseconds."""
    return (dt - _EPOCH) // _MS


def local(ms: int, tz: ZoneInfo) -> datetime:
    """UTC milliseconds as an aware datetime in ``tz``."""
    return (_EPOCH + timedelta(milliseconds=ms)).astimezone(tz)


def local_day(ms: int, tz: ZoneInfo) -> date:
    return local(ms, tz).date()


def at(day: date, minute: float, tz: ZoneInfo) -> int:
    """UTC ms of ``minute`` minutes after local midnight of ``day`` (wall clock)."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    return to_ms(wall.replace(tzinfo=tz))


def _wall_ms(naive: datetime, tz: ZoneInfo, fold: int) -> int:
    """UTC ms of a wall-clock time; ValueError if the time does not exist there."""
    aware = naive.replace(tzinfo=tz, fold=fold)
    if aware.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != naive:
        raise ValueError(f"{naive.isoformat()} does not exist in {tz.key} (clocks went forward)")
    return to_ms(aware)


def _parse_time(name: str, text: object) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"{name!r} must be an ISO 8601 date-time string, not {text!r}")
    t = text.strip()
    if t[-1:] in ("Z", "z"):
        t = t[:-1] + "+00:00"
    if len(t) < 16 or t[10] not in "Tt ":
        raise ValueError(f"{name!r} {text!r} is not an ISO 8601 date and time")
    try:
        return datetime.fromisoformat(t[:10] + "T" + t[11:])
    except ValueError:
        raise ValueError(f"{name!r} {text!r} is not an ISO 8601 date and time") from None


def _interval(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[int, int]:
    if start.tzinfo is not None:
        start_ms = to_ms(start)
    else:
        start_ms = _wall_ms(start, tz, 0)
    if end.tzinfo is not None:
        return start_ms, to_ms(end)
    end_ms = _wall_ms(end, tz, 0)
    if end_ms < start_ms:  # an ambiguous end may be the second of the two
        end_ms = max(end_ms, _wall_ms(end, tz, 1))
    return start_ms, end_ms


# --- parsing ---------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate field {key!r}")
        out[key] = value
    return out


def _name(obj: dict[str, Any], key: str, required: bool) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be a non-empty string, not {value!r}")
    if len(value) > 100 or any(ord(c) < 32 for c in value):
        raise ValueError(f"{key!r} must be at most 100 printable characters")
    return value


def parse_line(text: str, tz: ZoneInfo) -> Activity:
    """One JSON Lines event as an Activity; ValueError saying what is wrong."""
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates,
                         parse_constant=lambda c: float("nan"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise ValueError(f"missing {missing[0]!r}")
    resident = _name(obj, "resident", True)
    assert resident is not None
    sensor = obj["sensor"]
    if not isinstance(sensor, str) or not _SENSOR.match(sensor):
        raise ValueError(f"'sensor' must be a lower-case name like \"seat\", not {sensor!r}")
    value = obj.get("value")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"'value' must be a number, not {value!r}")
        if not math.isfinite(value):
            raise ValueError("'value' must be a finite number")
        value = float(value)
    room = _name(obj, "room", False)
    start_ms, end_ms = _interval(_parse_time("start", obj["start"]),
                                 _parse_time("end", obj["end"]), tz)
    if end_ms < start_ms:
        raise ValueError(f"'end' {obj['end']} is before 'start' {obj['start']}")
    if end_ms - start_ms > MAX_DURATION_MS:
        raise ValueError(f"lasts {(end_ms - start_ms) / _DAY_MS:.1f} days, more than 7")
    return Activity(resident, sensor, start_ms, end_ms, value, room)


def _parse_file(path: str | Path, tz: ZoneInfo) -> _Parsed:
    parsed = _Parsed(str(path))
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        parsed.problems.append((str(path), 0, f"cannot read ({exc.strerror})"))
        return parsed
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise ValueError(f"longer than {MAX_LINE_BYTES} bytes")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("not UTF-8 text") from None
            if not text.strip():
                continue
            parsed.rows.append((number, parse_line(text, tz)))
        except ValueError as exc:
            parsed.problems.append((str(path), number, str(exc)))
    if not parsed.rows and not parsed.problems:
        parsed.problems.append((str(path), 0, "no events in the file"))
    return parsed


# --- the store -------------------------------------------------------------------------------


def ensure_tables(store: Store) -> None:
    """Create the history tables if they are missing (the store's schema is untouched)."""
    store.conn.executescript(_SCHEMA)


def resident_zones(store: Store) -> dict[str, str]:
    """Each imported resident's time zone."""
    ensure_tables(store)
    return dict(store.conn.execute("SELECT resident, tz FROM residents ORDER BY resident"))


def import_files(store: Store, paths: Iterable[str | Path], tz: str = DEFAULT_TZ
                 ) -> list[ImportResult]:
    """Import JSON Lines files in one transaction: all of them, or (HistoryError) none."""
    zi = zone(tz)
    ensure_tables(store)
    parsed = [_parse_file(p, zi) for p in paths]
    known = resident_zones(store)
    problems = [p for f in parsed for p in f.problems]
    for f in parsed:
        seen: set[str] = set()
        for number, act in f.rows:
            if act.resident in seen:
                continue
            seen.add(act.resident)
            if known.get(act.resident, tz) != tz:
                problems.append((f.path, number, f"resident {act.resident!r} is stored with "
                                 f"time zone {known[act.resident]}, not {tz}"))
    if problems:
        problems.sort(key=lambda p: (p[0], p[1]))
        raise HistoryError(problems)
    results = []
    with store.transaction():
        for f in parsed:
            before = store.conn.total_changes
            source = Path(f.path).name
            store.conn.executemany(
                "INSERT OR IGNORE INTO activities VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(a.resident, a.sensor, a.start_ms, a.end_ms, a.value, a.room, source)
                 for _, a in f.rows])
            inserted = store.conn.total_changes - before
            residents = tuple(sorted({a.resident for _, a in f.rows}))
            store.conn.executemany("INSERT OR IGNORE INTO residents VALUES (?, ?)",
                                   [(r, tz) for r in residents])
            results.append(ImportResult(f.path, len(f.rows), inserted, residents))
            log.info("%s: %d events, %d new", f.path, len(f.rows), inserted)
    return results


def import_jsonl(store: Store, path: str | Path, tz: str = DEFAULT_TZ) -> ImportResult:
    """Import one JSON Lines file: every line checked first, then all written or none."""
    return import_files(store, [path], tz)[0]


def load_activities(store: Store, resident: str) -> list[Activity]:
    """A resident's imported events, in time order."""
    ensure_tables(store)
    rows = store.conn.execute(
        "SELECT resident, sensor, start_ms, end_ms, value, room FROM activities "
        "WHERE resident = ? ORDER BY start_ms, end_ms, sensor", (resident,))
    return [Activity(r, s, a, b, v, room) for r, s, a, b, v, room in rows]


# --- extending a recording -------------------------------------------------------------------


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
    (a recording's first and last days are often only partly covered)."""
    days = _by_day(activities, tz)
    if not days:
        return []
    floor = statistics.median(len(v) for v in days.values()) / 4
    return sorted(d for d, acts in days.items() if len(acts) >= floor)


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
CONDITIONS = {"dehydration": 2, "uti": 3, "inactivity": 1, "prolonged_sitting": 1}
TAP_SENSORS = ("tap",)


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
      meanwhile.

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
    if bed is None or bed.end_ms >= w1:
        return _clear(acts, w0, w1)
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


# --- evaluation on real histories ------------------------------------------------------------

MIN_DAYS = 60
TRIAL_SPACING_DAYS = 12
_DAYS_PER_MONTH = 30.44


class HistoryReport(Report):
    """A Report whose last line carries the delays of the injected changes."""

    def last_line(self) -> str:
        s = self.summary
        keys: list[tuple[str, Any]] = [
            ("detection_rate", s["detection_rate"]),
            ("false_alerts_per_resident_month", s["false_alerts_per_resident_month"]),
            ("alerts_per_resident_month", s["alerts_per_resident_month"]),
            ("precision", s["precision"])]
        keys += [(f"delay_days_{c}", s["conditions"].get(c, {}).get("median_delay_days"))
                 for c in CONDITIONS]
        return " ".join(f"{k}={_fmt(v)}" for k, v in keys)

    def condition_lines(self) -> list[str]:
        s = self.summary
        lines = [f"{name}: injected {c['crises']}, detected {c['detected']} "
                 f"(rate {_fmt(c['detection_rate'])}), median delay "
                 f"{_fmt(c['median_delay_days'])} d, alerts {c['alerts']}, "
                 f"true {c['true_alerts']}" for name, c in s["conditions"].items()]
        lines.append(f"overall: {s['residents']} residents, {s['resident_days']} resident-days "
                     f"after {s['learning_days']} learning days, false alerts "
                     f"{s['false_alerts']}, injected {s['crises']}, detected {s['detected']}")
        return lines


def _fmt(v: object) -> str:
    if v is None:
        return "none"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def trial_onsets(first: date, days: int, condition: str, learning_days: int = LEARNING_DAYS
                 ) -> list[date]:
    """Injection days after the learning period, every TRIAL_SPACING_DAYS days, each with
    room for the change and a day after it to be noticed."""
    out = []
    offset = learning_days + 4
    while offset + CONDITIONS[condition] + 1 <= days:
        out.append(first + timedelta(days=offset))
        offset += TRIAL_SPACING_DAYS
    return out


def evaluate_db(db_path: str | Path, json_out: str | Path | None = None, *,
                min_days: int = MIN_DAYS, learning_days: int = LEARNING_DAYS, seed: int = 0,
                detector: Callable[[], Detector] | None = None) -> HistoryReport:
    """Evaluate a detector on every imported history in the store at ``db_path``.

    Each recording is extended to ``min_days`` days (``extend_days``, seeded per
    resident). False alerts: every alert on the unchanged copy from the end of the
    learning period on (there are no known health events), per resident-month of
    those days. Detection: copies with one injected change each (``inject``), at
    several onsets after learning; a change is detected by an alert of its
    condition from its first day to the day after it ends, and its delay is the days
    from its first day to that alert. ``alerts_per_resident_month`` and
    ``precision`` count every alert after learning on all copies. A fresh detector
    (``detector()``; the learning engine's ``EngineDetector`` when None) scores each
    copy; the engine reads a silent tap as a dry day in a recording without
    heartbeats (``silent_tap_means_dry``). Writes the JSON report to ``json_out``."""
    from .learn import EngineDetector
    with Store(db_path, create=False) as store:
        zones = resident_zones(store)
        recordings = {r: load_activities(store, r) for r in zones}
    recordings = {r: acts for r, acts in recordings.items() if acts}
    if not recordings:
        raise HistoryError([(str(db_path), 0, "no imported histories (use kinsight import)")])
    cond: dict[str, dict[str, Any]] = {
        c: {"trials": 0, "detected": 0, "delays": [], "alerts": 0, "true_alerts": 0}
        for c in CONDITIONS}
    per_resident: list[dict[str, Any]] = []
    base_false = base_days = all_alerts = all_true = all_days = 0
    for resident, acts in sorted(recordings.items()):
        tz = zones[resident]
        recorded = complete_days(acts, zone(tz))
        ext = extend_days(acts, min_days, seed + zlib.crc32(resident.encode()), tz)
        first = local_day(ext[0].start_ms, zone(tz))
        days = (local_day(ext[-1].start_ms, zone(tz)) - first).days + 1
        after = first + timedelta(days=learning_days)
        learn = Scenario(resident, "imported", days, first, [])
        dry = not any(a.sensor == "heartbeat" for a in acts)
        make = detector or (lambda dry=dry: EngineDetector({"silent_tap_means_dry": dry}))
        base = evaluate([(learn, ext)], make(), tz).per_resident[0]
        false = [a for a in base["alerts"] if a["day"] >= after]
        base_false += len(false)
        base_days += max(0, days - learning_days)
        all_alerts += len(false)
        all_days += max(0, days - learning_days)
        trials = []
        for c in CONDITIONS:
            for onset in trial_onsets(first, days, c, learning_days):
                end = onset + timedelta(days=CONDITIONS[c] + 1)
                scn = Scenario(resident, f"imported+{c}", days, first, [Change(c, onset, end)])
                run = evaluate([(scn, inject(ext, c, onset, tz))], make(), tz)
                alerts = [a for a in run.per_resident[0]["alerts"] if a["day"] >= after]
                hits = sorted(a["day"] for a in alerts
                              if a["condition"] == c and onset <= a["day"] < end)
                delay = (hits[0] - onset).days if hits else None
                e = cond[c]
                e["trials"] += 1
                e["detected"] += int(delay is not None)
                if delay is not None:
                    e["delays"].append(delay)
                for a in alerts:
                    cond[a["condition"]] = cond.get(a["condition"]) or {
                        "trials": 0, "detected": 0, "delays": [], "alerts": 0, "true_alerts": 0}
                    cond[a["condition"]]["alerts"] += 1
                    cond[a["condition"]]["true_alerts"] += int(a["true"])
                all_alerts += len(alerts)
                all_true += sum(a["true"] for a in alerts)
                all_days += max(0, days - learning_days)
                trials.append({"condition": c, "onset": onset, "detected": delay is not None,
                               "delay_days": delay, "alerts": alerts})
        for a in false:
            e = cond.setdefault(a["condition"], {"trials": 0, "detected": 0, "delays": [],
                                                 "alerts": 0, "true_alerts": 0})
            e["alerts"] += 1
        per_resident.append({
            "resident": resident, "tz": tz, "events": len(acts),
            "recorded_days": len(recorded), "days": days, "start": first,
            "learning_days": learning_days, "false_alerts": len(false),
            "false_alerts_per_month": _ratio(len(false) * _DAYS_PER_MONTH,
                                             max(0, days - learning_days)),
            "alerts": false, "trials": trials})
        log.info("%s: %d days, %d false alerts, %d trials", resident, days, len(false),
                 len(trials))
    trials_n = sum(e["trials"] for e in cond.values())
    detected = sum(e["detected"] for e in cond.values())
    conditions = {}
    for name, e in cond.items():
        delay = (float(statistics.median(e["delays"])) if e["delays"]
                 else ("nan" if e["trials"] else None))
        conditions[name] = {
            "crises": e["trials"], "detected": e["detected"],
            "detection_rate": _ratio(e["detected"], e["trials"]),
            "median_delay_days": delay, "median_lead_days": None, "alerts": e["alerts"],
            "true_alerts": e["true_alerts"], "precision": _ratio(e["true_alerts"], e["alerts"])}
    summary: dict[str, Any] = {
        "residents": len(per_resident), "resident_days": base_days, "learning_days":
        learning_days, "crises": trials_n, "detected": detected, "alerts": all_alerts,
        "true_alerts": all_true, "false_alerts": base_false,
        "detection_rate": _ratio(detected, trials_n),
        "false_alerts_per_resident_month": _ratio(base_false * _DAYS_PER_MONTH, base_days),
        "alerts_per_resident_month": _ratio(all_alerts * _DAYS_PER_MONTH, all_days),
        "precision": _ratio(all_true, all_alerts), "conditions": conditions}
    report = HistoryReport(summary, per_resident)
    if json_out is not None:
        report.write_json(json_out)
    return report
