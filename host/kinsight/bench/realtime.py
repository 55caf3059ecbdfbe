"""``kinsight bench realtime``: the real-time watcher over many residents, and how soon
an alert follows its frame under load.

A store holds ``residents`` residents with the last 18 days of a simulated life each
(five templates, analysed each morning as a deployment would, then cloned with their
stored day summaries). The watcher that ``kinsight listen --alerts`` runs then ticks
on one clock: the first tick checks every resident (``full_tick_s``: their routines
put together from the stored summaries, their windows read; what a tick costs after
another process wrote to the store), then an hour of ticks a minute apart checks only
those whose deadline has come (``tick_s``, the mean tick; ``checked_per_tick``;
``check_ms``, one due resident's check). ``per_resident_ms`` is a tick's cost over the
residents it looks after.

Then the latency: ``nodes`` residents get a node each, and a sender sends them
frames at ``frames_per_s`` through a real UDP listener on loopback, with the watcher
as its after-batch hook, for ``seconds``. One frame in 20 tells of a toilet visit
far too long; ``p99_alert_ms`` is the 99th percentile of the time from sending such a
frame to its urgent alert being recorded.
"""

from __future__ import annotations

import random
import resource
import socket
import statistics
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

from ..alerts import AlertRecord, AlertRouter, Policy
from ..ingest import Ingestor, call_after_batch
from ..ingest.udp import UdpListener
from ..residents import place, store_activities
from ..residents import residents as all_residents
from ..service import RealtimeWatcher, analyse
from ..service.scheduler import Scheduler
from ..simulation import simulate
from ..store import Store
from ..wire import Header, encode_frame

TZ = "Europe/London"
_TEMPLATES = (("healthy", 21), ("mrs_s", 22), ("daphne", 23), ("john", 24), ("healthy", 25))
_DAYS = 18
_START = date(2024, 3, 4)
_KEY = bytes(range(32))
_MIN_DS = 600
_URGENT_EVERY = 20
_TICKS = 60


def _ms(day: date, hour: int) -> int:
    return int(datetime.combine(day, clock(hour), ZoneInfo(TZ)).timestamp() * 1000)


def build(db: Path, residents: int, start: date = _START) -> int:
    """The store; returns the tick's time (10:00 on the last simulated day)."""
    last = start + timedelta(days=_DAYS - 1)
    with Store(db) as store:
        names = []
        for persona, seed in _TEMPLATES:
            scenario, acts = simulate(persona, seed, _DAYS, start, outages=False)
            store_activities(store, acts, TZ)
            names.append(scenario.resident)
        # A live store holds nothing after now (the tick's time).
        store.conn.execute("DELETE FROM activities WHERE start_ms > ?", (_ms(last, 10),))
        store.conn.execute("UPDATE activities SET end_ms = ? WHERE end_ms > ?",
                           (_ms(last, 10), _ms(last, 10)))
        # This morning's analysis, as a deployment's: it keeps the day summaries.
        analyse(store, AlertRouter(Policy(), store), _ms(last, 7), deliver=False)
        with store.transaction():
            for i in range(residents - len(names)):
                src, name = names[i % len(names)], f"{names[i % len(names)]}-clone-{i}"
                for sql in (
                        "INSERT INTO residents SELECT ?, tz FROM residents WHERE resident = ?",
                        "INSERT INTO activities SELECT ?, sensor, start_ms, end_ms, value, room, "
                        "source FROM activities WHERE resident = ?",
                        "INSERT INTO routine_days SELECT ?, day, version, summary FROM "
                        "routine_days WHERE resident = ?"):
                    store.conn.execute(sql, (name, src))
    return _ms(last, 10)


def bench_ticks(residents: int = 10_000) -> dict[str, float]:
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
            full = time.perf_counter() - t0
            checks = watcher.checks
            # An hour of ticks a minute apart: each resident comes due at their deadlines
            # and at the safety net's recheck.
            t0 = time.perf_counter()
            for _ in range(_TICKS):
                now[0] += 60_000
                watcher.after_batch(frozenset())
            ticks = time.perf_counter() - t0
            checked = watcher.checks - checks
            raised = watcher.alerts_raised
            held = watcher.held_activities()
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tick = ticks / _TICKS
    return {"residents": len(names), "full_tick_s": full, "tick_s": tick,
            "checked_per_tick": checked / _TICKS, "per_resident_ms": tick * 1000 / len(names),
            "check_ms": ticks * 1000 / checked if checked else 0.0,
            "built_s": built_s, "raised": raised, "held_activities": held, "rss_mb": rss_mb}


def bench_idle(residents: int = 1000) -> dict[str, float]:
    """What one minute of ``kinsight serve``'s scheduler costs when nothing arrives:
    its loop wakes every 0.2 s (300 steps a minute, one of them a tick), on a clock
    that moves on with it, after a first tick has checked everyone."""
    with tempfile.TemporaryDirectory(prefix="kinsight-bench-") as tmp:
        db = Path(tmp) / "homes.db"
        now_ms = build(db, residents)
        with Store(db) as store:
            now = [now_ms]
            router = AlertRouter(Policy(), store, clock=lambda: now[0])
            scheduler = Scheduler(store, router, lambda: now[0])
            scheduler.step()  # the first tick: everyone, the mornings queued
            # Half an hour: the mean is an idle minute, the 15-minute rechecks included.
            minutes = 30
            checks = scheduler.watcher.checks
            t0 = time.perf_counter()
            for _ in range(minutes * 300):
                now[0] += 200
                scheduler.step()
            spent = time.perf_counter() - t0
    return {"residents": residents, "idle_minute_ms": spent * 1000 / minutes,
            "checks_per_minute": (scheduler.watcher.checks - checks) / minutes}


def _frame(node: int, seq: int, rng: random.Random, urgent: bool) -> bytes:
    header = Header(node_id=node, boot=1, seq=seq, time_s=int(time.time()))
    if urgent:
        event = {"type": "prolonged_presence", "role": "toilet", "ago_ds": 50 * _MIN_DS,
                 "duration_ds": 50 * _MIN_DS}
    else:
        event = {"type": "visit", "role": "toilet", "ago_ds": rng.randrange(600, 3000),
                 "duration_ds": rng.randrange(1200, 3600)}
    return encode_frame(_KEY, "events", header, {"events": [event]})


def bench_latency(nodes: int = 1000, frames_per_s: float = 1000.0, seconds: float = 20.0
                  ) -> dict[str, float]:
    """See the module's docstring."""
    today = datetime.now(ZoneInfo(TZ)).date()
    with tempfile.TemporaryDirectory(prefix="kinsight-bench-") as tmp:
        db = Path(tmp) / "homes.db"
        # Their history ends yesterday: nothing else at home corroborates a stay today.
        build(db, nodes, today - timedelta(days=_DAYS))
        with Store(db) as store:
            names = all_residents(store)
            for node, name in enumerate(names, start=1):
                place(store, node, name, "bathroom")
                store.set_node_key(node, _KEY, now_ms=0)
            sent: dict[str, float] = {}
            alerted: dict[str, float] = {}

            def on_alert(rec: AlertRecord) -> None:
                if rec.condition == "prolonged_toilet":
                    alerted.setdefault(rec.resident, time.time())

            router = AlertRouter(Policy(), store)
            watcher = RealtimeWatcher(store, router, tick_s=60, on_alert=on_alert,
                                      deliver=lambda _ms: [])
            ingestor = Ingestor(store)
            listener = UdpListener(ingestor, "127.0.0.1", 0,
                                   after_batch=lambda n: call_after_batch(watcher, n))
            watcher.after_batch(frozenset())  # the first tick, before the load
            stop = threading.Event()
            serving = threading.Thread(target=listener.serve, kwargs={"stop": stop})
            serving.start()
            rng = random.Random(7)
            seqs = dict.fromkeys(range(1, len(names) + 1), 0)
            urgent_nodes = list(range(1, len(names) + 1))
            rng.shuffle(urgent_nodes)
            total = int(frames_per_s * seconds)
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t0 = time.perf_counter()
            for i in range(total):
                urgent = i % _URGENT_EVERY == 0 and bool(urgent_nodes)
                node = urgent_nodes.pop() if urgent else rng.randrange(1, len(names) + 1)
                seqs[node] += 1
                raw = _frame(node, seqs[node], rng, urgent)
                if urgent:
                    sent[names[node - 1]] = time.time()
                out.sendto(raw, listener.address)
                ahead = t0 + (i + 1) / frames_per_s - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            sending_s = time.perf_counter() - t0
            deadline = time.monotonic() + 30
            while len(alerted) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            serving.join()
            listener.close()
            out.close()
            stored = ingestor.stats.accepted
    latencies = sorted((alerted[r] - s) * 1000 for r, s in sent.items() if r in alerted)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else -1.0
    return {"frames": total, "frames_per_s": total / sending_s, "stored": stored,
            "urgent": len(sent), "alerted": len(latencies),
            "p50_alert_ms": statistics.median(latencies) if latencies else -1.0,
            "p99_alert_ms": p99}


def run_realtime(residents: int = 10_000) -> int:
    r = bench_ticks(residents)
    idle = bench_idle()
    lat = bench_latency()
    print(f"real-time watcher over {r['residents']:.0f} residents (store built in "  # noqa: T201
          f"{r['built_s']:.0f} s): a tick checking everyone {r['full_tick_s']:.1f} s; then "
          f"a tick a minute for an hour: {r['tick_s']:.3f} s each, "
          f"{r['checked_per_tick']:.0f} residents due, {r['check_ms']:.2f} ms a check; "
          f"{r['raised']:.0f} alerts; {r['held_activities']:.0f} activities held in memory, "
          f"peak {r['rss_mb']:.0f} MB")
    print(f"kinsight serve's scheduler with {idle['residents']:.0f} residents, nothing "  # noqa: T201
          f"arriving: {idle['idle_minute_ms']:.1f} ms a minute "
          f"({idle['checks_per_minute']:.0f} deadline checks)")
    print(f"{lat['frames']:.0f} frames at {lat['frames_per_s']:.0f}/s through UDP, "  # noqa: T201
          f"{lat['stored']:.0f} stored; {lat['alerted']:.0f} of {lat['urgent']:.0f} urgent "
          f"alerts, {lat['p50_alert_ms']:.0f} ms after their frame (median)")
    print(f"residents={r['residents']:.0f} tick_s={r['tick_s']:.3f} "  # noqa: T201
          f"per_resident_ms={r['per_resident_ms']:.3f} full_tick_s={r['full_tick_s']:.2f} "
          f"check_ms={r['check_ms']:.3f} rss_mb={r['rss_mb']:.0f} "
          f"idle_minute_ms={idle['idle_minute_ms']:.1f} "
          f"frames_per_s={lat['frames_per_s']:.0f} "
          f"p99_alert_ms={lat['p99_alert_ms']:.0f}")
    return 0
