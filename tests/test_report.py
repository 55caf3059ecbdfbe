"""The report's chart code: scales, empty series, missing days."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta

import pytest

from kinsight.learning import Alert
from kinsight.reports import (
    ResidentPage,
    Series,
    Span,
    chart_svg,
    nice_ticks,
    overview_html,
    resident_html,
    sparkline_svg,
)

DAYS = [date(2024, 3, 4) + timedelta(days=i) for i in range(10)]


@pytest.mark.parametrize(("lo", "hi", "whole"), [(0, 1.7, False), (0, 2400, False),
                                                 (1.9, 2.6, False), (0, 9, True), (62, 95, False),
                                                 (0, 0, False), (5, 5, True)])
def test_ticks_cover_the_range_with_round_even_steps(lo, hi, whole):
    ticks = nice_ticks(lo, hi, whole=whole)
    assert ticks[0] <= lo and ticks[-1] >= hi and ticks[-1] > ticks[0]
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    assert 2 <= len(ticks) <= 7
    if whole:
        assert all(float(t).is_integer() for t in ticks)


def test_ticks_refuse_non_finite_bounds():
    with pytest.raises(ValueError):
        nice_ticks(0, float("nan"))


def test_an_empty_series_says_no_data():
    svg = chart_svg(DAYS, [Series("water", {})], title="Water", unit="L")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "no data for these days" in svg
    assert "no data" in sparkline_svg(DAYS, {}, label="water")


def test_missing_days_are_gaps_not_zeros():
    values = {d: 1.0 + i for i, d in enumerate(DAYS) if i not in (3, 4)}
    bars = chart_svg(DAYS, [Series("water", values)], title="Water", unit="L")
    assert bars.count("<rect x=") - bars.count('width="10"') == len(values)  # legend aside
    line = chart_svg(DAYS, [Series("rise", values, "line")], title="Rise", unit="s",
                     zero_based=False)
    assert line.count("<polyline") == 2  # broken at the missing days


def test_bars_scale_to_the_axis():
    values = {DAYS[0]: 2.0, DAYS[1]: 1.0}
    svg = chart_svg(DAYS, [Series("water", values)], title="Water", unit="L", height=190)
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill="#3566a8"><title>', svg)]
    assert len(heights) == 2 and heights[0] == pytest.approx(2 * heights[1], rel=0.02)


def test_spans_and_marks_show_and_escape():
    svg = chart_svg(DAYS, [Series("w", {DAYS[0]: 1.0})], title="<W>", unit="L",
                    spans=[Span(DAYS[2], DAYS[5], "simulated change: uti")],
                    marks={DAYS[3]: "a & b"})
    assert "simulated change: uti" in svg and "a &amp; b" in svg and "&lt;W&gt;" in svg
    assert "<W>" not in svg


def test_pages_say_when_there_is_no_alert():
    feats = {d: {"water_ml": 1500.0, "toilet_day": 5.0} for d in DAYS}
    quiet = ResidentPage("r1", "Resident 1", "well", DAYS[0], len(DAYS), feats)
    page = resident_html(quiet)
    assert "No health alerts" in page and page.count("<svg") == 5
    alert = Alert("r2", DAYS[-1], "uti", "urgent", "Toilet visits today 9; usually 3 to 5")
    busy = ResidentPage("r2", "Resident 2", "uti", DAYS[0], len(DAYS), feats, alerts=[alert])
    assert "Toilet visits today 9" in resident_html(busy)
    over = overview_html([quiet, busy], DAYS[-1])
    assert "support a practitioner's judgement" in over
    assert 'href="r1.html"' in over and "Toilet visits today 9" in over
