"""Running scenarios with their ground truth through a detector, and the figures.

Definitions (days are local calendar days):

* A crisis is detected when an alert for its condition falls on a day d with
  onset <= d < crisis; its lead time is crisis minus the first such day, in days.
  Only crises inside the simulated (or recorded) span count, and only those
  after the resident's learning period (the first ``learning_days`` days): the
  engine is specified to raise no proactive alert while it learns, so a crisis
  that comes before the learning ends is listed (``in_learning``) but not counted.
* A change window is [onset, crisis], both included. An alert is a false alert
  when it lies outside every change window of its resident, whatever the
  condition (so every alert on a healthy resident is one). It is a true alert
  when it lies inside a window of its own condition; precision is true alerts /
  all alerts.
* Rates per resident-month use 30.44 days a month over all residents' days.

The last line, ``Report.last_line()``, is ``detection_rate=R
false_alerts_per_resident_month=F alerts_per_resident_month=A precision=P
lead_days_dehydration=D lead_days_uti=U lead_days_mobility=M
crises_in_learning=N``. A figure is
``none`` when there is nothing to measure it on (no crisis of that condition, or
no crisis at all for detection_rate, or no alert for precision) and ``nan`` when
there are crises but none was detected (no lead time).
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..learning import Alert, Detector, personal_features
from ..residents import Activity
from ..simulation.truth import Scenario

log = logging.getLogger(__name__)

DAYS_PER_MONTH = 30.44
LEARNING_DAYS = 14  # as learning.PersonalModel's default
HEADLINE_CONDITIONS = ("dehydration", "uti", "mobility")
NOT_HEALTH = frozenset({"device"})  # alerts for the field team, never counted here


@dataclass
class Report:
    summary: dict[str, Any]
    per_resident: list[dict[str, Any]]

    def last_line(self) -> str:
        s = self.summary
        keys = [("detection_rate", s["detection_rate"]),
                ("false_alerts_per_resident_month", s["false_alerts_per_resident_month"]),
                ("alerts_per_resident_month", s["alerts_per_resident_month"]),
                ("precision", s["precision"])]
        keys += [(f"lead_days_{c}", s["conditions"].get(c, {}).get("median_lead_days"))
                 for c in HEADLINE_CONDITIONS]
        keys.append(("crises_in_learning", s.get("crises_in_learning", 0)))
        return " ".join(f"{k}={_fmt(v)}" for k, v in keys)

    def condition_lines(self) -> list[str]:
        lines = []
        for name, c in self.summary["conditions"].items():
            lines.append(
                f"{name}: crises {c['crises']}, detected {c['detected']} "
                f"(rate {_fmt(c['detection_rate'])}), median lead {_fmt(c['median_lead_days'])} d, "
                f"alerts {c['alerts']}, true {c['true_alerts']}, "
                f"precision {_fmt(c['precision'])}")
        s = self.summary
        lines.append(f"overall: {s['residents']} residents, {s['resident_days']} resident-days, "
                     f"crises {s['crises']}, detected {s['detected']}, alerts {s['alerts']}, "
                     f"false alerts {s['false_alerts']}; crises inside a learning period (not "
                     f"counted) {s.get('crises_in_learning', 0)}")
        return lines

    def to_json(self) -> str:
        return json.dumps({"summary": self.summary, "per_resident": self.per_resident},
                          indent=1, default=str, allow_nan=False)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")


def _fmt(v: float | None) -> str:
    if v is None:
        return "none"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return f"{v:.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _json_safe(v: float | None) -> float | str | None:
    return "nan" if isinstance(v, float) and math.isnan(v) else v


def evaluate(scenarios_with_activities: Iterable[tuple[Scenario, list[Activity]]],
             detector: Detector, tz: str = "Europe/London",
             learning_days: int = LEARNING_DAYS) -> Report:
    """Score every day of every scenario with ``detector`` (features by day, every
    day of the scenario in order, an empty dict for a day with no data) and
    measure the alerts against the scenarios' changes."""
    per_resident: list[dict[str, Any]] = []
    cond: dict[str, dict[str, Any]] = {}

    def c(name: str) -> dict[str, Any]:
        return cond.setdefault(name, {"crises": 0, "detected": 0, "leads": [], "alerts": 0,
                                      "true_alerts": 0, "false_alerts": 0})

    total_days = 0
    in_learning = 0
    for scenario, activities in scenarios_with_activities:
        feats, _night = personal_features(activities, tz=tz)
        alerts: list[Alert] = []
        notices = 0
        for i in range(scenario.days):
            day = scenario.start + timedelta(days=i)
            for a in detector.score_day(scenario.resident, day, feats.get(day, {})):
                if a.condition in NOT_HEALTH:
                    notices += 1  # for the field team (a silent sensor), not a health alert
                else:
                    alerts.append(a)
        total_days += scenario.days
        changes_out = []
        for ch in scenario.changes:
            if not scenario.start <= ch.crisis < scenario.end:
                changes_out.append({"condition": ch.condition, "onset": ch.onset,
                                    "crisis": ch.crisis, "counted": False})
                continue
            if ch.crisis < scenario.start + timedelta(days=learning_days):
                changes_out.append({"condition": ch.condition, "onset": ch.onset,
                                    "crisis": ch.crisis, "counted": False,
                                    "in_learning": True})
                in_learning += 1
                continue
            hits = [a.day for a in alerts
                    if a.condition == ch.condition and ch.onset <= a.day < ch.crisis]
            lead = (ch.crisis - min(hits)).days if hits else None
            entry = c(ch.condition)
            entry["crises"] += 1
            if lead is not None:
                entry["detected"] += 1
                entry["leads"].append(lead)
            changes_out.append({"condition": ch.condition, "onset": ch.onset,
                                "crisis": ch.crisis, "counted": True,
                                "detected": lead is not None, "lead_days": lead})
        alerts_out = []
        for a in alerts:
            inside_any = any(ch.onset <= a.day <= ch.crisis for ch in scenario.changes)
            true = any(ch.condition == a.condition and ch.onset <= a.day <= ch.crisis
                       for ch in scenario.changes)
            entry = c(a.condition)
            entry["alerts"] += 1
            entry["true_alerts"] += int(true)
            entry["false_alerts"] += int(not inside_any)
            alerts_out.append({"day": a.day, "condition": a.condition, "severity": a.severity,
                               "text": a.text, "true": true, "false_alert": not inside_any})
        per_resident.append({"resident": scenario.resident, "persona": scenario.persona,
                             "start": scenario.start, "days": scenario.days,
                             "changes": changes_out, "alerts": alerts_out,
                             "false_alerts": sum(a["false_alert"] for a in alerts_out),
                             "device_notices": notices})
        log.info("%s: %d alerts, %d changes", scenario.resident, len(alerts), len(changes_out))
    summary = _summary(cond, per_resident, total_days)
    summary["crises_in_learning"] = in_learning
    return Report(summary, per_resident)


def _summary(cond: dict[str, dict[str, Any]], per_resident: list[dict[str, Any]],
             total_days: int) -> dict[str, Any]:
    months = total_days / DAYS_PER_MONTH
    conditions: dict[str, Any] = {}
    for name in sorted(cond):
        e = cond[name]
        median = (float(statistics.median(e["leads"])) if e["leads"]
                  else (math.nan if e["crises"] else None))
        conditions[name] = {
            "crises": e["crises"], "detected": e["detected"],
            "detection_rate": _ratio(e["detected"], e["crises"]),
            "median_lead_days": median, "alerts": e["alerts"], "true_alerts": e["true_alerts"],
            "false_alerts": e["false_alerts"],
            "precision": _ratio(e["true_alerts"], e["alerts"]),
        }
    crises = sum(e["crises"] for e in cond.values())
    detected = sum(e["detected"] for e in cond.values())
    alerts = sum(e["alerts"] for e in cond.values())
    true = sum(e["true_alerts"] for e in cond.values())
    false = sum(e["false_alerts"] for e in cond.values())
    summary: dict[str, Any] = {
        "residents": len(per_resident), "resident_days": total_days,
        "crises": crises, "detected": detected, "alerts": alerts, "true_alerts": true,
        "false_alerts": false,
        "detection_rate": _ratio(detected, crises),
        "false_alerts_per_resident_month": _ratio(false, months),
        "alerts_per_resident_month": _ratio(alerts, months),
        "precision": _ratio(true, alerts),
        "conditions": conditions,
    }
    for v in conditions.values():
        v["median_lead_days"] = _json_safe(v["median_lead_days"])
    return summary


