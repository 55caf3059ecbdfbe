"""What the care team's pages show, from the store: who needs attention first, and why.

``board`` orders the residents a user may see: open urgent alerts first, then open
digest findings about health, then equipment notices, then everyone else; within
each, the longest waiting first. Each row says why (the oldest open alert's words),
since when, when the home was last heard from, and who acknowledged what; a family
member sees only the alerts the resident's consent shares with family. A search
finds a resident by id or by name, and a team (the policy's ``team``) narrows the
board to the residents that team looks after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..alerts import AlertRecord, Policy, list_alerts
from ..residents import placements, residents
from ..store import Store
from .users import User

URGENT, HEALTH, EQUIPMENT, CALM = range(4)
RANKS = {URGENT: "urgent", HEALTH: "to look at", EQUIPMENT: "equipment", CALM: "calm"}


@dataclass
class Row:
    resident: str
    rank: int
    open: list[AlertRecord] = field(default_factory=list)
    last_heard_ms: int | None = None
    acknowledged: AlertRecord | None = None  # the latest answered one
    name: str | None = None  # as the policy names the resident
    team: str | None = None

    @property
    def why(self) -> str:
        return self.open[0].text if self.open else "nothing open"

    @property
    def since_ms(self) -> int | None:
        return self.open[0].created_ms if self.open else None

    @property
    def rank_name(self) -> str:
        return RANKS[self.rank]


def _rank(alerts: list[AlertRecord]) -> int:
    if any(a.severity == "urgent" for a in alerts):
        return URGENT
    if any(a.condition != "device" for a in alerts):
        return HEALTH
    return EQUIPMENT if alerts else CALM


def last_heard(store: Store, resident: str, nodes: list[int]) -> int | None:
    """The latest moment anything of the resident's came in, by index."""
    times = [store.conn.execute("SELECT MAX(end_ms) FROM activities WHERE resident = ?",
                                (resident,)).fetchone()[0]]
    for node in nodes:
        times.append(store.conn.execute(
            "SELECT MAX(start_ms + COALESCE(duration_ds, 0) * 100) FROM events "
            "WHERE node_id = ?", (node,)).fetchone()[0])
        t = store.conn.execute("SELECT MAX(time_s) FROM statuses WHERE node_id = ?",
                               (node,)).fetchone()[0]
        times.append(None if t is None else int(t) * 1000)
    known = [int(t) for t in times if t is not None]
    return max(known) if known else None


def teams(policy: Policy, store: Store, user: User) -> list[str]:
    """The teams of the residents ``user`` may see, for the board's filter."""
    return sorted({t for r in residents(store) if user.may_see(r)
                   and (t := policy.for_resident(r).team)})


def board(store: Store, user: User, query: str = "", team: str = "",
          policy: Policy | None = None) -> list[Row]:
    """The rows ``user`` may see, in the order of attention (see the module)."""
    policy = policy or Policy()
    q = query.lower()
    who = []
    for r in residents(store):
        if not user.may_see(r):
            continue
        rp = policy.for_resident(r)
        if team and rp.team != team:
            continue
        if q and q not in r.lower() and q not in (rp.name or "").lower():
            continue
        who.append((r, rp.name, rp.team))
    open_by: dict[str, list[AlertRecord]] = {}
    for a in list_alerts(store, state="open"):
        open_by.setdefault(a.resident, []).append(a)
    nodes: dict[str, list[int]] = {}
    for node, (resident, _room) in placements(store).items():
        nodes.setdefault(resident, []).append(node)
    rows = []
    for r, name, in_team in who:
        alerts = sorted(open_by.get(r, []), key=lambda a: (a.severity != "urgent",
                                                           a.created_ms))
        if user.role == "family":  # only what the resident's consent shares with family
            rp = policy.for_resident(r)
            alerts = [a for a in alerts if rp.consents("family", a.condition, a.severity)]
        row = Row(r, _rank(alerts), alerts, last_heard(store, r, nodes.get(r, [])),
                  name=name, team=in_team)
        answered = list_alerts(store, r, "acknowledged")
        if user.role == "family":
            rp = policy.for_resident(r)
            answered = [a for a in answered if rp.consents("family", a.condition, a.severity)]
        row.acknowledged = max(answered, key=lambda a: a.acknowledged_ms or 0, default=None)
        rows.append(row)
    return sorted(rows, key=lambda x: (x.rank, x.since_ms if x.since_ms is not None else 0,
                                       x.resident))
