"""Findings, and the words they are said in: the engine's features and conditions.

``FEATURES`` names every daily feature with its unit, ``CONDITIONS`` says which
features make each condition and which way is worse, and ``Finding`` is what the
learning layer says it found. The helpers here turn a value into words with its
unit and a sensible rounding ("0.6 L", "07:36", "3.3 s"), for the daily model and
its follow-ups alike.

>>> today("water_ml", 640.0), today("first_activity_min", 657.3)
('Water drawn today 0.6 L', 'Up and about today at 10:57')
>>> ordinal(3), ordinal(22), ordinal(13)
('third', '22nd', '13th')
>>> fmt("water_ml", 1440.0), fmt("water_ml", 1440.0, precise=True)
('1.4 L', '1.44 L')
"""

from __future__ import annotations

from dataclasses import dataclass, field

# feature -> (what it is in words, unit kind, floor of the scale, is a count)
FEATURES: dict[str, tuple[str, str, float, bool]] = {
    "water_ml": ("Water drawn", "L", 100.0, False),
    "draws": ("Taps used", "n", 1.0, True),
    "water_morning_ml": ("Water drawn before noon", "L", 60.0, False),
    "water_afternoon_ml": ("Water drawn from noon to 18:00", "L", 60.0, False),
    "water_evening_ml": ("Water drawn after 18:00", "L", 60.0, False),
    "toilet_day": ("Toilet visits in the day", "n", 1.0, True),
    "toilet_night": ("Toilet visits at night", "n", 0.7, True),
    "toilet_dwell_min": ("A toilet visit took", "min", 0.5, False),
    "sit_total_min": ("Time sitting", "min", 30.0, False),
    "sit_count": ("Times sat down", "n", 1.0, True),
    "sit_longest_min": ("Longest time in the chair", "min", 20.0, False),
    "rise_s_median": ("Getting up from the chair took", "s", 0.15, False),
    "bed_night_min": ("Time in bed at night", "min", 20.0, False),
    "out_of_bed_night": ("Times out of bed at night", "n", 0.7, True),
    "first_activity_min": ("Up and about at", "clock", 15.0, False),
    "last_activity_min": ("Settled for the night at", "clock", 15.0, False),
    "night_activity_count": ("Activity at night", "n", 1.0, True),
    "stairs_min": ("Time on the stairs", "min", 0.2, False),
    "hr_mean": ("Heart rate", "bpm", 2.0, False),
}

# condition -> ((feature, +1 when higher is worse / -1 when lower is worse), ...)
CONDITIONS: dict[str, tuple[tuple[str, int], ...]] = {
    "dehydration": (("water_ml", -1), ("draws", -1), ("hr_mean", 1)),
    "uti": (("toilet_day", 1), ("toilet_night", 1)),
    "mobility": (("rise_s_median", 1), ("sit_count", -1), ("first_activity_min", 1),
                 ("last_activity_min", -1), ("stairs_min", 1)),
    "sleep": (("out_of_bed_night", 1), ("night_activity_count", 1), ("bed_night_min", -1)),
}

# sensor -> features that say it reported
SENSORS: dict[str, tuple[str, ...]] = {
    "tap": ("water_ml", "draws"), "toilet": ("toilet_day",), "seat": ("sit_count",),
    "bed": ("bed_night_min",), "stairs": ("stairs_min",), "heart_rate": ("hr_mean",),
}

NON_HEALTH = frozenset({"device"})
WATER_FEATURES = frozenset({"water_ml", "draws", "water_morning_ml", "water_afternoon_ml",
                            "water_evening_ml"})
# Findings for the weekly digest, never a proactive alert: no known health event
# follows them closely enough to act on the day.
DIGEST_ONLY = frozenset({"sleep", "bad_day"})


@dataclass(frozen=True)
class Finding:
    condition: str
    severity: str  # "urgent" | "digest"
    score: float
    text: str  # plain English with the evidence
    series: list[float | None] = field(default_factory=list)  # recent values, oldest first
    follow_up: bool = False  # the same change, still going on after its alert
    subject: str = ""  # what it is about, where a condition has several (a sensor)
    series_of: str = ""  # the feature ``series`` is of (a key of ``FEATURES``)




def fmt(feature: str, v: float, precise: bool = False) -> str:
    """``v`` of ``feature`` in words with its unit; ``precise``: litres to the
    centilitre, where to the decilitre would not tell today from the usual."""
    unit = FEATURES[feature][1]
    if unit == "L":
        return f"{v / 1000:.2f} L" if precise else f"{v / 1000:.1f} L"
    if unit == "clock":
        m = int(round(v)) % 1440
        return f"{m // 60:02d}:{m % 60:02d}"
    if unit == "n":
        return f"{v:.0f}"
    if unit == "s":
        return f"{v:.1f} s"
    if unit == "bpm":
        return f"{v:.0f} bpm"
    return f"{v:.0f} min"


# How a change that goes on is said in a follow-up ("Still drinking less: ...").
STILL = {"dehydration": "drinking less", "uti": "more toilet visits",
         "mobility": "slower than usual"}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
             "ninth", "tenth")


def ordinal(n: int) -> str:
    """``third``, ``22nd``."""
    if 1 <= n <= len(ORDINALS):
        return ORDINALS[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def today(feature: str, v: float, precise: bool = False) -> str:
    """``Water drawn today 0.6 L``, ``Up and about today at 10:57``."""
    label = FEATURES[feature][0]
    if FEATURES[feature][1] == "clock":
        return f"{label.removesuffix(' at')} today at {fmt(feature, v)}"
    return f"{label} today {fmt(feature, v, precise)}"
