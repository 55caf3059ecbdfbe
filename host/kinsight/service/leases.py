"""Which worker looks after which resident, when several ``kinsight serve`` share a store.

Ingest is shared by the broker (any worker stores any node's frames); a resident's
analysis and real-time checks belong to one worker at a time, by a lease in the
store (``leases``), renewed while the worker lives. ``Leases.refresh`` (every few
seconds, in one write transaction) says the worker is alive (``workers``), renews
its leases, hands back what is over its fair share (the residents divided by the
workers alive) so that a worker that joins gets some, and takes residents nobody
holds or whose lease has run out: a worker that died (SIGKILL, a lost machine) has
its residents taken over within ``ttl_s``. The new owner checks them afresh and
catches up their mornings (the store remembers the last day analysed), so none is
forgotten; a lease is held by one worker at a time, so none is looked after twice.
Works on both backends (the write transaction serialises the workers).

>>> from kinsight.store import Store
>>> store = Store(":memory:")
>>> a, b = Leases(store, "a", ttl_s=30), Leases(store, "b", ttl_s=30)
>>> sorted(a.refresh(["r1", "r2", "r3", "r4"], now_ms=0))
['r1', 'r2', 'r3', 'r4']
>>> sorted(b.refresh(["r1", "r2", "r3", "r4"], now_ms=1000)), sorted(a.refresh(
...     ["r1", "r2", "r3", "r4"], now_ms=2000))
([], ['r1', 'r2'])
>>> sorted(b.refresh(["r1", "r2", "r3", "r4"], now_ms=3000))
['r3', 'r4']
>>> sorted(b.refresh(["r1", "r2", "r3", "r4"], now_ms=40_000))  # a is gone
['r1', 'r2', 'r3', 'r4']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection

from ..store import Migration, Store

log = logging.getLogger(__name__)

TTL_S = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS workers (owner TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    resident TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_owner ON leases (owner);
"""
MIGRATIONS = (Migration(1, 'workers and their leases on residents', _SCHEMA),)



class Leases:
    """``owner``'s leases in ``store``; see the module's docstring."""

    def __init__(self, store: Store, owner: str, *, ttl_s: float = TTL_S):
        self.store = store
        self.owner = owner
        self.ttl_ms = int(ttl_s * 1000)
        self.mine: frozenset[str] = frozenset()
        self.taken = 0  # leases taken over from a worker whose lease ran out
        store.migrate('leases', MIGRATIONS)

    def refresh(self, residents: Collection[str], now_ms: int) -> frozenset[str]:
        """Renew, hand back and take leases; the residents this worker owns now."""
        c = self.store.conn
        everyone = sorted(set(residents))
        expires = now_ms + self.ttl_ms
        with self.store.transaction():
            c.execute("INSERT INTO workers VALUES (?, ?) ON CONFLICT (owner) DO UPDATE SET "
                      "seen_ms = excluded.seen_ms", (self.owner, now_ms))
            live = int(c.execute("SELECT COUNT(*) FROM workers WHERE seen_ms > ?",
                                 (now_ms - self.ttl_ms,)).fetchone()[0])
            share = math.ceil(len(everyone) / max(1, live))
            c.execute("UPDATE leases SET expires_ms = ? WHERE owner = ?", (expires, self.owner))
            held = {r: (o, e) for r, o, e in c.execute(
                "SELECT resident, owner, expires_ms FROM leases")}
            mine = sorted(r for r, (o, _e) in held.items() if o == self.owner and r in
                          everyone)
            if len(mine) > share:  # a worker joined: give it some
                for r in mine[share:]:
                    c.execute("DELETE FROM leases WHERE resident = ? AND owner = ?",
                              (r, self.owner))
                mine = mine[:share]
            have = set(mine)
            for r in everyone:
                if len(mine) >= share:
                    break
                if r in have:
                    continue
                owner_expires = held.get(r)
                if owner_expires is not None and owner_expires[0] != self.owner and \
                        owner_expires[1] > now_ms:
                    continue  # another worker's, still alive
                if owner_expires is not None and owner_expires[0] != self.owner:
                    self.taken += 1
                    log.info("resident %s taken over from %s (its lease ran out)", r,
                             owner_expires[0])
                c.execute("INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (resident) DO "
                          "UPDATE SET owner = excluded.owner, expires_ms = "
                          "excluded.expires_ms", (r, self.owner, expires))
                mine.append(r)
        self.mine = frozenset(mine)
        return self.mine

    def release(self) -> None:
        """Hand back every lease and leave (a clean stop: the others take over at once)."""
        with self.store.transaction():
            self.store.conn.execute("DELETE FROM leases WHERE owner = ?", (self.owner,))
            self.store.conn.execute("DELETE FROM workers WHERE owner = ?", (self.owner,))
        self.mine = frozenset()
