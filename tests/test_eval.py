"""Evaluation arithmetic on hand-built scenarios, the baseline detector's rules, and
the smoke suite end to end."""

from __future__ import annotations

import json
import math
import re
from datetime import date, timedelta

import pytest

from kinsight import cli
from kinsight.evaluation import DAYS_PER_MONTH, SUITES, evaluate, run_suite
from kinsight.learning import Alert, BaselineDetector
from kinsight.simulation import Change, Scenario

S = date(2024, 5, 6)


def d(n: int) -> date:
    return S + timedelta(days=n)


class Scripted:
    """Alerts on the days given, whatever the features; records every call."""

    def __init__(self, plan: dict[str, list[tuple[int, str]]]):
        self.plan = plan
        self.calls: list[tuple[str, date]] = []

    def score_day(self, resident: str, day: date, features: dict[str, float]) -> list[Alert]:
        self.calls.append((resident, day))
        return [Alert(resident, day, c, "digest", "scripted")
                for n, c in self.plan.get(resident, []) if d(n) == day]


def _hand_built() -> tuple[list[tuple[Scenario, list]], Scripted]:
    scenarios = [
        Scenario("a", "daphne", 40, S, [Change("uti", d(10), d(20))]),
        Scenario("b", "mrs_s", 40, S, [Change("dehydration", d(5), d(9))]),
        Scenario("c", "healthy", 40, S, []),
        Scenario("e", "john", 40, S, [Change("mobility", d(30), d(50))]),  # crisis after end
    ]
    plan = {
        "a": [(12, "uti"), (15, "uti"), (14, "dehydration"), (30, "uti")],
        "b": [(9, "dehydration")],  # on the crisis day: in the window, yet not a detection
        "c": [(3, "mobility"), (4, "uti")],
        "e": [(35, "mobility")],
    }
    return [(s, []) for s in scenarios], Scripted(plan)


def test_metrics_of_hand_built_scenarios() -> None:
    runs, detector = _hand_built()
    report = evaluate(runs, detector, learning_days=0)
    s = report.summary
    assert len(detector.calls) == 160  # every day, with or without data
    assert s["crises"] == 2 and s["detected"] == 1
    assert s["detection_rate"] == 0.5
    assert s["alerts"] == 8
    assert s["true_alerts"] == 4  # a: 12, 15; b: 9; e: 35
    assert s["precision"] == 0.5
    assert s["false_alerts"] == 3  # a: day 30; c: both
    assert s["false_alerts_per_resident_month"] == pytest.approx(3 / (160 / DAYS_PER_MONTH))
    assert s["alerts_per_resident_month"] == pytest.approx(8 / (160 / DAYS_PER_MONTH))
    uti = s["conditions"]["uti"]
    assert (uti["crises"], uti["detected"], uti["median_lead_days"]) == (1, 1, 8.0)
    assert uti["precision"] == pytest.approx(2 / 4)
    assert s["conditions"]["dehydration"]["median_lead_days"] == "nan"
    assert s["conditions"]["mobility"]["crises"] == 0
    line = report.last_line()
    assert "detection_rate=0.5 " in line and "precision=0.5 " in line
    assert "lead_days_uti=8 " in line
    assert "lead_days_dehydration=nan " in line
    assert line.endswith("lead_days_mobility=none crises_in_learning=0")
    per = {r["resident"]: r for r in json.loads(report.to_json())["per_resident"]}
    assert per["c"]["false_alerts"] == 2 and per["a"]["false_alerts"] == 1
    assert per["e"]["changes"][0]["counted"] is False


def test_a_crisis_inside_the_learning_period_is_listed_not_counted() -> None:
    runs, detector = _hand_built()
    report = evaluate(runs, detector, learning_days=10)
    s = report.summary
    # b's crisis on day 9 comes before its learning ends; a's on day 20 does not
    assert (s["crises"], s["detected"], s["crises_in_learning"]) == (1, 1, 1)
    assert report.last_line().endswith(" crises_in_learning=1")
    assert "crises inside a learning period (not counted) 1" in report.condition_lines()[-1]
    b = next(r for r in report.per_resident if r["resident"] == "b")
    assert b["changes"][0]["counted"] is False and b["changes"][0]["in_learning"] is True
    # the alerts are judged as before: b's alert on its crisis day is still a true one
    assert s["true_alerts"] == 4 and s["false_alerts"] == 3


def test_median_lead_over_several_crises() -> None:
    runs = [(Scenario(f"r{i}", "daphne", 30, S, [Change("uti", d(5), d(15))]), [])
            for i in range(3)]
    # Leads 10, 4 and 1 day(s): the median is 4.
    detector = Scripted({"r0": [(5, "uti")], "r1": [(11, "uti")], "r2": [(14, "uti")]})
    report = evaluate(runs, detector)
    assert report.summary["conditions"]["uti"]["median_lead_days"] == 4.0
    assert report.summary["detection_rate"] == 1.0
    missed = evaluate([(runs[0][0], [])], Scripted({}))
    assert missed.last_line().startswith("detection_rate=0 ")
    assert "lead_days_uti=nan" in missed.last_line()


def test_no_alerts_no_crises_gives_none() -> None:
    report = evaluate([(Scenario("h", "healthy", 30, S, []), [])], Scripted({}))
    line = report.last_line()
    assert "detection_rate=none" in line and "precision=none" in line
    assert "false_alerts_per_resident_month=0 " in line


def test_baseline_rules() -> None:
    det = BaselineDetector()
    assert det.score_day("r", d(0), {"water_ml": 600}) == []  # one dry day is not enough
    (a,) = det.score_day("r", d(1), {"water_ml": 350})
    assert a.condition == "dehydration" and a.severity == "urgent" and "0.3 L" in a.text
    assert det.score_day("r", d(2), {"water_ml": 300}) == []  # refractory
    assert det.score_day("r", d(3), {}) == []  # no data: no alert
    (u,) = det.score_day("r", d(4), {"toilet_night": 3, "toilet_day": 4})
    assert u.condition == "uti"
    (m,) = det.score_day("other", d(4), {"rise_s_median": 3.6})
    assert m.condition == "mobility"
    assert det.score_day("x", d(0), {"rise_s_median": 3.5, "toilet_day": 8}) == []
    assert BaselineDetector(slow_rise_s=3.0).score_day("x", d(0), {"rise_s_median": 3.2})
    dry = BaselineDetector()
    dry.score_day("r", d(0), {"water_ml": 600})
    assert dry.score_day("r", d(2), {"water_ml": 600}) == []  # not consecutive days


LAST = re.compile(r"detection_rate=(\S+) false_alerts_per_resident_month=(\S+) "
                  r"alerts_per_resident_month=(\S+) precision=(\S+) lead_days_dehydration=(\S+) "
                  r"lead_days_uti=(\S+) lead_days_mobility=(\S+) crises_in_learning=(\d+)")


def test_smoke_suite_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    out = tmp_path / "report.json"
    assert cli.main(["eval", "--suite", "smoke", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    m = LAST.fullmatch(lines[-1])
    assert m is not None, lines[-1]
    for v in m.groups():
        assert v in ("nan", "none") or math.isfinite(float(v))
    data = json.loads(out.read_text())
    assert len(data["per_resident"]) == len(SUITES["smoke"])
    assert lines[-1] == run_suite("smoke").last_line()  # reproducible


def test_default_suite_is_big_and_unlike_the_tests() -> None:
    members = SUITES["default"]
    assert len(members) >= 30 and all(m.days >= 90 for m in members)
    assert {m.persona for m in members} >= {"healthy", "mrs_s", "daphne", "john"}
    assert not {m.seed for m in members} & {m.seed for m in SUITES["smoke"]}


def test_unknown_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["eval", "--suite", "nope"]) == 1
    assert "no suite" in capsys.readouterr().err
