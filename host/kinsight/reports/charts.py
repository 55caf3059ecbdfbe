"""Inline SVG charts for the reports: no JavaScript, nothing fetched from a network.

A day is a slot on the x axis, a missing day is left empty (an outage is not a
zero), shaded ``Span``s mark the periods a simulation changed the resident, and
days with an alert carry a marker.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

BLUE = "#3566a8"
ORANGE = "#c8741b"
_GREY = "#777"


@dataclass(frozen=True)
class Span:
    start: date  # first day shaded
    end: date  # first day after the shading
    label: str


@dataclass(frozen=True)
class Series:
    label: str
    values: dict[date, float]
    kind: str = "bar"  # "bar" or "line"
    color: str = BLUE


def nice_ticks(lo: float, hi: float, count: int = 4, whole: bool = False) -> list[float]:
    """Round tick values covering lo..hi, about ``count`` steps of 1, 2, 2.5 or 5 x 10^k
    (with ``whole``, for counts: whole-number steps, no 2.5)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("the scale needs finite bounds")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    steps = [m * mag for m in (1, 2, 2.5, 5, 10)]
    if whole:
        steps = [max(1.0, x) for x in steps if x >= 1 and float(x).is_integer()] or [1.0]
    step = next((x for x in steps if x >= raw - 1e-12), steps[-1])
    first = math.floor(lo / step + 1e-9) * step
    ticks = []
    t = first
    while t < hi + step - 1e-9 * step:
        ticks.append(round(t, 10))
        if t >= hi - 1e-9 * step:
            break
        t += step
    return ticks


def _fmt_tick(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:g}"


def chart_svg(days: Sequence[date], series: Sequence[Series], *, title: str, unit: str,
              spans: Sequence[Span] = (), marks: dict[date, str] | None = None,
              zero_based: bool = True, whole: bool = False, width: int = 760,
              height: int = 190) -> str:
    """One chart as an <svg>: bars or lines of each series over ``days``."""
    left, right, top, bottom = 46, 12, 26, 30
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(days))
    slot = pw / n
    index = {d: i for i, d in enumerate(days)}
    values = [v for s in series for d, v in s.values.items() if d in index and math.isfinite(v)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="14" font-size="13" font-weight="bold">'
           f'{html.escape(title)}</text>']
    lx = width - right
    for s in reversed(series):  # legend, right-aligned
        text = html.escape(s.label)
        lx -= 7 * len(s.label) + 22
        out.append(f'<rect x="{lx}" y="5" width="10" height="10" fill="{s.color}"/>'
                   f'<text x="{lx + 14}" y="14">{text}</text>')
    for sp in spans:
        i0 = max(0, (sp.start - days[0]).days) if days else 0
        i1 = min(n, (sp.end - days[0]).days) if days else 0
        if i1 <= i0:
            continue
        x = left + i0 * slot
        out.append(f'<rect x="{x:.1f}" y="{top}" width="{(i1 - i0) * slot:.1f}" height="{ph}" '
                   f'fill="#f4d9b0" opacity="0.6"><title>{html.escape(sp.label)}</title></rect>'
                   f'<text x="{x + 3:.1f}" y="{top + 11}" fill="#8a5a14" font-size="10">'
                   f'{html.escape(sp.label)}</text>')
    if not values:
        out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
                   f'stroke="#ccc"/><text x="{left + pw / 2}" y="{top + ph / 2}" '
                   f'text-anchor="middle" fill="{_GREY}">no data for these days</text></svg>')
        return "".join(out)
    lo = 0.0 if zero_based else min(values)
    hi = max(values)
    if not zero_based:
        pad = (hi - lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    ticks = nice_ticks(lo, hi, whole=whole)
    y0, y1 = ticks[0], ticks[-1]

    def y(v: float) -> float:
        return top + ph - (v - y0) / (y1 - y0) * ph

    for t in ticks:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
                   f'stroke="#e3e3e3"/><text x="{left - 5}" y="{y(t) + 4:.1f}" '
                   f'text-anchor="end" fill="{_GREY}">{_fmt_tick(t)}</text>')
    out.append(f'<text x="4" y="{top + ph / 2}" fill="{_GREY}" transform="rotate(-90 10 '
               f'{top + ph / 2})" text-anchor="middle">{html.escape(unit)}</text>')
    for i, d in enumerate(days):  # a label each Monday
        if d.weekday() == 0:
            x = left + (i + 0.5) * slot
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" '
                       f'stroke="{_GREY}"/><text x="{x:.1f}" y="{top + ph + 16}" '
                       f'text-anchor="middle" fill="{_GREY}">{d.day} {d:%b}</text>')
    bars = [s for s in series if s.kind == "bar"]
    bw = slot * 0.8 / max(1, len(bars))
    for k, s in enumerate(bars):
        for d, v in sorted(s.values.items()):
            if d not in index or not math.isfinite(v):
                continue
            x = left + index[d] * slot + slot * 0.1 + k * bw
            yv, yb = y(max(v, y0)), y(max(y0, min(0.0, y1)))
            out.append(f'<rect x="{x:.1f}" y="{min(yv, yb):.1f}" width="{bw:.1f}" '
                       f'height="{abs(yb - yv):.1f}" fill="{s.color}"><title>{d:%a %d %b}: '
                       f'{v:.1f} {html.escape(unit)}</title></rect>')
    for s in series:
        if s.kind != "line":
            continue
        for run in _runs(days, s.values):
            pts = " ".join(f"{left + (index[d] + 0.5) * slot:.1f},{y(v):.1f}" for d, v in run)
            if len(run) == 1:
                d, v = run[0]
                out.append(f'<circle cx="{left + (index[d] + 0.5) * slot:.1f}" cy="{y(v):.1f}" '
                           f'r="2" fill="{s.color}"/>')
            else:
                out.append(f'<polyline points="{pts}" fill="none" stroke="{s.color}" '
                           'stroke-width="1.8"/>')
    for d, text in sorted((marks or {}).items()):
        if d in index:
            x = left + (index[d] + 0.5) * slot
            out.append(f'<path d="M{x - 4:.1f},{top - 6} L{x + 4:.1f},{top - 6} L{x:.1f},{top} Z" '
                       f'fill="#c0392b"><title>{html.escape(text)}</title></path>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" '
               f'stroke="{_GREY}"/></svg>')
    return "".join(out)


def _runs(days: Sequence[date], values: dict[date, float]) -> list[list[tuple[date, float]]]:
    """Consecutive days with values: a line breaks where a day is missing."""
    runs: list[list[tuple[date, float]]] = []
    current: list[tuple[date, float]] = []
    for d in days:
        v = values.get(d)
        if v is None or not math.isfinite(v):
            if current:
                runs.append(current)
            current = []
        else:
            current.append((d, v))
    if current:
        runs.append(current)
    return runs


def sparkline_svg(days: Sequence[date], values: dict[date, float], *, label: str,
                  width: int = 150, height: int = 30) -> str:
    present = [v for d in days if (v := values.get(d)) is not None and math.isfinite(v)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(label)}">']
    if not present:
        out.append(f'<text x="2" y="{height - 10}" font-size="10" fill="{_GREY}">no data</text>'
                   '</svg>')
        return "".join(out)
    lo, hi = min(present), max(present)
    span = (hi - lo) or 1.0
    step = width / max(1, len(days))
    for run in _runs(days, values):
        pts = " ".join(f"{(days.index(d) + 0.5) * step:.1f},"
                       f"{height - 3 - (v - lo) / span * (height - 6):.1f}" for d, v in run)
        if len(run) > 1:
            out.append(f'<polyline points="{pts}" fill="none" stroke="{BLUE}" '
                       'stroke-width="1.3"/>')
    out.append("</svg>")
    return "".join(out)
