"""A resident's last 60 days as small charts with units and a sentence each.

Drawn on the server as inline SVG (no script, nothing from the internet), from the
stored day features (``service.days.stored_days``); each chart has a text summary
(the last day, the usual range) that a screen reader reads and that says the same
as the picture.

>>> c = chart("water_ml", {date(2024, 6, d): {"water_ml": 1000.0 + d} for d in range(1, 8)})
>>> c.summary
'Water drawn: 1.0 L on 07 Jun; usually 1.0 to 1.0 L over these 7 days.'
>>> c.y_labels, c.x_labels
(('1.0 L', '1.0 L'), ('01 Jun', '07 Jun'))

Days with nothing known break the line:

>>> gap = chart("water_ml", {date(2024, 6, d): {"water_ml": 900.0 + d} for d in (1, 2, 5, 6, 8)})
>>> len(gap.lines), gap.lines[-1]
(3, '314.0,8.0 314.5,8.0')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# feature: (title, unit shown, scale from the stored value, decimals)
SERIES: dict[str, tuple[str, str, float, int]] = {
    "water_ml": ("Water drawn", "L", 0.001, 1),
    "toilet_day": ("Toilet visits by day", "visits", 1.0, 0),
    "toilet_night": ("Toilet visits at night", "visits", 1.0, 0),
    "sit_total_min": ("Time sitting", "h", 1 / 60, 1),
    "rise_s_median": ("Time to stand up", "s", 1.0, 1),
    "bed_night_min": ("Time in bed at night", "h", 1 / 60, 1),
    "stairs_min": ("Time on the stairs", "min", 1.0, 1),
    "hr_mean": ("Heart rate", "bpm", 1.0, 0),
}
_W, _H = 320, 110  # the SVG's viewBox
_X0, _X1, _Y0, _Y1 = 36.0, 314.0, 8.0, 88.0  # the plot inside it, labels around it


@dataclass(frozen=True)
class Chart:
    feature: str
    title: str
    unit: str
    summary: str
    lines: list[str]  # SVG polyline points, one a stretch of consecutive days
    band: tuple[float, float] | None  # y of the usual range (10th to 90th)
    y_labels: tuple[str, str]  # the scale's top and bottom, with the unit
    x_labels: tuple[str, str]  # the first and the last day


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    pos = q * (len(s) - 1)
    i = int(pos)
    j = min(i + 1, len(s) - 1)
    return s[i] + (s[j] - s[i]) * (pos - i)


def chart(feature: str, days: dict[date, dict[str, float]]) -> Chart | None:
    """The chart of ``feature`` over ``days``; None when no day has it. A missing day
    breaks the line: nothing is drawn where nothing was known."""
    title, unit, scale, decimals = SERIES[feature]
    have = sorted((d, f[feature] * scale) for d, f in days.items() if feature in f)
    if not have:
        return None
    first, last = min(days), max(days)
    span = max(1, (last - first).days)
    values = [v for _d, v in have]
    lo, hi = min(values), max(values)
    top = hi if hi > lo else lo + 1

    def y(v: float) -> float:
        return round(_Y1 - (v - lo) / (top - lo) * (_Y1 - _Y0), 1)

    def x(d: date) -> float:
        return round(_X0 + (d - first).days / span * (_X1 - _X0), 1)

    lines: list[list[tuple[float, float]]] = []
    previous: date | None = None
    for d, v in have:
        if previous is None or (d - previous).days > 1:
            lines.append([])
        lines[-1].append((x(d), y(v)))
        previous = d
    usual = (_quantile(values, 0.1), _quantile(values, 0.9))
    fmt = f"{{:.{decimals}f}}"
    day, value = have[-1]
    summary = (f"{title}: {fmt.format(value)} {unit} on {day:%d %b}; usually "
               f"{fmt.format(usual[0])} to {fmt.format(usual[1])} {unit} over these "
               f"{len(have)} days.")
    band = (y(usual[1]), y(usual[0])) if len(values) >= 5 else None
    # A lone day between gaps is a dot: a line of one point draws nothing.
    drawn = [" ".join(f"{px},{py}" for px, py in (pts if len(pts) > 1 else
                                                  [pts[0], (pts[0][0] + 0.5, pts[0][1])]))
             for pts in lines]
    return Chart(feature, title, unit, summary, drawn, band,
                 (f"{fmt.format(top)} {unit}", f"{fmt.format(lo)} {unit}"),
                 (f"{first:%d %b}", f"{last:%d %b}"))


def charts(days: dict[date, dict[str, float]]) -> list[Chart]:
    """Every series the resident has, in ``SERIES`` order."""
    return [c for f in SERIES if (c := chart(f, days)) is not None]
