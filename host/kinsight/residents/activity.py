"""One thing a resident did, as the host sees it: the common currency of the simulator,
the importer of real histories, the daily features and the detectors."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Activity:
    """An episode on one sensor, in UTC milliseconds (time zones are the reader's).

    ``sensor``: seat, bed, tap, toilet, stairs, door, presence, fridge, heart_rate, ...
    ``value``: tap: ml drawn; heart_rate: bpm; seat: rise time in s of a sit episode
    (None if unknown); otherwise None.
    """

    resident: str
    sensor: str
    start_ms: int
    end_ms: int
    value: float | None = None
    room: str | None = None
