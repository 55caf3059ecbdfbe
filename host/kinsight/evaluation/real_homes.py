"""Scoring a detector on real homes: imported histories, extended, with injected changes.

``evaluate_db`` reads every imported history in a store, extends it to two months
(``injection.extend_days``), scores the unchanged copy for false alerts and copies
with one injected change each (``injection.inject``) for detection and delay.
"""

from __future__ import annotations

import logging
import math
import statistics
import zlib
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..learning import Detector, EngineDetector
from ..residents.history_import import (
    HistoryError,
    load_activities,
    local_day,
    resident_zones,
    zone,
)
from ..simulation.truth import Change, Scenario
from ..store import Store
from .injection import CONDITIONS, complete_days, extend_days, inject
from .scoring import LEARNING_DAYS, Report, evaluate

log = logging.getLogger(__name__)
MIN_DAYS = 60
TRIAL_SPACING_DAYS = 12
_DAYS_PER_MONTH = 30.44


class HistoryReport(Report):
    """A Report whose last line carries the delays of the injected changes."""

    def last_line(self) -> str:
        s = self.summary
        keys: list[tuple[str, Any]] = [
            ("detection_rate", s["detection_rate"]),
            ("false_alerts_per_resident_month", s["false_alerts_per_resident_month"]),
            ("alerts_per_resident_month", s["alerts_per_resident_month"]),
            ("precision", s["precision"])]
        keys += [(f"delay_days_{c}", s["conditions"].get(c, {}).get("median_delay_days"))
                 for c in CONDITIONS]
        return " ".join(f"{k}={_fmt(v)}" for k, v in keys)

    def condition_lines(self) -> list[str]:
        s = self.summary
        lines = [f"{name}: injected {c['crises']}, detected {c['detected']} "
                 f"(rate {_fmt(c['detection_rate'])}), median delay "
                 f"{_fmt(c['median_delay_days'])} d, alerts {c['alerts']}, "
                 f"true {c['true_alerts']}" for name, c in s["conditions"].items()]
        lines.append(f"overall: {s['residents']} residents, {s['resident_days']} resident-days "
                     f"after {s['learning_days']} learning days, false alerts "
                     f"{s['false_alerts']}, injected {s['crises']}, detected {s['detected']}")
        return lines


def _fmt(v: object) -> str:
    if v is None:
        return "none"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def trial_onsets(first: date, days: int, condition: str, learning_days: int = LEARNING_DAYS
                 ) -> list[date]:
    """Injection days after the learning period, every TRIAL_SPACING_DAYS days, each with
    room for the change and a day after it to be noticed."""
    out = []
    offset = learning_days + 4
    while offset + CONDITIONS[condition] + 1 <= days:
        out.append(first + timedelta(days=offset))
        offset += TRIAL_SPACING_DAYS
    return out


def evaluate_db(db_path: str | Path, json_out: str | Path | None = None, *,
                min_days: int = MIN_DAYS, learning_days: int = LEARNING_DAYS, seed: int = 0,
                detector: Callable[[], Detector] | None = None) -> HistoryReport:
    """Evaluate a detector on every imported history in the store at ``db_path``.

    Each recording is extended to ``min_days`` days (``extend_days``, seeded per
    resident). False alerts: every alert on the unchanged copy from the end of the
    learning period on (there are no known health events), per resident-month of
    those days. Detection: copies with one injected change each (``inject``), at
    several onsets after learning; a change is detected by an alert of its
    condition from its first day to the day after it ends, and its delay is the days
    from its first day to that alert. ``alerts_per_resident_month`` and
    ``precision`` count every alert after learning on all copies. A fresh detector
    (``detector()``; the learning engine's ``EngineDetector`` when None) scores each
    copy; the engine reads a silent tap as a dry day in a recording without
    heartbeats (``silent_tap_means_dry``). Writes the JSON report to ``json_out``."""
    with Store(db_path, create=False) as store:
        zones = resident_zones(store)
        recordings = {r: load_activities(store, r) for r in zones}
    recordings = {r: acts for r, acts in recordings.items() if acts}
    if not recordings:
        raise HistoryError([(str(db_path), 0, "no imported histories (use kinsight import)")])
    cond: dict[str, dict[str, Any]] = {
        c: {"trials": 0, "detected": 0, "delays": [], "alerts": 0, "true_alerts": 0}
        for c in CONDITIONS}
    per_resident: list[dict[str, Any]] = []
    base_false = base_days = all_alerts = all_true = all_days = 0
    for resident, acts in sorted(recordings.items()):
        tz = zones[resident]
        recorded = complete_days(acts, zone(tz))
        ext = extend_days(acts, min_days, seed + zlib.crc32(resident.encode()), tz)
        first = local_day(ext[0].start_ms, zone(tz))
        days = (local_day(ext[-1].start_ms, zone(tz)) - first).days + 1
        after = first + timedelta(days=learning_days)
        learn = Scenario(resident, "imported", days, first, [])
        dry = not any(a.sensor == "heartbeat" for a in acts)
        make = detector or (lambda dry=dry: EngineDetector({"silent_tap_means_dry": dry}))
        base = evaluate([(learn, ext)], make(), tz).per_resident[0]
        false = [a for a in base["alerts"] if a["day"] >= after]
        base_false += len(false)
        base_days += max(0, days - learning_days)
        all_alerts += len(false)
        all_days += max(0, days - learning_days)
        trials = []
        for c in CONDITIONS:
            for onset in trial_onsets(first, days, c, learning_days):
                end = onset + timedelta(days=CONDITIONS[c] + 1)
                scn = Scenario(resident, f"imported+{c}", days, first, [Change(c, onset, end)])
                run = evaluate([(scn, inject(ext, c, onset, tz))], make(), tz)
                alerts = [a for a in run.per_resident[0]["alerts"] if a["day"] >= after]
                hits = sorted(a["day"] for a in alerts
                              if a["condition"] == c and onset <= a["day"] < end)
                delay = (hits[0] - onset).days if hits else None
                e = cond[c]
                e["trials"] += 1
                e["detected"] += int(delay is not None)
                if delay is not None:
                    e["delays"].append(delay)
                for a in alerts:
                    cond[a["condition"]] = cond.get(a["condition"]) or {
                        "trials": 0, "detected": 0, "delays": [], "alerts": 0, "true_alerts": 0}
                    cond[a["condition"]]["alerts"] += 1
                    cond[a["condition"]]["true_alerts"] += int(a["true"])
                all_alerts += len(alerts)
                all_true += sum(a["true"] for a in alerts)
                all_days += max(0, days - learning_days)
                trials.append({"condition": c, "onset": onset, "detected": delay is not None,
                               "delay_days": delay, "alerts": alerts})
        for a in false:
            e = cond.setdefault(a["condition"], {"trials": 0, "detected": 0, "delays": [],
                                                 "alerts": 0, "true_alerts": 0})
            e["alerts"] += 1
        per_resident.append({
            "resident": resident, "tz": tz, "events": len(acts),
            "recorded_days": len(recorded), "days": days, "start": first,
            "learning_days": learning_days, "false_alerts": len(false),
            "false_alerts_per_month": _ratio(len(false) * _DAYS_PER_MONTH,
                                             max(0, days - learning_days)),
            "alerts": false, "trials": trials})
        log.info("%s: %d days, %d false alerts, %d trials", resident, days, len(false),
                 len(trials))
    trials_n = sum(e["trials"] for e in cond.values())
    detected = sum(e["detected"] for e in cond.values())
    conditions = {}
    for name, e in cond.items():
        delay = (float(statistics.median(e["delays"])) if e["delays"]
                 else ("nan" if e["trials"] else None))
        conditions[name] = {
            "crises": e["trials"], "detected": e["detected"],
            "detection_rate": _ratio(e["detected"], e["trials"]),
            "median_delay_days": delay, "median_lead_days": None, "alerts": e["alerts"],
            "true_alerts": e["true_alerts"], "precision": _ratio(e["true_alerts"], e["alerts"])}
    summary: dict[str, Any] = {
        "residents": len(per_resident), "resident_days": base_days, "learning_days":
        learning_days, "crises": trials_n, "detected": detected, "alerts": all_alerts,
        "true_alerts": all_true, "false_alerts": base_false,
        "detection_rate": _ratio(detected, trials_n),
        "false_alerts_per_resident_month": _ratio(base_false * _DAYS_PER_MONTH, base_days),
        "alerts_per_resident_month": _ratio(all_alerts * _DAYS_PER_MONTH, all_days),
        "precision": _ratio(all_true, all_alerts), "conditions": conditions}
    report = HistoryReport(summary, per_resident)
    if json_out is not None:
        report.write_json(json_out)
    return report
