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
file is checked, and the files are read and written a chunk of lines at a time
inside one transaction: a file with a bad line leaves the store as it was (the
transaction is rolled back), and the error lists each bad line with its number.
Memory does not grow with a file's length. Events are kept in UTC milliseconds in
the ``activities`` table; the same event imported twice is stored once.

The evaluation on real homes (``kinsight.evaluation``) reads these histories back
with ``load_activities``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import KinsightError
from ..store import Migration, Store
from .activity import Activity

log = logging.getLogger(__name__)

DEFAULT_TZ = "Europe/London"
MAX_LINE_BYTES = 65536
MAX_DURATION_MS = 7 * 86_400_000
MAX_REPORTED = 20
MAX_KEPT_PROBLEMS = 1000  # a file of a million bad lines must not take a million messages
CHUNK_ROWS = 5000  # rows parsed before they are written together
_BLOCK_BYTES = 1 << 20  # read at a time
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
MIGRATIONS = (Migration(1, 'residents and their activities', _SCHEMA),)



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
class _Problems:
    """One file's bad lines: the first MAX_KEPT_PROBLEMS kept, the rest counted."""

    path: str
    kept: list[tuple[str, int, str]] = field(default_factory=list)
    more: int = 0  # bad lines past MAX_KEPT_PROBLEMS, counted only

    def __bool__(self) -> bool:
        return bool(self.kept) or self.more > 0

    def add(self, line: int, message: str) -> None:
        if len(self.kept) < MAX_KEPT_PROBLEMS:
            self.kept.append((self.path, line, message))
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
    if isinstance(text, str) and len(text) >= 16 and text[10] == "T":
        try:  # the usual form, read as the checks below would read it
            return datetime.fromisoformat(text)
        except ValueError:
            pass
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


_NAIVE_EPOCH = datetime(1970, 1, 1)
_MAX_DAYS_KEPT = 4096
_UNSEEN = timedelta(days=2)  # no zone is two days off UTC


class _WallClock:
    """Wall-clock times in one zone as UTC ms, exactly as ``_wall_ms``, but quicker: a day
    the zone's offset does not change in (nearly all of them) is worked out once."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._day_offsets: dict[int, timedelta | None] = {}

    def ms(self, naive: datetime) -> int:
        """The earlier reading of an ambiguous time (fold 0); ValueError in a gap."""
        day = naive.toordinal()
        offset = self._day_offsets.get(day, _UNSEEN)
        if offset is _UNSEEN:
            offset = self._uniform_offset(naive.date())
            if len(self._day_offsets) >= _MAX_DAYS_KEPT:
                self._day_offsets.clear()
            self._day_offsets[day] = offset
        if offset is None:
            return _wall_ms(naive, self.tz, 0)
        return (naive - offset - _NAIVE_EPOCH) // _MS

    def _uniform_offset(self, day: date) -> timedelta | None:
        """The zone's UTC offset all day, or None if it changes that day (a gap or fold
        at either end, or a transition inside, shows as differing offsets), or the day is
        at the calendar's ends (where the exact path says what overflows)."""
        if day.year in (1, 9999):
            return None
        first = datetime.combine(day, time())
        last = datetime.combine(day, time(23, 59, 59, 999999))
        offsets = {t.replace(tzinfo=self.tz, fold=fold).utcoffset()
                   for t in (first, last) for fold in (0, 1)}
        return offsets.pop() if len(offsets) == 1 else None


def _interval(start: datetime, end: datetime, clock: _WallClock) -> tuple[int, int]:
    start_ms = to_ms(start) if start.tzinfo is not None else clock.ms(start)
    if end.tzinfo is not None:
        return start_ms, to_ms(end)
    end_ms = clock.ms(end)
    if end_ms < start_ms:  # an ambiguous end may be the second of the two
        end_ms = max(end_ms, _wall_ms(end, clock.tz, 1))
    return start_ms, end_ms


# --- parsing ---------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate field {key!r}")
            seen.add(key)
    return out


def _nan(constant: str) -> float:
    return float("nan")


def check_name(value: object, what: str) -> str:
    """A resident's or a room's name: 1 to MAX_NAME_CHARS characters, not all blank, none
    a control character, line separator or undecodable byte. ValueError otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, not {_brief(value)}")
    # isprintable() is false for every character of _NOT_TEXT (and more): a quick pass
    if len(value) > MAX_NAME_CHARS or (not value.isprintable() and any(
            unicodedata.category(c) in _NOT_TEXT for c in value)):
        raise ValueError(f"{what} must be at most {MAX_NAME_CHARS} printable characters")
    return value


def _brief(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_int=_int,
                            parse_constant=_nan)
_FIELD_SET = frozenset(FIELDS)
_REQUIRED_SET = frozenset(REQUIRED)
_Row = tuple[str, str, int, int, float | None, str | None]  # an Activity's fields, in order


class _EventParser:
    """Reads event lines for one time zone (remembering its days' offsets)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.clock = _WallClock(tz)

    def row(self, text: str) -> _Row:
        """One JSON Lines event as an Activity's fields; ValueError saying what is wrong."""
        if text.count("[") + text.count("{") > MAX_NESTING and _nesting(text) > MAX_NESTING:
            raise ValueError(f"nested more than {MAX_NESTING} deep (an event is one flat "
                             "object)")
        try:
            if text.startswith("\ufeff"):  # as json.loads says it
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)",
                                           text, 0)
            obj = _DECODER.decode(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        if not _FIELD_SET.issuperset(obj):
            unknown = sorted(set(obj) - _FIELD_SET)
            raise ValueError(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
        if not _REQUIRED_SET.issubset(obj):
            missing = [k for k in REQUIRED if k not in obj]
            raise ValueError(f"missing {missing[0]!r}")
        resident = check_name(obj["resident"], "'resident'")
        sensor = obj["sensor"]
        if not isinstance(sensor, str) or not _SENSOR.match(sensor):
            raise ValueError(f"'sensor' must be a lower-case name like \"seat\", not "
                             f"{sensor!r}")
        value = obj.get("value")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"'value' must be a number, not {value!r}")
            if not math.isfinite(value):
                raise ValueError("'value' must be a finite number")
            value = float(value)
        room = obj.get("room")
        if room is not None:
            room = check_name(room, "'room'")
        start_ms, end_ms = _interval(_parse_time("start", obj["start"]),
                                     _parse_time("end", obj["end"]), self.clock)
        if end_ms < start_ms:
            raise ValueError(f"'end' {obj['end']} is before 'start' {obj['start']}")
        if end_ms - start_ms > MAX_DURATION_MS:
            raise ValueError(f"lasts {(end_ms - start_ms) / _DAY_MS:.1f} days, more than 7")
        return resident, sensor, start_ms, end_ms, value, room


def parse_line(text: str, tz: ZoneInfo) -> Activity:
    """One JSON Lines event as an Activity; ValueError saying what is wrong."""
    return Activity(*_EventParser(tz).row(text))


def _lines(f: BinaryIO) -> Iterator[bytes]:
    """A file's lines, split where ``bytes.splitlines`` splits, read a block at a time.
    A line longer than MAX_LINE_BYTES comes cut short (still too long to pass) so that
    a file without line breaks is never held whole."""
    tail = b""
    while block := f.read(_BLOCK_BYTES):
        lines = (tail + block).splitlines()
        if block.endswith(b"\n"):
            tail = b""
        else:  # the last line may go on in the next block (a \r may have its \n there)
            tail = lines.pop()
            cr = block.endswith(b"\r")
            if len(tail) > MAX_LINE_BYTES + 1:
                tail = tail[:MAX_LINE_BYTES + 1]
            if cr:
                tail += b"\r"
        yield from lines
    if tail:
        yield from tail.splitlines()


# --- the store -------------------------------------------------------------------------------


def ensure_tables(store: Store) -> None:
    """Create the history tables if they are missing (the store's schema is untouched)."""
    store.migrate('residents', MIGRATIONS)


def resident_zones(store: Store) -> dict[str, str]:
    """Each imported resident's time zone."""
    ensure_tables(store)
    return dict(store.conn.execute("SELECT resident, tz FROM residents ORDER BY resident"))


def import_files(store: Store, paths: Iterable[str | Path], tz: str = DEFAULT_TZ
                 ) -> list[ImportResult]:
    """Import JSON Lines files in one transaction: all of them, or (HistoryError) none.

    Each file is read once, a chunk of lines at a time, and written as it is read; a bad
    line anywhere stops the writing (the lines after it are still checked, to be named)
    and rolls the whole transaction back."""
    zi = zone(tz)
    ensure_tables(store)
    known = resident_zones(store)
    problems: list[_Problems] = []
    results = []
    with store.transaction():
        for path in paths:
            result, found = _import_file(store, str(path), zi, tz, known,
                                         write=not any(problems))
            results.append(result)
            problems.append(found)
        if any(problems):
            kept = sorted((p for f in problems for p in f.kept), key=lambda p: (p[0], p[1]))
            raise HistoryError(kept, more=sum(f.more for f in problems))
    for r in results:
        log.info("%s: %d events, %d new", r.path, r.events, r.inserted)
    return results


def _import_file(store: Store, path: str, zi: ZoneInfo, tz: str, known: dict[str, str],
                 write: bool) -> tuple[ImportResult, _Problems]:
    """Check every line of one file, writing its events while no line has been bad."""
    parser = _EventParser(zi)
    problems = _Problems(path)
    source = Path(path).name
    events = inserted = 0
    residents: dict[str, None] = {}  # a home's few, however many lines
    chunk: list[tuple[Any, ...]] = []
    try:
        with Path(path).open("rb") as f:
            for number, raw in enumerate(_lines(f), start=1):
                try:
                    if len(raw) > MAX_LINE_BYTES:
                        raise ValueError(f"longer than {MAX_LINE_BYTES} bytes")
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ValueError("not UTF-8 text") from None
                    if not text.strip():
                        continue
                    row = parser.row(text)
                except ValueError as exc:
                    problems.add(number, str(exc))
                    write = False
                    continue
                events += 1
                if row[0] not in residents:
                    residents[row[0]] = None
                    if known.get(row[0], tz) != tz:
                        # beside the kept bad lines: at most one a resident
                        problems.kept.append((path, number, f"resident {row[0]!r} is stored "
                                              f"with time zone {known[row[0]]}, not {tz}"))
                        write = False
                if write:
                    chunk.append((*row, source))
                    if len(chunk) >= CHUNK_ROWS:
                        inserted += _insert_rows(store, chunk)
                        chunk.clear()
    except OSError as exc:
        problems.add(0, f"cannot read ({exc.strerror or exc})")
        write = False
    if write:
        inserted += _insert_rows(store, chunk)
        _insert_residents(store, residents, tz)
    if not events and not problems:
        problems.add(0, "no events in the file")
    return ImportResult(path, events, inserted, tuple(sorted(residents))), problems


def _insert_rows(store: Store, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert activities' rows (with their source); how many were new."""
    before = store.conn.total_changes
    store.conn.executemany("INSERT OR IGNORE INTO activities VALUES (?, ?, ?, ?, ?, ?, ?)",
                           rows)
    return store.conn.total_changes - before


def _insert_residents(store: Store, residents: Iterable[str], tz: str) -> None:
    store.conn.executemany("INSERT OR IGNORE INTO residents VALUES (?, ?)",
                           [(r, tz) for r in sorted(residents)])


def _insert(store: Store, activities: Iterable[Activity], tz: str, source: str) -> int:
    acts = list(activities)
    inserted = _insert_rows(store, [(a.resident, a.sensor, a.start_ms, a.end_ms, a.value,
                                     a.room, source) for a in acts])
    _insert_residents(store, {a.resident for a in acts}, tz)
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
    """Import one JSON Lines file: every line checked, and all written or none."""
    return import_files(store, [path], tz)[0]


def load_activities(store: Store, resident: str) -> list[Activity]:
    """A resident's imported events, in time order."""
    ensure_tables(store)
    rows = store.conn.execute(
        "SELECT resident, sensor, start_ms, end_ms, value, room FROM activities "
        "WHERE resident = ? ORDER BY start_ms, end_ms, sensor", (resident,))
    return [Activity(r, s, a, b, v, room) for r, s, a, b, v, room in rows]
