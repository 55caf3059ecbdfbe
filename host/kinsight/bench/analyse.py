"""``kinsight bench analyse``: one new morning of many residents, through ``kinsight analyse``.

A store is built per history length (30 and 365 days): a few simulated residents
(templates, of each persona) are imported and analysed up to yesterday, the way a
deployment would have, and then cloned (their activities, model, settled night,
stored days and day summaries) into ``residents`` residents. The morning of the next day is then
timed as the command runs it, in a process of its own (``kinsight analyse --now``),
whose peak resident memory is read when it ends. ``cost_ratio_365_30`` is the
per-resident cost at 365 days over that at 30: a morning that re-read the history
would grow with it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

from ..residents import store_activities
from ..simulation import simulate
from ..store import Store

log = logging.getLogger(__name__)

TZ = "Europe/London"
_TEMPLATES = (("healthy", 11), ("mrs_s", 12), ("daphne", 13), ("john", 14), ("healthy", 15))
_START = date(2024, 1, 8)


def _morning_ms(day: date) -> int:
    return int(datetime.combine(day, clock(7, 30), ZoneInfo(TZ)).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(TZ)).isoformat()


# The command's own entry point, in a process of its own that says its peak memory.
_CHILD = ("import resource, sys, time\n"
          "from kinsight.cli import main\n"
          "t0 = time.perf_counter()\n"
          "rc = main(sys.argv[1:])\n"
          "s = time.perf_counter() - t0\n"
          "kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
          "print(f'bench: {rc} {s} {kb}', file=sys.stderr)\n")


def _analyse(db: Path, now_ms: int) -> tuple[float, float]:
    """``kinsight analyse`` at ``now_ms`` in a process of its own: (seconds the command
    took, the process's peak resident MB)."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, "analyse", "--db", str(db), "--now",
                           _iso(now_ms)], capture_output=True, text=True, check=False)
    said = [line.split() for line in proc.stderr.splitlines() if line.startswith("bench: ")]
    if proc.returncode != 0 or not said or said[-1][1] != "0":
        raise RuntimeError(f"kinsight analyse failed: {proc.stderr.strip()[-500:]}")
    _, _rc, seconds, kb = said[-1]
    return float(seconds), int(kb) / 1024


def build(db: Path, residents: int, history_days: int) -> date:
    """The store: ``residents`` residents with ``history_days`` days each, analysed up to
    the day before the last; returns the day whose morning is still to come."""
    last = _START + timedelta(days=history_days)  # its data is there; not yet analysed
    with Store(db) as store:
        templates = []
        for persona, seed in _TEMPLATES:
            scenario, acts = simulate(persona, seed, history_days + 1, _START)
            store_activities(store, acts, TZ)
            templates.append(scenario.resident)
    # Up to yesterday, as the deployment's mornings left it (the templates only).
    _analyse(db, _morning_ms(last))
    with Store(db) as store:
        clone_residents(store, templates, residents - len(templates))
        rows = store.conn.execute("SELECT COUNT(*) FROM activities").fetchone()[0]
    log.info("store of %d residents, %d days, %d activities", residents, history_days, rows)
    return last + timedelta(days=1)


def clone_residents(store: Store, templates: list[str], n: int, alerts: bool = False) -> None:
    """``n`` more residents, each a copy of a template's activities, model, settled
    night, stored days and day summaries (and, with ``alerts``, its alerts)."""
    c = store.conn
    with store.transaction():
        for i in range(n):
            src = templates[i % len(templates)]
            name = f"{src}-clone-{i}"
            c.execute("INSERT INTO residents SELECT ?, tz FROM residents WHERE resident = ?",
                      (name, src))
            c.execute("INSERT INTO activities SELECT ?, sensor, start_ms, end_ms, value, "
                      "room, source FROM activities WHERE resident = ?", (name, src))
            c.execute("INSERT INTO models SELECT ?, detector, state_json, last_day FROM "
                      "models WHERE resident = ?", (name, src))
            c.execute("INSERT INTO resident_nights SELECT ?, version, start_min, end_min "
                      "FROM resident_nights WHERE resident = ?", (name, src))
            c.execute("INSERT INTO day_features SELECT ?, day, version, features FROM "
                      "day_features WHERE resident = ?", (name, src))
            c.execute("INSERT INTO routine_days SELECT ?, day, version, summary FROM "
                      "routine_days WHERE resident = ?", (name, src))
            if alerts:
                c.execute("INSERT INTO alerts (resident, condition, severity, day, "
                          "created_ms, score, text, series, state, subject, series_of) "
                          "SELECT ?, condition, severity, day, created_ms, score, text, "
                          "series, state, subject, series_of FROM alerts WHERE resident = ?",
                          (name, src))


def bench_analyse(residents: int = 1000, histories: tuple[int, ...] = (30, 365)
                  ) -> list[dict[str, float]]:
    out = []
    for days in histories:
        with tempfile.TemporaryDirectory(prefix="kinsight-bench-") as tmp:
            db = Path(tmp) / "homes.db"
            t0 = time.perf_counter()
            morning = build(db, residents, days)
            built_s = time.perf_counter() - t0
            seconds, rss_mb = _analyse(db, _morning_ms(morning))
            out.append({"residents": residents, "history_days": days, "morning_s": seconds,
                        "per_resident_ms": seconds * 1000 / residents, "rss_mb": rss_mb,
                        "build_s": built_s})
    return out


def run_analyse(residents: int = 1000) -> int:
    runs = bench_analyse(residents)
    for r in runs:
        print(f"one new morning of {r['residents']:.0f} residents with {r['history_days']:.0f} "  # noqa: T201
              f"days of history (store built in {r['build_s']:.0f} s): "
              f"{r['morning_s']:.1f} s, {r['per_resident_ms']:.1f} ms a resident, "
              f"peak {r['rss_mb']:.0f} MB")
    last, first = runs[-1], runs[0]
    ratio = last["per_resident_ms"] / first["per_resident_ms"]
    print(f"residents={last['residents']:.0f} history_days={last['history_days']:.0f} "  # noqa: T201
          f"morning_s={last['morning_s']:.2f} per_resident_ms={last['per_resident_ms']:.2f} "
          f"rss_mb={last['rss_mb']:.0f} cost_ratio_365_30={ratio:.2f}")
    return 0
