"""Static HTML reports for a care team: a page per resident and an overview.

``pages`` writes them; ``charts`` draws their inline SVG charts. Nothing is
fetched from a network and the pages carry no JavaScript. They support a
practitioner's judgement; they do not replace it.

May import: kinsight.errors, kinsight.learning.
"""

from __future__ import annotations

from .charts import Series, Span, chart_svg, nice_ticks, sparkline_svg
from .pages import ResidentPage, overview_html, resident_html, write_reports

__all__ = ["ResidentPage", "Series", "Span", "chart_svg", "nice_ticks", "overview_html",
           "resident_html", "sparkline_svg", "write_reports"]
