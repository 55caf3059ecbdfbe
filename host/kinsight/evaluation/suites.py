"""Suites of simulated residents: who is simulated, for how long, with which changes.

``SUITES`` names them: ``default`` (36 residents over 120 days), ``holdout`` (the
same mix with other seeds, for checking that settings were not tuned to the
default's seeds) and ``smoke`` (4 residents over 40 days). ``run_suite`` simulates
one and scores a detector on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..learning import Detector, EngineDetector
from ..residents.activity import Activity
from ..simulation import Scenario, simulate
from .scoring import Report, evaluate


@dataclass(frozen=True)
class Member:
    persona: str
    seed: int
    days: int
    start: date
    variant: dict[str, Any] = field(default_factory=dict)


# Real homes' quirks, in turn: a bathroom door contact and a stuck sensor; PIR bursts
# and a chattering sensor; taps without volume and a resident often out; clean sensors.
HOMES: tuple[tuple[str, ...], ...] = (("door_bathroom", "stuck"), ("pir_bursts", "chatter"),
                                      ("no_volume", "outings"), ())


def _default_suite() -> list[Member]:
    """36 residents x 120 days: 12 healthy, 8 each of Mrs S, Daphne and John, with
    varied starts, severities and routines, three in four in homes with real homes'
    quirks (``HOMES``). Seeds 1000 and up (tests use < 1000)."""
    members: list[Member] = []
    mix = ["healthy"] * 12 + ["mrs_s"] * 8 + ["daphne"] * 8 + ["john"] * 8
    severities = (1.0, 0.8, 1.2, 0.6)
    for i, persona in enumerate(mix):
        start = date(2024, 1, 8) + timedelta(days=23 * i)
        variant: dict[str, Any] = {}
        if persona != "healthy":
            variant["severity"] = severities[i % len(severities)]
        if persona == "healthy" and i % 3 == 1:
            variant.update(wake_min=6 * 60, settle_min=21 * 60 + 30)  # an early bird
        if persona == "healthy" and i % 3 == 2:
            variant.update(wake_min=9 * 60, settle_min=23 * 60 + 45, water_ml=1200)
        if HOMES[i % len(HOMES)]:
            variant["quirks"] = HOMES[i % len(HOMES)]
        members.append(Member(persona, 1000 + i, 120, start, variant))
    return members


def _smoke_suite() -> list[Member]:
    """4 residents x 40 days, one of each persona."""
    start = date(2024, 3, 4)
    return [Member(p, i + 1, 40, start) for i, p in
            enumerate(["healthy", "mrs_s", "daphne", "john"])]


SUITES: dict[str, list[Member]] = {"default": _default_suite(), "smoke": _smoke_suite()}
SUITES["holdout"] = [Member(m.persona, m.seed + 1000, m.days, m.start, m.variant) for m in SUITES["default"]]  # noqa: E501


def suite_runs(name: str) -> Iterable[tuple[Scenario, list[Activity]]]:
    if name not in SUITES:
        raise KeyError(f"no suite {name!r} (one of {', '.join(SUITES)})")
    for m in SUITES[name]:
        yield simulate(m.persona, m.seed, m.days, m.start, **m.variant)


def run_suite(name: str, detector: Detector | None = None) -> Report:
    """Simulate the suite's residents and evaluate ``detector`` (the learning engine,
    ``learning.EngineDetector()``, when None) on them."""
    if detector is None:
        detector = EngineDetector()
    return evaluate(suite_runs(name), detector)
