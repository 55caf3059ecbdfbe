"""Static HTML reports for a care team: one page per resident and an overview.

Charts are inline SVG drawn here (no JavaScript, nothing fetched from a network):
a day is a slot on the x axis, a missing day is left empty (an outage is not a
zero), periods where a simulation changed the resident are shaded and labelled
"simulated", and days with an alert carry a marker. The pages support a
practitioner's judgement; they do not replace it.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from .detect import Alert, condition_words

log = logging.getLogger(__name__)

_BLUE = "#3566a8"
_ORANGE = "#c8741b"
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
    color: str = _BLUE


@dataclass
class ResidentPage:
    rid: str
    name: str
    about: str
    start: date
    days: int
    features: dict[date, dict[str, float]]
    changes: list[Span] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def day_list(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def feature(self, key: str, scale: float = 1.0) -> dict[date, float]:
        return {d: f[key] * scale for d, f in self.features.items() if key in f}

    @property
    def health_alerts(self) -> list[Alert]:
        return [a for a in self.alerts if a.condition != "device"]


# --- scales and charts -----------------------------------------------------------------------


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
            out.append(f'<polyline points="{pts}" fill="none" stroke="{_BLUE}" '
                       'stroke-width="1.3"/>')
    out.append("</svg>")
    return "".join(out)


# --- pages ----------------------------------------------------------------------------------

_CSS = """
body { font-family: sans-serif; margin: 24px auto; max-width: 820px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.note { color: #555; font-size: 13px; } .judgement { background: #eef3fa; padding: 8px 12px;
border-left: 4px solid #3566a8; font-size: 14px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
td, th { border-bottom: 1px solid #ddd; padding: 5px 6px; text-align: left; vertical-align: top; }
.urgent { color: #a52a1e; font-weight: bold; } .chart { margin: 14px 0; }
"""

_JUDGEMENT = ("These pages support a practitioner's judgement; they do not replace it. "
              "A change in someone's pattern is a reason to ask how they are, not a diagnosis.")


def _doc(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def charts(page: ResidentPage) -> list[str]:
    """The resident's charts, as <svg> strings, in the page's order."""
    days = page.day_list
    marks: dict[date, str] = {}
    for a in page.health_alerts:
        marks[a.day] = (marks.get(a.day, "") + f"{condition_words(a.condition)}: "
                        f"{a.text}\n").strip()
    common = {"spans": page.changes, "marks": marks}
    hr = page.feature("hr_mean")
    out = [
        chart_svg(days, [Series("water drawn", page.feature("water_ml", 0.001))],
                  title="Water drawn at the tap, each day", unit="litres", **common),
        chart_svg(days, [Series("in the day", page.feature("toilet_day")),
                         Series("at night", page.feature("toilet_night"), color=_ORANGE)],
                  title="Toilet visits, day and night", unit="visits", whole=True, **common),
        chart_svg(days, [Series("sitting", page.feature("sit_total_min", 1 / 60))],
                  title="Time sitting in the chair, each day", unit="hours", **common),
        chart_svg(days, [Series("getting up", page.feature("rise_s_median"), "line")],
                  title="Getting up from the chair (sit-to-stand), typical time",
                  unit="seconds", zero_based=False, **common),
        chart_svg(days, [Series("in bed", page.feature("bed_night_min", 1 / 60))],
                  title="Time in bed at night", unit="hours", **common),
    ]
    if hr:
        out.append(chart_svg(days, [Series("heart rate", hr, "line", _ORANGE)],
                             title="Resting heart rate (wearable), daily average",
                             unit="beats a minute", zero_based=False, **common))
    return out


def resident_html(page: ResidentPage) -> str:
    end = page.start + timedelta(days=page.days - 1)
    body = ['<p class="note"><a href="index.html">&larr; all residents</a></p>',
            f"<h1>{html.escape(page.name)}</h1>",
            f'<p>{html.escape(page.about)}. {page.start:%d %b} to {end:%d %b %Y}.</p>',
            f'<p class="judgement">{_JUDGEMENT}</p>',
            "<h2>Alerts</h2>"]
    health = page.health_alerts
    if not health:
        body.append("<p>No health alerts in these days: nothing in this resident's patterns "
                    "changed enough to raise one.</p>")
    body.extend(_alert_table(health))
    kit = [a for a in page.alerts if a.condition == "device"]
    if kit:
        body.append("<h2>Equipment</h2><p class=\"note\">For the field team; not health "
                    "alerts.</p>")
        body.extend(_alert_table(kit))
    body.append("<h2>Days</h2>")
    body.append('<p class="note">Each bar or point is one day; an empty day had no data. '
                + ("Shaded: when the simulation changed this resident (simulated ground truth, "
                   "to judge the alerts by). " if page.changes else "")
                + "A red marker above a chart: a day with a health alert.</p>")
    body.extend(f'<div class="chart">{svg}</div>' for svg in charts(page))
    body.extend(f'<p class="note">{html.escape(n)}</p>' for n in page.notes)
    return _doc(f"Kinsight: {page.name}", body)


def _alert_table(alerts: Sequence[Alert]) -> list[str]:
    if not alerts:
        return []
    rows = ["<table><tr><th>Day</th><th>What</th><th>How pressing</th><th>Why</th></tr>"]
    for a in alerts:
        sev = "urgent" if a.severity == "urgent" else "for the weekly review"
        rows.append(f"<tr><td>{a.day:%a %d %b}</td><td>{html.escape(condition_words(a.condition))}"
                    f'</td><td class="{html.escape(a.severity)}">{sev}</td>'
                    f"<td>{html.escape(a.text)}</td></tr>")
    rows.append("</table>")
    return rows


def overview_html(pages: Sequence[ResidentPage], today: date) -> str:
    week = today - timedelta(days=6)
    body = ["<h1>Kinsight: residents</h1>",
            f"<p>Up to {today:%A %d %B %Y}. Simulated residents, for a demonstration.</p>",
            f'<p class="judgement">{_JUDGEMENT}</p>',
            "<table><tr><th>Resident</th><th>Health alerts, last 7 days</th>"
            "<th>Water drawn</th><th>Toilet visits</th><th>Getting up</th></tr>"]
    for p in pages:
        recent = [a for a in p.health_alerts if a.day >= week]
        if recent:
            last = recent[-1]
            alerts = (f"<b>{len(recent)}</b>: {html.escape(condition_words(last.condition))}"
                      f" ({last.day:%d %b}) &ndash; {html.escape(last.text)}")
        else:
            alerts = f"none ({len(p.health_alerts)} in all {p.days} days)"
        days = p.day_list
        toilet = {d: f.get("toilet_day", 0.0) + f.get("toilet_night", 0.0)
                  for d, f in p.features.items() if "toilet_day" in f or "toilet_night" in f}
        body.append(
            f'<tr><td><a href="{html.escape(p.rid)}.html">{html.escape(p.name)}</a><br>'
            f'<span class="note">{html.escape(p.about)}</span></td><td>{alerts}</td>'
            f"<td>{sparkline_svg(days, p.feature('water_ml'), label='water drawn')}</td>"
            f"<td>{sparkline_svg(days, toilet, label='toilet visits')}</td>"
            f"<td>{sparkline_svg(days, p.feature('rise_s_median'), label='rise time')}</td>"
            "</tr>")
    body.append("</table>")
    body.append('<p class="note">Sparklines: the whole period, each on its own scale. '
                "Select a resident for their charts and the reasons for each alert.</p>")
    return _doc("Kinsight: residents", body)


def write_reports(folder: Path, pages: Sequence[ResidentPage], today: date) -> Path:
    """Write index.html and one page per resident; the overview's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in pages:
        (folder / f"{p.rid}.html").write_text(resident_html(p), encoding="utf-8")
    overview = folder / "index.html"
    overview.write_text(overview_html(pages, today), encoding="utf-8")
    log.info("wrote %d resident pages and %s", len(pages), overview)
    return overview
