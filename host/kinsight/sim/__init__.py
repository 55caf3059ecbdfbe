"""Simulated residents for developing and evaluating detectors.

``simulate`` gives host-level activities over weeks or months with their ground
truth (a Scenario); ``raw_day`` gives the raw sensor signals of part of a day,
as the nodes' firmware consumes them, with the activities they should yield.
"""

from .model import PERSONAS, personas, simulate
from .raw import RawDay, raw_day, render

__all__ = ["PERSONAS", "RawDay", "personas", "raw_day", "render", "simulate"]
