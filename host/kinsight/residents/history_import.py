"""Sensor histories from other systems: JSON Lines into the ``activities`` table.

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

The evaluation on real homes (``kinsight.evaluation``) reads these histories back
with ``load_activities``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import KinsightError
from ..store import Store
from .activity import Activity

log = logging.getLogger(__name__)

DEFAULT_TZ = "Europe/London"
MAX_LINE_BYTES = 65536
MAX_DURATION_MS = 7 * 86_400_000
MAX_REPORTED = 20
MAX_KEPT_PROBLEMS = 1000  # a file of a million bad lines must not take a million messages
# Every line of a file is checked, and kept, before anything is written; beyond this
# a file must be split (about two million events; a home makes a few hundred a day).
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_NAME_CHARS = 100
MAX_NUMBER_DIGITS = 20
MAX_NESTING = 8
FIELDS = ("resident", "sensor", "start", "end", "value", "room")
REQUIRED = ("resident", "sensor", "start", "end")

_NOT_TEXT = frozenset({"Cc", "Cs", "Zl", "Zp"})
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

    def __init__(self, problems: Sequence[tuple[str, int, str]], more: int = 0):
        self.problems = list(problems)
        self.more = more  # bad lines beyond those kept in ``problems``
        super().__init__("\n".join(self.lines()))

    def lines(self, limit: int = MAX_REPORTED) -> list[str]:
        """One line per problem, ``FILE: line N: what``, at most ``limit`` then a count."""
        out = [f"{path}: line {n}: {msg}" if n else f"{path}: {msg}"
               for path, n, msg in self.problems[:limit]]
        rest = len(self.problems[limit:]) + self.more
        if rest:
            out.append(f"... and {rest} more invalid lines")
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
    more: int = 0  # bad lines past MAX_KEPT_PROBLEMS, counted only

    def problem(self, line: int, message: str) -> None:
        if len(self.problems) < MAX_KEPT_PROBLEMS:
            self.problems.append((self.path, line, message))
        else:
            self.more += 1


# --- time ------------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or a HistoryError saying it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HistoryError([("--tz", 0, f"unknown time zone {_brief(name)}")]) from None


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


def check_name(value: object, what: str) -> str:
    """A resident's or a room's name: 1 to MAX_NAME_CHARS characters, not all blank, none
    a control character, line separator or undecodable byte. ValueError otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, not {_brief(value)}")
    if len(value) > MAX_NAME_CHARS or any(unicodedata.category(c) in _NOT_TEXT
                                          for c in value):
        raise ValueError(f"{what} must be at most {MAX_NAME_CHARS} printable characters")
    return value


def _brief(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _name(obj: dict[str, Any], key: str, required: bool) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    return check_name(value, repr(key))


def _int(digits: str) -> int:
    # Python's int is unbounded: a 400-digit value would overflow every float and SQLite
    # column downstream, and 5000 digits take quadratic time to read.
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number of {len(digits.lstrip('-'))} digits (at most "
                         f"{MAX_NUMBER_DIGITS})")
    return int(digits)


def _nesting(text: str) -> int:
    """How deep objects and arrays nest in a JSON text (brackets in strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def parse_line(text: str, tz: ZoneInfo) -> Activity:
    """One JSON Lines event as an Activity; ValueError saying what is wrong."""
    if text.count("[") + text.count("{") > MAX_NESTING and _nesting(text) > MAX_NESTING:
        raise ValueError(f"nested more than {MAX_NESTING} deep (an event is one flat object)")
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_int,
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
        with Path(path).open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                parsed.problem(0, f"{size / 2**20:.0f} MiB is more than "
                               f"{MAX_FILE_BYTES // 2**20} MiB: split it into smaller files")
                return parsed
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        parsed.problem(0, f"cannot read ({exc.strerror or exc})")
        return parsed
    if len(data) > MAX_FILE_BYTES:  # it grew while we read it
        parsed.problem(0, f"more than {MAX_FILE_BYTES // 2**20} MiB: split it")
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
            parsed.problem(number, str(exc))
    if not parsed.rows and not parsed.problems:
        parsed.problem(0, "no events in the file")
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
        raise HistoryError(problems, more=sum(f.more for f in parsed))
    results = []
    with store.transaction():
        for f in parsed:
            inserted = _insert(store, [a for _, a in f.rows], tz, Path(f.path).name)
            residents = tuple(sorted({a.resident for _, a in f.rows}))
            results.append(ImportResult(f.path, len(f.rows), inserted, residents))
            log.info("%s: %d events, %d new", f.path, len(f.rows), inserted)
    return results


def _insert(store: Store, activities: Iterable[Activity], tz: str, source: str) -> int:
    acts = list(activities)
    before = store.conn.total_changes
    store.conn.executemany(
        "INSERT OR IGNORE INTO activities VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(a.resident, a.sensor, a.start_ms, a.end_ms, a.value, a.room, source) for a in acts])
    inserted = store.conn.total_changes - before
    store.conn.executemany("INSERT OR IGNORE INTO residents VALUES (?, ?)",
                           [(r, tz) for r in sorted({a.resident for a in acts})])
    return inserted


def store_activities(store: Store, activities: Iterable[Activity], tz: str = DEFAULT_TZ,
                     source: str = "library") -> int:
    """Store already-checked Activities as a history (residents new to the store get
    ``tz``), in one transaction; how many were new."""
    zone(tz)
    ensure_tables(store)
    with store.transaction():
        return _insert(store, activities, tz, source)


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
