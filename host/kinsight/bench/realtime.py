"""``kinsight bench realtime``: one tick of the real-time watcher over many residents.

A store holds ``residents`` residents with the last 18 days of a simulated life each
(five templates, cloned). The watcher that ``kinsight listen --alerts`` runs then
ticks twice on one clock: the first tick of a day learns each resident's routine
(``first_tick_s``), the next finds it learnt (``tick_s``, the steady state between
frames). Both run every rule for every resident, as a tick does.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

from ..alerts import AlertRouter, Policy
from ..residents import residents as all_residents
from ..residents import store_activities
from ..service import RealtimeWatcher
from ..simulation import simulate
from ..store import Store

TZ = "Europe/London"
_TEMPLATES = (("healthy", 21), ("mrs_s", 22), ("daphne", 23), ("john", 24), ("healthy", 25))
_DAYS = 18
_START = date(2024, 3, 4)


def build(db: Path, residents: int) -> int:
    """The store; returns the tick's time (10:00 on the last simulated day)."""
    with Store(db) as store:
        names = []
        for persona, seed in _TEMPLATES:
            scenario, acts = simulate(persona, seed, _DAYS, _START, outages=False)
            store_activities(store, acts, TZ)
            names.append(scenario.resident)
        with store.transaction():
            for i in range(residents - len(names)):
                src, name = names[i % len(names)], f"{names[i % len(names)]}-clone-{i}"
                store.conn.execute("INSERT INTO residents SELECT ?, tz FROM residents WHERE "
                                   "resident = ?", (name, src))
                store.conn.execute("INSERT INTO activities SELECT ?, sensor, start_ms, end_ms, "
                                   "value, room, source FROM activities WHERE resident = ?",
                                   (name, src))
    last = _START + timedelta(days=_DAYS - 1)
    return int(datetime.combine(last, clock(10), ZoneInfo(TZ)).timestamp() * 1000)


def bench_realtime(residents: int = 10_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kinsight-bench-") as tmp:
        db = Path(tmp) / "homes.db"
        t0 = time.perf_counter()
        now_ms = build(db, residents)
        built_s = time.perf_counter() - t0
        with Store(db) as store:
            names = all_residents(store)
            now = [now_ms]
            router = AlertRouter(Policy(), store, clock=lambda: now[0])
            watcher = RealtimeWatcher(store, router, clock=lambda: now[0], tick_s=60,
                                      deliver=lambda _ms: [], residents=lambda: names)
            t0 = time.perf_counter()
            watcher.after_batch(frozenset())
            first = time.perf_counter() - t0
            now[0] += 60_000
            t0 = time.perf_counter()
            watcher.after_batch(frozenset())
            tick = time.perf_counter() - t0
            raised = watcher.alerts_raised
    return {"residents": len(names), "first_tick_s": first, "tick_s": tick,
            "per_resident_ms": tick * 1000 / len(names), "built_s": built_s, "raised": raised}


def run_realtime(residents: int = 10_000) -> int:
    r = bench_realtime(residents)
    print(f"real-time watcher over {r['residents']:.0f} residents (store built in "  # noqa: T201
          f"{r['built_s']:.0f} s): first tick of the day {r['first_tick_s']:.1f} s "
          f"(routines learnt), next tick {r['tick_s']:.1f} s; {r['raised']:.0f} alerts")
    print(f"residents={r['residents']:.0f} tick_s={r['tick_s']:.2f} "  # noqa: T201
          f"per_resident_ms={r['per_resident_ms']:.2f} first_tick_s={r['first_tick_s']:.2f}")
    return 0
