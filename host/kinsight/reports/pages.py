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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from ..learning import Alert, condition_words
from .charts import ORANGE, Series, Span, chart_svg, sparkline_svg

log = logging.getLogger(__name__)

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
                         Series("at night", page.feature("toilet_night"), color=ORANGE)],
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
        out.append(chart_svg(days, [Series("heart rate", hr, "line", ORANGE)],
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
