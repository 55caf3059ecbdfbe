"""Ground truth: what really happened to a resident, against which alerts are scored.

A ``Scenario`` is one resident's run (simulated, or a real recording) with the
health ``Change``s written into it and the sensor ``Outage``s it had. The simulator
produces them and the evaluation scores detectors against them; both import this
module, which imports nothing of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True)
class Change:
    condition: str
    onset: date
    crisis: date


@dataclass(frozen=True)
class Outage:
    """A sensor ("*": every sensor, the hub) that reported nothing, UTC ms."""

    sensor: str
    start_ms: int
    end_ms: int


@dataclass
class Scenario:
    resident: str
    persona: str
    days: int
    start: date
    changes: list[Change]
    outages: list[Outage] = field(default_factory=list)

    @property
    def end(self) -> date:
        """The first day after the scenario."""
        return self.start + timedelta(days=self.days)


