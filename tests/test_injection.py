"""Real histories made fit for evaluation: extension by whole days, injected changes."""

from __future__ import annotations

import statistics
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from kinsight.evaluation import injection
from kinsight.learning import daily_features
from kinsight.residents import Activity, HistoryError, history_import

LONDON = ZoneInfo("Europe/London")
T = "Europe/London"


def synthetic(first: date, days: int, resident: str = "r1") -> list[Activity]:
    """A regular resident; every event's value is the ordinal of the day it belongs to."""
    out = []
    for i in range(days):
        d = first + timedelta(days=i)
        j = i % 5  # minutes of jitter
        tag = float(d.toordinal())

        def add(sensor: str, h0: float, minutes: float, value: float = tag, d: date = d,
                j: int = j) -> None:
            s = history_import.at(d, h0 * 60 + j, LONDON)
            out.append(Activity(resident, sensor, s, s + int(minutes * 60_000), value))

        add("bed", 0.5, 7 * 60)  # 00:30 .. 07:30
        for h in (3, 8, 12, 18):
            add("toilet", h, 1)
        for h in (8.2, 13, 19):
            add("tap", h, 0.5, 300 + tag % 2)
        add("seat", 9, 120)
        add("seat", 14, 60 if d.weekday() < 5 else 90)
        add("door", 16, 0.1)
    return out


def by_day(acts: list[Activity]) -> dict[date, list[Activity]]:
    out: dict[date, list[Activity]] = {}
    for a in acts:
        out.setdefault(history_import.local_day(a.start_ms, LONDON), []).append(a)
    return out


def test_extension_keeps_weekdays_and_weekends_and_reaches_60_days():
    first = date(2024, 3, 4)  # a Monday; the extension crosses the clocks going forward
    rec = synthetic(first, 14)
    rec.append(Activity("r1", "bed", history_import.at(first + timedelta(days=14), 30, LONDON),
                        history_import.at(first + timedelta(days=14), 400, LONDON)))  # partial day
    ext = injection.extend_days(rec, 60, seed=3, tz=T)
    days = by_day(ext)
    assert sorted(days) == [first + timedelta(days=i) for i in range(60)]
    sources = set()
    for d, acts in days.items():
        src = {date.fromordinal(int(a.value)) for a in acts if a.value is not None
               and a.sensor != "tap"}
        assert len(src) == 1, d  # whole days
        s = src.pop()
        sources.add(s)
        assert s.weekday() >= 5 if d.weekday() >= 5 else s.weekday() < 5
        if d < first + timedelta(days=14):
            assert s == d  # the real days stay as they were
        else:
            assert first <= s < first + timedelta(days=14)
            # same wall-clock times and lengths as the source day
            def key(a: Activity) -> tuple:
                t = history_import.local(a.start_ms, LONDON)
                return (a.sensor, t.hour, t.minute, a.end_ms - a.start_ms)
            assert sorted(map(key, acts)) == sorted(map(key, by_day(rec)[s]))
    assert len(sources) > 8
    assert ext == injection.extend_days(rec, 60, seed=3, tz=T)
    assert ext != injection.extend_days(rec, 60, seed=4, tz=T)
    assert len(injection.extend_days(rec, 10, seed=3, tz=T)) == len(rec) - 1  # long enough


# --- injected changes, seen through the daily features ---------------------------------------


@pytest.fixture(scope="module")
def base() -> list[Activity]:
    return synthetic(date(2024, 1, 1), 40)


DAY = date(2024, 1, 25)


def changed_days(before: dict, after: dict) -> set[date]:
    return {d for d in set(before) | set(after) if before.get(d) != after.get(d)}


def test_dehydration_removes_two_days_of_taps(base):
    f0 = daily_features(base, T)
    f1 = daily_features(injection.inject(base, "dehydration", DAY, T), T)
    span = {DAY, DAY + timedelta(days=1)}
    assert changed_days(f0, f1) == span
    for d in span:
        assert f0[d]["draws"] == 3 and f1[d].get("draws", 0) == 0
        assert f1[d].get("water_ml", 0) == 0


def test_uti_doubles_toilet_visits_with_two_more_at_night(base):
    after = injection.inject(base, "uti", DAY, T)
    f0, f1 = daily_features(base, T), daily_features(after, T)
    span = [DAY + timedelta(days=i) for i in range(3)]
    b0 = by_day(base)
    b1 = by_day(after)
    for d in span:
        n0 = sum(a.sensor == "toilet" for a in b0[d])
        assert sum(a.sensor == "toilet" for a in b1[d]) == 2 * n0 + 2
        assert f1[d]["toilet_night"] >= f0[d]["toilet_night"] + 2
        assert f1[d]["toilet_day"] == 2 * f0[d]["toilet_day"]
    assert changed_days(f0, f1) <= set(span) | {span[-1] + timedelta(days=1)}
    toilets = sorted((a.start_ms, a.end_ms) for a in after if a.sensor == "toilet")
    assert all(e0 <= s1 for (_, e0), (s1, _) in zip(toilets[:-1], toilets[1:], strict=True))


def test_inactivity_four_hours_after_usual_getup(base):
    usual = statistics.median(7 * 60 + 30 + (i % 5) for i in range(24))  # days before DAY
    assert injection.usual_getup_minute([a for a in base if a.start_ms < history_import.at(
        DAY, 0, LONDON)], T) == usual
    after = injection.inject(base, "inactivity", DAY, T)
    f0, f1 = daily_features(base, T), daily_features(after, T)
    assert changed_days(f0, f1) == {DAY}
    assert f1[DAY]["first_activity_min"] == pytest.approx(usual + 240)
    w0 = history_import.at(DAY, usual, LONDON)
    assert not [a for a in after if a.sensor != "bed" and a.end_ms > w0
                and a.start_ms < w0 + 4 * 3600_000]


def test_prolonged_sitting_is_six_hours_longer_than_usual(base):
    after = injection.inject(base, "prolonged_sitting", DAY, T)
    f0, f1 = daily_features(base, T), daily_features(after, T)
    assert changed_days(f0, f1) == {DAY}
    seats = [a for a in by_day(after)[DAY] if a.sensor == "seat"]
    assert max(a.end_ms - a.start_ms for a in seats) == (120 + 360) * 60_000
    # the afternoon episode and the door fell inside the long sit
    assert f1[DAY]["sit_count"] == 1
    assert f1[DAY]["sit_total_min"] == pytest.approx(480)
    assert f0[DAY]["sit_total_min"] == pytest.approx(180)


def test_unknown_condition_is_refused(base):
    with pytest.raises(HistoryError, match="unknown condition"):
        injection.inject(base, "flu", DAY, T)

