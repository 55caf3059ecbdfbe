"""Whose events are whose: nodes placed with residents, and each resident's Activities.

A node is placed with one resident (``place``; ``kinsight place``), in a room. Its
stored events then become that resident's Activities (``activities_from_events``):

====================  ======  ================================================
event type            role    Activity sensor (value)
====================  ======  ================================================
sit                   any     ``seat`` (rise time in s, None if not measured)
in_bed                any     ``bed``
out_of_bed            any     ``bed_exit``
draw                  any     ``tap`` (ml drawn)
visit                 toilet  ``toilet``
visit                 stairs  ``stairs``
prolonged_presence    toilet  ``toilet_long`` (``stairs_long`` on stairs)
flush                 any     ``flush``
====================  ======  ================================================

Other event types (sit_too_long, leak, sensor_fault, hr_high, hr_low) are not
activities of the resident and are left out. A wearable's interval summaries
(role heart_rate) with a resting rate become ``heart_rate`` Activities over their
interval, valued at that rate in bpm (what the daily ``hr_mean`` averages); an
interval with no calm minute says nothing of the resting rate and is left out.
An event runs from its ``start_ms`` for its ``duration_ds``. A node's status frames
say its sensors are alive: each becomes a ``heartbeat`` Activity per sensor role the
node has reported events for (``room`` names the sensor: seat, bed, tap, toilet or
stairs), which is how the daily features tell a sensor that saw nothing from one
that said nothing.
``all_activities`` merges these with imported histories, and ``recent_activities``
does the same for one resident's last days only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from sys import intern

from ..store import Migration, Store
from .activity import Activity
from .history_import import DEFAULT_TZ, check_name, ensure_tables, load_activities, zone

_SCHEMA = """
CREATE TABLE IF NOT EXISTS placements (
    node_id INTEGER PRIMARY KEY,
    resident TEXT NOT NULL,
    room TEXT
);
CREATE INDEX IF NOT EXISTS placements_resident ON placements (resident);
-- The hot paths read a resident's last days: by when things end, never the whole past.
CREATE INDEX IF NOT EXISTS activities_resident_end ON activities (resident, end_ms);
CREATE INDEX IF NOT EXISTS events_node_end
    ON events (node_id, (start_ms + COALESCE(duration_ds, 0) * 100));
CREATE INDEX IF NOT EXISTS events_node_role ON events (node_id, role);
CREATE INDEX IF NOT EXISTS events_node ON events (node_id);
CREATE INDEX IF NOT EXISTS statuses_node_time ON statuses (node_id, time_s);
"""
_SUMMARY_INDEX = """
CREATE INDEX IF NOT EXISTS summaries_node_role_end ON summaries (node_id, role, end_s);
"""
MIGRATIONS = (Migration(1, 'nodes placed with residents', _SCHEMA),
              Migration(2, "a wearable's heart rate summaries, by node", _SUMMARY_INDEX))



def ensure_placements(store: Store) -> None:
    ensure_tables(store)
    store.migrate('placements', MIGRATIONS)


def place(store: Store, node_id: int, resident: str, room: str | None = None,
          tz: str | None = None) -> None:
    """Place ``node_id`` with ``resident`` (replacing an earlier placement); a resident
    new to the store is added with time zone ``tz`` (default Europe/London), and an
    existing one gets ``tz`` when it is given. The resident's and the room's names are
    1 to 100 printable characters (``check_name``), as in an imported history; a node id
    is a u32, as on the wire."""
    if isinstance(node_id, bool) or not isinstance(node_id, int) or not 0 <= node_id < 2**32:
        raise ValueError(f"node id {node_id!r} is outside 0..{2**32 - 1}")
    check_name(resident, "resident")
    if room is not None:
        check_name(room, "room")
    if tz is not None:
        zone(tz)  # refuses unknown zones
    ensure_placements(store)
    with store.transaction():
        store.conn.execute(
            "INSERT INTO placements VALUES (?, ?, ?) ON CONFLICT (node_id) DO UPDATE "
            "SET resident = excluded.resident, room = excluded.room", (node_id, resident, room))
        store.conn.execute("INSERT OR IGNORE INTO residents VALUES (?, ?)",
                           (resident, tz or DEFAULT_TZ))
        if tz is not None:
            store.conn.execute("UPDATE residents SET tz = ? WHERE resident = ?", (tz, resident))


def placements(store: Store) -> dict[int, tuple[str, str | None]]:
    """node id -> (resident, room)."""
    ensure_placements(store)
    return {n: (r, room) for n, r, room in store.conn.execute(
        "SELECT node_id, resident, room FROM placements")}


def resident_tz(store: Store, resident: str) -> str:
    """The resident's IANA time zone (Europe/London when not known)."""
    ensure_placements(store)
    row = store.conn.execute("SELECT tz FROM residents WHERE resident = ?",
                             (resident,)).fetchone()
    return str(row[0]) if row else DEFAULT_TZ


def _sensor(etype: str, role: str) -> str | None:
    if etype == "sit":
        return "seat"
    if etype == "in_bed":
        return "bed"
    if etype == "out_of_bed":
        return "bed_exit"
    if etype == "draw":
        return "tap"
    if etype == "flush":
        return "flush"
    if etype == "visit" and role in ("toilet", "stairs"):
        return role
    if etype == "prolonged_presence" and role in ("toilet", "stairs"):
        return f"{role}_long"
    return None


def activities_from_events(store: Store, resident: str, since_ms: int | None = None
                           ) -> list[Activity]:
    """The stored node events of the nodes placed with ``resident``, as Activities in
    time order (the same event stored twice counts once); with ``since_ms``, only those
    that end at or after it."""
    ensure_placements(store)
    sql = ("SELECT DISTINCT e.node_id, e.start_ms, e.type, e.role, e.duration_ds, e.volume_ml, "
           "e.rise_ds, p.room FROM events e JOIN placements p ON p.node_id = e.node_id "
           "WHERE p.resident = ?")
    params: tuple[object, ...] = (resident,)
    if since_ms is not None:
        sql += " AND (e.start_ms + COALESCE(e.duration_ds, 0) * 100) >= ?"
        params = (resident, since_ms)
    out = [a for row in store.conn.execute(sql, params)
           if (a := _event_activity(resident, *row[1:])) is not None]
    out += _heartbeats(store, resident, since_ms)
    out += _heart_rates(store, resident, since_ms)
    return sorted(out, key=_order)


def _heart_rates(store: Store, resident: str, since_ms: int | None,
                 after: dict[int, int] | None = None) -> list[Activity]:
    """The resting rates of the resident's wearables' summaries as heart_rate Activities;
    with ``after``, only each node's intervals ending after its mark (end_s), which
    moves on. (By end, not by row: the PostgreSQL store keeps no row order for
    summaries. A node's intervals reach the host in the order they end.)"""
    rooms = dict(store.conn.execute("SELECT node_id, room FROM placements WHERE resident = ?",
                                    (resident,)).fetchall())
    out: list[Activity] = []
    for node, room in rooms.items():
        sql = ("SELECT DISTINCT end_s, period_s, hr_rest_bpm FROM summaries "
               "WHERE node_id = ? AND role = 'heart_rate' AND hr_rest_bpm IS NOT NULL")
        params: tuple[object, ...] = (node,)
        if after is not None:
            sql += " AND end_s > ?"
            params = (node, after.get(node, 0))
        elif since_ms is not None:
            sql += " AND end_s * 1000 >= ?"
            params = (node, since_ms)
        seen: set[tuple[int, int]] = set()
        for end_s, period_s, bpm in store.conn.execute(sql, params).fetchall():
            if after is not None:
                after[node] = max(after.get(node, 0), int(end_s))
            if (end_s, period_s) in seen:
                continue  # the same interval stored twice counts once
            seen.add((end_s, period_s))
            out.append(Activity(resident, "heart_rate", int(end_s - period_s) * 1000,
                                int(end_s) * 1000, float(bpm),
                                None if room is None else intern(room)))
    return out


def _event_activity(resident: str, start: int, etype: object, role: object,
                    duration_ds: int | None, volume_ml: int | None, rise_ds: int | None,
                    room: str | None) -> Activity | None:
    sensor = _sensor(str(etype), str(role))
    if sensor is None:
        return None
    end = start + (duration_ds or 0) * 100
    value: float | None = None
    if sensor == "seat" and rise_ds is not None:
        value = rise_ds / 10
    elif sensor == "tap":
        value = float(volume_ml or 0)
    return Activity(resident, sensor, int(start), int(end), value,
                    None if room is None else intern(room))


@dataclass
class NodeMarks:
    """How far one resident's node data has been read: each placed node's last event
    row and last status time (``events_after`` reads on from there)."""

    events: dict[int, int] = field(default_factory=dict)
    status_s: dict[int, int] = field(default_factory=dict)
    summaries: dict[int, int] = field(default_factory=dict)


def node_marks(store: Store, resident: str) -> NodeMarks:
    """Where the resident's node data ends now: one index seek a node."""
    marks = NodeMarks()
    for (node,) in store.conn.execute("SELECT node_id FROM placements WHERE resident = ?",
                                      (resident,)).fetchall():
        node = int(node)
        marks.events[node] = int(store.conn.execute(
            "SELECT COALESCE(MAX(rowid), 0) FROM events WHERE node_id = ?", (node,))
            .fetchone()[0])
        marks.status_s[node] = int(store.conn.execute(
            "SELECT COALESCE(MAX(time_s), 0) FROM statuses WHERE node_id = ?", (node,))
            .fetchone()[0])
        marks.summaries[node] = int(store.conn.execute(
            "SELECT COALESCE(MAX(end_s), 0) FROM summaries WHERE node_id = ? AND "
            "role = 'heart_rate'", (node,)).fetchone()[0])
    return marks


def events_after(store: Store, resident: str, marks: NodeMarks) -> list[Activity]:
    """The activities of the events (and heartbeats of the statuses) stored for the
    resident's nodes since ``marks``, which move on past them: what a batch added,
    without reading again what was read before. A node placed since is not in
    ``marks``: read everything again (``recent_activities``) for it."""
    out: list[Activity] = []
    rooms = dict(store.conn.execute("SELECT node_id, room FROM placements WHERE resident = ?",
                                    (resident,)).fetchall())
    for node, last in list(marks.events.items()):
        rows = store.conn.execute(
            "SELECT rowid, start_ms, type, role, duration_ds, volume_ml, rise_ds FROM events "
            "WHERE node_id = ? AND rowid > ? ORDER BY rowid", (node, last)).fetchall()
        for rowid, start, etype, role, duration_ds, volume_ml, rise_ds in rows:
            a = _event_activity(resident, start, etype, role, duration_ds, volume_ml, rise_ds,
                                rooms.get(node))
            if a is not None:
                out.append(a)
            marks.events[node] = int(rowid)
    beats = _heartbeats(store, resident, None, after_s=marks.status_s)
    for a in beats:
        out.append(a)
    out += _heart_rates(store, resident, None, after=marks.summaries)
    for node in marks.status_s:
        got = [int(t) for (t,) in store.conn.execute(
            "SELECT MAX(time_s) FROM statuses WHERE node_id = ? AND time_s > ?",
            (node, marks.status_s[node])) if t is not None]
        if got:
            marks.status_s[node] = got[0]
    return sorted(out, key=_order)


_HEARTBEAT_ROLES = {"seat": "seat", "bed": "bed", "tap": "tap", "toilet": "toilet",
                    "stairs": "stairs"}


def node_sensors(store: Store, resident: str | None = None) -> dict[int, list[str]]:
    """The sensors each placed node (of ``resident``, or of everyone) has: what its
    status says is alive."""
    return _node_roles(store, resident)


def _node_roles(store: Store, resident: str | None) -> dict[int, list[str]]:
    roles: dict[int, list[str]] = {}
    nodes = [int(n) for (n,) in (store.conn.execute(
        "SELECT node_id FROM placements WHERE resident = ?", (resident,)) if resident is not None
        else store.conn.execute("SELECT node_id FROM placements"))]
    for node in nodes:
        for role, sensor in _HEARTBEAT_ROLES.items():
            # One index probe a role: a node's roles, whatever the length of its history.
            if store.conn.execute("SELECT 1 FROM events WHERE node_id = ? AND role = ? "
                                  "LIMIT 1", (node, role)).fetchone():
                roles.setdefault(node, []).append(sensor)
    return roles


def _heartbeats(store: Store, resident: str, since_ms: int | None,
                after_s: dict[int, int] | None = None) -> list[Activity]:
    roles = _node_roles(store, resident)
    if not roles:
        return []
    if after_s is not None:  # each node's statuses after its own mark
        rows: list[tuple[int, int]] = []
        for node, mark in after_s.items():
            rows += [(node, t) for (t,) in store.conn.execute(
                "SELECT DISTINCT time_s FROM statuses WHERE node_id = ? AND time_s > ?",
                (node, mark))]
    else:
        sql = ("SELECT DISTINCT s.node_id, s.time_s FROM statuses s JOIN placements p "
               "ON p.node_id = s.node_id WHERE p.resident = ?")
        params: tuple[object, ...] = (resident,)
        if since_ms is not None:
            sql += " AND s.time_s >= ?"
            params = (resident, -(-since_ms // 1000))  # time_s * 1000 >= since_ms
        rows = list(store.conn.execute(sql, params))
    return [Activity(resident, "heartbeat", int(t) * 1000, int(t) * 1000, None, sensor)
            for node, t in rows if t is not None
            for sensor in roles.get(int(node), [])]


def _order(a: Activity) -> tuple[int, int, str]:
    return (a.start_ms, a.end_ms, a.sensor)


def residents(store: Store) -> list[str]:
    """Every resident the store knows: imported, placed, or in ``residents``."""
    ensure_placements(store)
    names: set[str] = set()
    for sql in ("SELECT resident FROM residents", _DISTINCT_ACTIVITY_RESIDENTS,
                "SELECT DISTINCT resident FROM placements"):
        names.update(r[0] for r in store.conn.execute(sql))
    return sorted(names)


# The residents with imported activities, one index seek each (a loose index scan):
# DISTINCT would walk every activity of every resident's whole history.
_DISTINCT_ACTIVITY_RESIDENTS = """
WITH RECURSIVE seen(resident) AS (
    SELECT MIN(resident) FROM activities
    UNION ALL
    SELECT (SELECT MIN(resident) FROM activities WHERE resident > seen.resident)
    FROM seen WHERE seen.resident IS NOT NULL
)
SELECT resident FROM seen WHERE resident IS NOT NULL
"""


def merge(*sources: Iterable[Activity]) -> list[Activity]:
    lists = [s if isinstance(s, list) else list(s) for s in sources]
    filled = [s for s in lists if s]
    if len(filled) <= 1:
        # One source has no duplicates to drop (each is read with DISTINCT or UNIQUE).
        return sorted(filled[0], key=_order) if filled else []
    seen: set[Activity] = set()
    out = []
    for src in lists:
        for a in src:
            if a not in seen:
                seen.add(a)
                out.append(a)
    return sorted(out, key=_order)


def recent_activities(store: Store, resident: str, since_ms: int,
                      until_ms: int | None = None) -> list[Activity]:
    """The resident's imported activities and node events that end at or after
    ``since_ms`` (and begin by ``until_ms``), in time order: what the real-time rules
    need, without reading a resident's whole history on every frame, nor, in a replay
    of a history, its future."""
    ensure_placements(store)
    # One string object per sensor and room, not one a row: a watcher holds these for
    # every resident, and the strings would be most of their memory.
    imported = [Activity(resident, intern(s), a, b, v, None if room is None else intern(room))
                for s, a, b, v, room in store.conn.execute(
                    "SELECT sensor, start_ms, end_ms, value, room FROM activities "
                    "WHERE resident = ? AND end_ms >= ? AND start_ms <= ? "
                    "ORDER BY start_ms, end_ms, sensor",
                    (resident, since_ms, _NO_END if until_ms is None else until_ms))]
    nodes = activities_from_events(store, resident, since_ms)
    if until_ms is not None:
        nodes = [a for a in nodes if a.start_ms <= until_ms]
    return merge(imported, nodes)


_NO_END = 2**62


def latest_activities(store: Store, resident: str, before_ms: int, limit: int = 20
                      ) -> tuple[list[Activity], int | None]:
    """The resident's last ``limit`` activities ending before ``before_ms``, of each source
    (imported, and each placed node), by index; and the latest end any activity left out
    could have (None: nothing was left out). A home quiet for days is asked when someone
    was last there without reading the days before."""
    bound: int | None = None
    out: list[Activity] = []
    rows = store.conn.execute(
        "SELECT sensor, start_ms, end_ms, value, room FROM activities WHERE resident = ? "
        "AND end_ms < ? AND sensor NOT IN ('heartbeat', 'heart_rate') ORDER BY end_ms DESC "
        "LIMIT ?", (resident, before_ms, limit)).fetchall()
    if len(rows) == limit:
        bound = int(rows[-1][2])
    # ... and the last imported "alive" (one is enough to say the sensors spoke since).
    rows += store.conn.execute(
        "SELECT sensor, start_ms, end_ms, value, room FROM activities WHERE resident = ? "
        "AND end_ms < ? AND sensor = 'heartbeat' ORDER BY end_ms DESC LIMIT 1",
        (resident, before_ms)).fetchall()
    out += [Activity(resident, s, a, b, v, room) for s, a, b, v, room in rows]
    for node, room in store.conn.execute(
            "SELECT node_id, room FROM placements WHERE resident = ?", (resident,)).fetchall():
        events = store.conn.execute(
            "SELECT start_ms, type, role, duration_ds, volume_ml, rise_ds, "
            "(start_ms + COALESCE(duration_ds, 0) * 100) AS end_ms FROM events "
            "WHERE node_id = ? AND (start_ms + COALESCE(duration_ds, 0) * 100) < ? "
            "ORDER BY (start_ms + COALESCE(duration_ds, 0) * 100) DESC LIMIT ?",
            (node, before_ms, limit)).fetchall()
        if len(events) == limit:
            end = int(events[-1][6])
            bound = end if bound is None else max(bound, end)
        out += [a for start, etype, role, dur, vol, rise, _end in events
                if (a := _event_activity(resident, start, etype, role, dur, vol, rise, room))
                is not None]
    # And each node's last status: whether its sensors said they were alive since.
    for node, sensors in _node_roles(store, resident).items():
        (t,) = store.conn.execute("SELECT MAX(time_s) FROM statuses WHERE node_id = ? AND "
                                  "time_s < ?", (node, -(-before_ms // 1000))).fetchone()
        if t is not None:
            out += [Activity(resident, "heartbeat", int(t) * 1000, int(t) * 1000, None, sensor)
                    for sensor in sensors]
    return sorted(out, key=_order), bound


def as_seen_at(activities: Iterable[Activity], now_ms: int) -> list[Activity]:
    """What was known at ``now_ms``: activities begun by then, one still going on
    ending at ``now_ms`` (a state-change sensor says "on" when it starts). A live
    store holds nothing later; a replay of history must not see its future."""
    return [a if a.end_ms <= now_ms else Activity(a.resident, a.sensor, a.start_ms, now_ms,
                                                  a.value, a.room)
            for a in activities if a.start_ms <= now_ms]


def activities_of(store: Store, resident: str) -> list[Activity]:
    """One resident's imported activities and node events together, in time order."""
    return merge(load_activities(store, resident), activities_from_events(store, resident))


def all_activities(store: Store) -> dict[str, list[Activity]]:
    """Per resident, imported activities and node events together, in time order."""
    return {r: activities_of(store, r) for r in residents(store)}
