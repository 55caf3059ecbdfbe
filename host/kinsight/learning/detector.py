"""Detectors: a day's features in, alerts out.

BaselineDetector is deliberately simple, fixed thresholds on daily features,
and stays as the baseline that a learning detector has to beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

# How a condition is named to carers and practitioners.
CONDITION_WORDS = {
    "dehydration": "Drinking less (possible dehydration)",
    "uti": "More toilet visits (possible urinary infection)",
    "mobility": "Mobility",
    "sleep": "Nights",
    "inactivity": "Up later than usual",
    "prolonged_sitting": "Sitting for a very long time",
    "bad_day": "A poor night, then a slow day",
    "device": "Equipment (not a health alert)",
}


def condition_words(condition: str) -> str:
    return CONDITION_WORDS.get(condition, condition.replace("_", " ").capitalize())


@dataclass(frozen=True)
class Alert:
    resident: str
    day: date
    condition: str
    severity: str  # "urgent" | "digest"
    text: str  # plain English with the evidence


class Detector(Protocol):
    def score_day(self, resident: str, day: date, features: dict[str, float]) -> list[Alert]:
        """Called once per resident-day, days in order; features may be empty."""
        ...


@dataclass
class BaselineDetector:
    """Fixed thresholds, per resident:

    * dehydration: water drawn under ``low_water_ml`` two days running (urgent
      under ``urgent_water_ml`` on the second day);
    * uti: ``night_toilet`` or more toilet visits in the night, or day visits
      ``toilet_rise`` times a fixed normal of ``normal_toilet_day``;
    * mobility: median sit-to-stand rise time over ``slow_rise_s``.

    After an alert the same condition stays quiet for ``refractory_days``.
    Missing features never alert (an outage is not a change).
    """

    low_water_ml: float = 700
    urgent_water_ml: float = 400
    night_toilet: float = 3
    normal_toilet_day: float = 6
    toilet_rise: float = 1.5
    slow_rise_s: float = 3.5
    refractory_days: int = 7
    _low_water: dict[str, tuple[date, float]] = field(default_factory=dict, init=False, repr=False)
    _last: dict[tuple[str, str], date] = field(default_factory=dict, init=False, repr=False)

    def score_day(self, resident: str, day: date, features: dict[str, float]) -> list[Alert]:
        found: list[tuple[str, str, str]] = []
        water = features.get("water_ml")
        if water is not None:
            before = self._low_water.get(resident)
            if water < self.low_water_ml:
                if before is not None and before[0] == day - timedelta(days=1):
                    sev = "urgent" if water < self.urgent_water_ml else "digest"
                    found.append(("dehydration", sev,
                                  f"Water drawn today {water / 1000:.1f} L and yesterday "
                                  f"{before[1] / 1000:.1f} L; the threshold is "
                                  f"{self.low_water_ml / 1000:.1f} L a day"))
                self._low_water[resident] = (day, water)
            else:
                self._low_water.pop(resident, None)
        night = features.get("toilet_night")
        dayv = features.get("toilet_day")
        if night is not None and night >= self.night_toilet:
            found.append(("uti", "digest", f"{night:.0f} toilet visits last night; the "
                          f"threshold is {self.night_toilet:.0f}"))
        elif dayv is not None and dayv >= self.toilet_rise * self.normal_toilet_day:
            found.append(("uti", "digest", f"{dayv:.0f} toilet visits today; normal is taken "
                          f"as {self.normal_toilet_day:.0f}"))
        rise = features.get("rise_s_median")
        if rise is not None and rise > self.slow_rise_s:
            found.append(("mobility", "digest", f"Getting up from the chair took {rise:.1f} s "
                          f"(median today); the threshold is {self.slow_rise_s:.1f} s"))
        alerts = []
        for condition, severity, text in found:
            last = self._last.get((resident, condition))
            if last is not None and (day - last).days < self.refractory_days:
                continue
            self._last[(resident, condition)] = day
            alerts.append(Alert(resident, day, condition, severity, text))
        return alerts
