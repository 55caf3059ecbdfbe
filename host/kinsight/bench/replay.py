"""``kinsight bench replay``: scoring a home as a deployment would have run there.

A simulated resident in a home of real homes' quirks, 60 days, is imported into a
scratch database and scored by ``kinsight eval --db`` (every injected change played
hour by hour through the real-time rules and the morning analysis), as a real
home is; ``--db`` scores a database of real homes instead. The figures are the
seconds it takes per home and per simulated hour, and what was found.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path

from ..evaluation import evaluate_db
from ..residents import store_activities
from ..simulation import simulate
from ..simulation.quirks import QUIRKS
from ..store import Store

DAYS = 60


def bench_replay(db: str | Path | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        if db is None:
            db = Path(tmp) / "home.db"
            _, acts = simulate("healthy", 11, DAYS, date(2024, 3, 4), outages=False,
                               quirks=tuple(q for q in QUIRKS if q != "stuck"),
                               resident="home")
            with Store(db) as store:
                store_activities(store, acts, "Europe/London", "bench")
        t0 = time.perf_counter()
        report = evaluate_db(db)
        seconds = time.perf_counter() - t0
    s = report.summary
    homes = max(1, int(s["residents"]))
    hours = sum(24 * (p["days"] + sum(_trial_days(t) for t in p["trials"]))
                for p in report.per_resident)
    return {"homes": homes, "seconds_per_home": seconds / homes,
            "ms_per_hour": 1000 * seconds / max(1, hours), "trials": s["crises"],
            "detection_rate": s["detection_rate"] or 0.0,
            "false_alerts_per_resident_month": s["false_alerts_per_resident_month"] or 0.0}


def _trial_days(trial: dict[str, object]) -> int:
    from ..evaluation.injection import CONDITIONS

    return CONDITIONS[str(trial["condition"])] + 2


def run_replay(db: str | None = None) -> int:
    r = bench_replay(db)
    print(f"scoring {'the homes in ' + db if db else 'a simulated home of quirks'} as a "  # noqa: T201
          f"deployment would have run there, {DAYS} days, {r['trials']:.0f} injected "
          f"changes, one core")
    print(f"homes={r['homes']:.0f} seconds_per_home={r['seconds_per_home']:.1f} "  # noqa: T201
          f"ms_per_hour={r['ms_per_hour']:.2f} detection_rate={r['detection_rate']:.3f} "
          f"false_alerts_per_resident_month={r['false_alerts_per_resident_month']:.3f}")
    return 0
