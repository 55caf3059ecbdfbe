"""Simulation: residents over months with their ground truth, and nodes under MicroPython.

``truth`` holds the ground-truth types (``Scenario``, ``Change``, ``Outage``), the
lowest module of simulation and evaluation alike; ``simulator`` lives the personas
of the case studies day by day and says what really happened; ``raw_signals``
renders their days as the raw sensor signals a node would see; ``micropython``
runs the real firmware under the MicroPython unix port (demo, benches, tests).

May import: kinsight.errors, kinsight.residents.
"""

from __future__ import annotations

from .raw_signals import RawDay, raw_day, render
from .simulator import PERSONAS, Persona, Routine, personas, simulate
from .truth import Change, Outage, Scenario

__all__ = ["PERSONAS", "Change", "Outage", "Persona", "RawDay", "Routine", "Scenario",
           "personas", "raw_day", "render", "simulate"]
