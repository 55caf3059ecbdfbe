"""Scoring Kinsight on real homes as a deployment would have run there.

``evaluate_db`` reads every imported history in a store, extends it to two months
(``injection.extend_days``) and plays it through the deployment's own path
(``service.replay.play``: the real-time rules every hour, the morning analysis each
day, the alert policy), so what is scored is what would have been raised. The
unchanged copy gives the false alerts, all and urgent ones; copies with one
injected change each (``injection.inject``) give detection and delay.
"""

from __future__ import annotations

import logging
import math
import statistics
import zlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..alerts import AlertRecord, AlertRouter, Policy, list_alerts
from ..alerts.records import copy_alerts
from ..residents import store_activities
from ..residents.activity import Activity
from ..residents.history_import import (
    HistoryError,
    load_activities,
    local_day,
    resident_zones,
    zone,
)
from ..service.analysis import ensure_models
from ..service.replay import midnight_ms, play
from ..store import Store
from .injection import CONDITIONS, applicable, complete_days, extend_days, inject
from .scoring import LEARNING_DAYS, Report

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
            ("false_urgent_per_resident_month", s["false_urgent_per_resident_month"]),
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
                     f"{s['false_alerts']} ({s['false_urgent']} urgent), injected {s['crises']}, "
                     f"detected {s['detected']}")
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


# Which alerts find each injected change (a late morning is the real-time "not up" or
# the next morning's "up later than usual"; two dry days the daily model's).
FINDS: dict[str, frozenset[str]] = {
    "dehydration": frozenset({"dehydration", "no_water"}),
    "uti": frozenset({"uti"}),
    "inactivity": frozenset({"inactivity", "not_up"}),
    "prolonged_sitting": frozenset({"prolonged_sitting"}),
    "silent_home": frozenset({"silent_home"}),
    "out_overnight": frozenset({"out_overnight"}),
    "stuck_sensor": frozenset({"device"}),
}
# Alerts that are not about the resident's health: equipment, and being out.
NOT_HEALTH = frozenset({"device", "out_overnight"})
# Changes that are found only if nothing urgent is said meanwhile: going out is not
# "down", a stuck sensor is not a fall.
NOT_URGENT = frozenset({"out_overnight", "stuck_sensor"})


def _home(activities: list[Activity], tz: str) -> Store:
    store = Store(":memory:")
    store_activities(store, activities, tz, "evaluation")
    return store


def _health(alerts: list[AlertRecord]) -> list[AlertRecord]:
    return [a for a in alerts if a.condition not in NOT_HEALTH]


def evaluate_db(db_path: str | Path, json_out: str | Path | None = None, *,
                min_days: int = MIN_DAYS, learning_days: int = LEARNING_DAYS, seed: int = 0,
                detector: str = "engine", policy: Policy | None = None) -> HistoryReport:
    """Evaluate Kinsight on every imported history in the store at ``db_path``.

    Each recording is extended to ``min_days`` days (``extend_days``, seeded per
    resident) and played as a deployment (``service.replay.play``; ``detector`` is
    the morning analysis's: "engine" or "baseline"; ``policy`` the alert policy,
    the default one when None). False alerts: every health alert on the unchanged
    copy from the end of the learning period on (there are no known health events),
    per resident-month of those days, and the urgent ones apart. Detection: copies
    with one injected change each (``inject``, only changes the home's sensors can
    show), at several onsets after learning; a change is detected by an alert that
    finds it (``FINDS``) from its first day to the day after it ends (for going out
    and a stuck sensor, with no urgent alert meanwhile), and its delay is the days
    from its first day to that alert. Each copy is played from the morning before
    its change, the engine's state and the earlier alerts taken from the unchanged
    copy at that point (the days before are the same). ``alerts_per_resident_month``
    and ``precision`` count every health alert after learning on all copies.
    Writes the JSON report to ``json_out``."""
    with Store(db_path, create=False) as store:
        zones = resident_zones(store)
        recordings = {r: load_activities(store, r) for r in zones}
    recordings = {r: acts for r, acts in recordings.items() if acts}
    if not recordings:
        raise HistoryError([(str(db_path), 0, "no imported histories (use kinsight import)")])
    policy = policy or Policy()
    cond: dict[str, dict[str, Any]] = {}

    def entry(c: str) -> dict[str, Any]:
        return cond.setdefault(c, {"trials": 0, "detected": 0, "delays": [], "alerts": 0,
                                   "true_alerts": 0})

    per_resident: list[dict[str, Any]] = []
    base_false = base_urgent = base_days = all_alerts = all_true = all_days = 0
    for resident, acts in sorted(recordings.items()):
        tz = zones[resident]
        recorded = complete_days(acts, zone(tz))
        ext = extend_days(acts, min_days, seed + zlib.crc32(resident.encode()), tz)
        first = local_day(ext[0].start_ms, zone(tz))
        days = (local_day(ext[-1].start_ms, zone(tz)) - first).days + 1
        after = first + timedelta(days=learning_days)
        snapshots: dict[date, tuple[str, str | None]] = {}
        with _home(ext, tz) as home:
            def snap(_resident: str, day: date, home: Store = home,
                     snapshots: dict[date, tuple[str, str | None]] = snapshots) -> None:
                row = home.conn.execute("SELECT state_json, last_day FROM models WHERE "
                                        "detector = ?", (detector,)).fetchone()
                if row is not None:
                    snapshots[day] = (str(row[0]), row[1])

            play(home, AlertRouter(policy, home), midnight_ms(first, tz),
                 midnight_ms(first + timedelta(days=days), tz), detector=detector,
                 on_morning=snap)
            base_alerts = list_alerts(home)
        false = [a for a in _health(base_alerts) if a.day >= after.isoformat()]
        urgent = [a for a in false if a.severity == "urgent"]
        base_false += len(false)
        base_urgent += len(urgent)
        base_days += max(0, days - learning_days)
        all_alerts += len(false)
        all_days += max(0, days - learning_days)
        for a in false:
            entry(a.condition)["alerts"] += 1
        trials = []
        for c in CONDITIONS:
            if not applicable(acts, c):
                continue
            for onset in trial_onsets(first, days, c, learning_days):
                end = onset + timedelta(days=CONDITIONS[c] + 1)
                alerts = _trial(inject(ext, c, onset, tz), tz, policy, detector, onset, end,
                                snapshots.get(onset - timedelta(days=2)), base_alerts)
                window = [a for a in alerts if onset.isoformat() <= a.day < end.isoformat()]
                hits = sorted(a.day for a in window if a.condition in FINDS[c])
                if c in NOT_URGENT and any(a.severity == "urgent" for a in _health(window)):
                    hits = []
                delay = (date.fromisoformat(hits[0]) - onset).days if hits else None
                e = entry(c)
                e["trials"] += 1
                e["detected"] += int(delay is not None)
                if delay is not None:
                    e["delays"].append(delay)
                health = _health(window)
                for a in health:
                    entry(a.condition)["alerts"] += 1
                    entry(a.condition)["true_alerts"] += int(a.condition in FINDS[c])
                all_alerts += len(health)
                all_true += sum(a.condition in FINDS[c] for a in health)
                all_days += (end - onset).days
                trials.append({"condition": c, "onset": onset, "detected": delay is not None,
                               "delay_days": delay,
                               "alerts": [_alert_dict(a) for a in window]})
        per_resident.append({
            "resident": resident, "tz": tz, "events": len(acts),
            "recorded_days": len(recorded), "days": days, "start": first,
            "learning_days": learning_days, "false_alerts": len(false),
            "false_urgent": len(urgent),
            "false_alerts_per_month": _ratio(len(false) * _DAYS_PER_MONTH,
                                             max(0, days - learning_days)),
            "alerts": [_alert_dict(a) for a in false], "trials": trials})
        log.info("%s: %d days, %d false alerts (%d urgent), %d trials", resident, days,
                 len(false), len(urgent), len(trials))
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
        "true_alerts": all_true, "false_alerts": base_false, "false_urgent": base_urgent,
        "detection_rate": _ratio(detected, trials_n),
        "false_alerts_per_resident_month": _ratio(base_false * _DAYS_PER_MONTH, base_days),
        "false_urgent_per_resident_month": _ratio(base_urgent * _DAYS_PER_MONTH, base_days),
        "alerts_per_resident_month": _ratio(all_alerts * _DAYS_PER_MONTH, all_days),
        "precision": _ratio(all_true, all_alerts), "conditions": conditions}
    report = HistoryReport(summary, per_resident)
    if json_out is not None:
        report.write_json(json_out)
    return report


def _alert_dict(a: AlertRecord) -> dict[str, Any]:
    return {"day": a.day, "condition": a.condition, "severity": a.severity, "text": a.text}


def _trial(activities: list[Activity], tz: str, policy: Policy, detector: str, onset: date,
           end: date, snapshot: tuple[str, str | None] | None,
           base_alerts: list[AlertRecord]) -> list[AlertRecord]:
    """The alerts a copy with a change raises from its first day to the morning after
    its window, played from the unchanged copy's state the morning before."""
    with _home(activities, tz) as home:
        resident = activities[0].resident
        start = midnight_ms(onset, tz)
        if snapshot is not None:
            ensure_models(home)
            home.conn.execute("INSERT INTO models VALUES (?, ?, ?, ?)",
                              (resident, detector, *snapshot))
        router = AlertRouter(policy, home)
        copy_alerts(home, [a for a in base_alerts if a.created_ms < start])
        play(home, router, start, midnight_ms(end, tz) + 8 * 3_600_000, detector=detector)
        return [a for a in list_alerts(home) if a.created_ms >= start]
