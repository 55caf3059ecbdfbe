"""The equipment page's facts: each home's nodes, as their last status says, by index.

For each node placed with a resident the user may see: when it was last heard from
(its last status, or its last event), its firmware (and the update bundle it runs),
queue depth, RSSI and supply, a configuration error if it reported one, the last crash
a status told of, its latest firmware update over the air and how far it has come, the
frames refused from it by reason, and its sensors: alive when its status came within
``ALIVE_S``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import kinsight_wire as wire

from ..residents import placements
from ..residents.from_nodes import node_sensors
from ..store import Store
from ..store import updates as staged
from .users import User

ALIVE_S = 4 * 3600  # nodes send their status every 3 hours
_STATUS = [name for _key, name, _t, _req in wire.STATUS_FIELDS]


@dataclass
class NodeRow:
    node_id: int
    room: str | None
    status: dict[str, object] = field(default_factory=dict)
    status_ms: int | None = None
    last_event_ms: int | None = None
    refused: dict[str, int] = field(default_factory=dict)
    sensors: list[str] = field(default_factory=list)
    alive: bool = False
    crash: dict[str, object] | None = None  # the newest crash a status told of, and when
    update: staged.Update | None = None  # the latest update staged for it

    @property
    def update_percent(self) -> int:
        u = self.update
        return 0 if u is None else min(u.fetched, u.size) * 100 // u.size

    @property
    def last_heard_ms(self) -> int | None:
        known = [t for t in (self.status_ms, self.last_event_ms) if t is not None]
        return max(known) if known else None


def equipment(store: Store, user: User, now_ms: int) -> dict[str, list[NodeRow]]:
    """Resident -> their nodes, for the residents ``user`` may see."""
    out: dict[str, list[NodeRow]] = {}
    roles = node_sensors(store)
    for node, (resident, room) in sorted(placements(store).items()):
        if not user.may_see(resident):
            continue
        row = NodeRow(node, room, sensors=roles.get(node, []))
        status = store.conn.execute(
            f"SELECT time_s, {', '.join(_STATUS)} FROM statuses WHERE node_id = ? "  # noqa: S608
            "ORDER BY time_s DESC LIMIT 1", (node,)).fetchone()
        if status is not None:
            row.status_ms = int(status[0]) * 1000
            row.status = {k: v for k, v in zip(_STATUS, status[1:], strict=True) if v is not None}
            row.alive = now_ms - row.status_ms <= ALIVE_S * 1000
        crash = store.conn.execute(
            "SELECT crash_time_s, crash_cause, crash_what, crashes FROM statuses WHERE "
            "node_id = ? AND crash_what IS NOT NULL ORDER BY time_s DESC LIMIT 1",
            (node,)).fetchone()
        if crash is not None:
            row.crash = {"time_ms": int(crash[0] or 0) * 1000, "reset_cause": crash[1],
                         "what": crash[2], "count": crash[3]}
        ups = staged.updates(store, node)
        row.update = ups[-1] if ups else None
        end = store.conn.execute("SELECT MAX(start_ms + COALESCE(duration_ds, 0) * 100) "
                                 "FROM events WHERE node_id = ?", (node,)).fetchone()[0]
        row.last_event_ms = None if end is None else int(end)
        row.refused = {str(r): int(n) for r, n in store.conn.execute(
            "SELECT reason, count FROM refusals WHERE node_id = ? ORDER BY reason", (node,))}
        out.setdefault(resident, []).append(row)
    return out
