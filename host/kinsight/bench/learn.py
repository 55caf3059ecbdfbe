"""``kinsight bench learn``: one day's update of many residents' models, on one core."""

from __future__ import annotations

import json
import random
import time
from datetime import date, timedelta

from ..learning.model import PersonalModel, state_bytes


def _synthetic_day(rng: random.Random, day: date) -> dict[str, object]:
    """A plausible day's features (a synthetic stream, not a persona)."""
    x: dict[str, object] = {
        "water_ml": rng.gauss(1500, 200), "draws": float(rng.randint(3, 8)),
        "toilet_day": float(rng.randint(3, 8)), "toilet_night": float(rng.randint(0, 2)),
        "sit_total_min": rng.gauss(400, 60), "sit_count": float(rng.randint(6, 12)),
        "sit_longest_min": rng.gauss(90, 20), "rise_s_median": rng.gauss(2.0, 0.2),
        "bed_night_min": rng.gauss(480, 30), "out_of_bed_night": float(rng.randint(0, 2)),
        "first_activity_min": rng.gauss(440, 20), "last_activity_min": rng.gauss(1360, 25),
        "night_activity_count": float(rng.randint(0, 3)), "stairs_min": rng.gauss(2, 0.4),
        "hr_mean": rng.gauss(72, 3)}
    x["day"] = day.isoformat()
    x["weekend"] = int(day.weekday() >= 5)
    return x


def bench_learn(residents: int = 10_000, warm_days: int = 60, seed: int = 5
                ) -> dict[str, float]:
    """Warm ``residents`` models past learning on synthetic streams, then time one
    day's score_one + learn_one for all of them on one core."""
    rng = random.Random(seed)
    start = date(2024, 1, 1)
    proto = PersonalModel()
    for i in range(warm_days):
        x = _synthetic_day(rng, start + timedelta(days=i))
        proto.score_one(x)
        proto.learn_one(x)
    state = json.loads(json.dumps(proto.to_dict()))
    models = [PersonalModel.from_dict(state) for _ in range(residents)]
    day = start + timedelta(days=warm_days)
    xs = [_synthetic_day(rng, day) for _ in range(residents)]
    t0 = time.perf_counter()
    findings = 0
    for m, x in zip(models, xs, strict=True):
        findings += len(m.score_one(x))
        m.learn_one(x)
    seconds = time.perf_counter() - t0
    return {"residents": residents, "seconds": seconds, "findings": findings,
            "state_bytes_max": max(state_bytes(m) for m in models)}


def run_learn(residents: int = 10_000) -> int:
    r = bench_learn(residents)
    print(f"learning engine: one day's score_one + learn_one for {r['residents']:.0f} "  # noqa: T201
          f"residents (models warmed 60 days on synthetic streams), one core")
    print(f"  {r['seconds'] * 1e6 / r['residents']:.0f} us per resident, "  # noqa: T201
          f"{r['findings']:.0f} findings")
    print(f"residents={r['residents']:.0f} seconds={r['seconds']:.2f} "  # noqa: T201
          f"state_bytes_max={r['state_bytes_max']:.0f}")
    return 0
