"""The simulator: seeded, personas change around their onsets, healthy ones do not,
outages leave gaps."""

from __future__ import annotations

import statistics
from datetime import date, timedelta

import pytest

from kinsight.learning import daily_features
from kinsight.residents import Activity
from kinsight.simulation import personas, simulate

START = date(2024, 3, 4)


def _mean(feats: dict[date, dict[str, float]], key: str, days: list[date]) -> float:
    return statistics.fmean(feats[d][key] for d in days if d in feats and key in feats[d])


def test_same_seed_same_activities_other_seed_other() -> None:
    a = simulate("john", 7, 30, START)
    b = simulate("john", 7, 30, START)
    c = simulate("john", 8, 30, START)
    assert a == b
    assert a[1] != c[1]
    assert set(personas()) >= {"healthy", "mrs_s", "daphne", "john"}


def test_unknown_persona_is_refused() -> None:
    with pytest.raises(ValueError, match="no persona"):
        simulate("nobody", 1, 10, START)


def _before_after(persona: str, seed: int, condition: str
                  ) -> tuple[dict[date, dict[str, float]], list[date], list[date]]:
    scenario, acts = simulate(persona, seed, 60, START, outages=False, onset_day=15,
                              episodes=1)
    (change,) = scenario.changes
    assert change.condition == condition
    assert change.onset == START + timedelta(days=15) and change.crisis > change.onset
    feats = daily_features(acts)
    span = (change.crisis - change.onset).days
    before = [change.onset - timedelta(days=k) for k in range(1, 11)]
    # The last third of the ramp, before the crisis.
    late = [change.crisis - timedelta(days=k) for k in range(1, max(2, span // 3) + 1)]
    return feats, before, late


@pytest.mark.parametrize("seed", [3, 4])
def test_mrs_s_drinks_less_and_heart_rate_rises_before_readmission(seed: int) -> None:
    feats, before, late = _before_after("mrs_s", seed, "dehydration")
    assert _mean(feats, "water_ml", late) < 0.7 * _mean(feats, "water_ml", before)
    assert _mean(feats, "hr_mean", late) > _mean(feats, "hr_mean", before) + 6
    assert (_mean(feats, "night_activity_count", late)
            > _mean(feats, "night_activity_count", before))


@pytest.mark.parametrize("seed", [3, 4])
def test_daphne_visits_the_toilet_more_before_a_uti(seed: int) -> None:
    feats, before, late = _before_after("daphne", seed, "uti")
    assert _mean(feats, "toilet_night", late) > _mean(feats, "toilet_night", before) + 1
    assert _mean(feats, "toilet_day", late) > 1.3 * _mean(feats, "toilet_day", before)
    assert _mean(feats, "stairs_min", before) > 3  # long on the stairs, every day


@pytest.mark.parametrize("seed", [3, 4])
def test_a_utis_symptoms_come_on_within_two_days_and_stay(seed: int) -> None:
    scenario, acts = simulate("daphne", seed, 60, START, outages=False, onset_day=15,
                              episodes=1, lead_days=8)
    (change,) = scenario.changes
    feats = daily_features(acts)
    before = [change.onset - timedelta(days=k) for k in range(1, 11)]
    # from the second day on, not only at the end of the lead
    early = [change.onset + timedelta(days=k) for k in range(2, 7)]
    assert _mean(feats, "toilet_day", early) > 1.5 * _mean(feats, "toilet_day", before)
    assert _mean(feats, "toilet_night", early) > _mean(feats, "toilet_night", before) + 1


@pytest.mark.parametrize("seed", [3, 4])
def test_john_rises_slower_and_moves_less(seed: int) -> None:
    feats, before, late = _before_after("john", seed, "mobility")
    assert _mean(feats, "rise_s_median", late) > _mean(feats, "rise_s_median", before) + 1.2
    assert _mean(feats, "sit_count", late) < _mean(feats, "sit_count", before)


def test_crisis_is_followed_by_a_hospital_stay_without_data() -> None:
    scenario, acts = simulate("mrs_s", 5, 60, START, outages=False, onset_day=10, episodes=1)
    feats = daily_features(acts)
    crisis = scenario.changes[0].crisis
    assert crisis not in feats or "water_ml" not in feats[crisis]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_healthy_residents_have_no_changes_and_stay_level(seed: int) -> None:
    scenario, acts = simulate("healthy", seed, 60, START, outages=False)
    assert scenario.changes == []
    feats = daily_features(acts)
    days = sorted(feats)
    first, last = days[1:21], days[-20:]
    for key in ("water_ml", "toilet_day", "rise_s_median", "sit_count"):
        a, b = _mean(feats, key, first), _mean(feats, key, last)
        assert abs(a - b) < 0.2 * a, key


def test_outages_leave_gaps() -> None:
    found = 0
    for seed in range(20, 30):
        scenario, acts = simulate("healthy", seed, 90, START)
        for o in scenario.outages:
            hits = [a for a in acts if o.sensor in ("*", a.sensor)
                    and a.start_ms < o.end_ms and a.end_ms > o.start_ms]
            assert hits == []
            found += 1
    assert found > 0
    # The same resident without outages has activities inside those spans.
    scenario, acts = simulate("healthy", 20, 90, START)
    _s, full = simulate("healthy", 20, 90, START, outages=False)
    assert len(acts) < len(full)
    assert set(acts) <= set(full)


def test_times_are_utc_ms_of_local_days_across_dst() -> None:
    # The clocks go forward on 2024-03-31 in London: get-up stays near local 07:00.
    _s, acts = simulate("healthy", 2, 40, START, outages=False, wake_min=7 * 60)
    feats = daily_features(acts)
    after = [d for d in feats if d > date(2024, 4, 1)]
    before = [d for d in feats if date(2024, 3, 5) < d < date(2024, 3, 30)]
    assert abs(_mean(feats, "first_activity_min", after)
               - _mean(feats, "first_activity_min", before)) < 30
    assert all(isinstance(a, Activity) and a.end_ms >= a.start_ms for a in acts)


def test_sensors_send_heartbeats_that_outages_take_out() -> None:
    scenario, acts = simulate("healthy", 21, 40, START)
    _s, full = simulate("healthy", 21, 40, START, outages=False)
    beats = [a for a in full if a.sensor == "heartbeat"]
    # five sensors, one heartbeat each every 3 hours, at home or not
    assert {a.room for a in beats} == {"seat", "bed", "tap", "toilet", "stairs"}
    assert len(beats) == 5 * 8 * 40
    kept = {(a.room, a.start_ms) for a in acts if a.sensor == "heartbeat"}
    for o in scenario.outages:
        assert not any(o.sensor in ("*", room) and o.start_ms < t < o.end_ms
                       for room, t in kept)
    assert len(kept) < len(beats)
    # heartbeats are not activity: the day's features are those of the rest, plus
    # zeros from live sensors that saw nothing and the count of live sensors
    plain = daily_features([a for a in full if a.sensor != "heartbeat"])
    with_beats = daily_features(full)
    for day, feats in plain.items():
        extra = {k: v for k, v in with_beats[day].items() if k not in feats}
        assert extra.pop("heartbeats") == 5.0, day
        assert set(extra.values()) <= {0.0}, (day, extra)
        assert all(with_beats[day][k] == v for k, v in feats.items())


def test_a_live_sensor_that_saw_nothing_is_a_zero_a_silent_one_is_missing() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zi = ZoneInfo("Europe/London")

    def ms(day: date, hour: float) -> int:
        t = datetime.combine(day, datetime.min.time(), zi) + timedelta(hours=hour)
        return int(t.timestamp() * 1000)

    d = START + timedelta(days=3)
    seat = Activity("r", "seat", ms(d, 10), ms(d, 11), 2.0)
    beats = [Activity("r", "heartbeat", ms(d, h), ms(d, h), None, "tap")
             for h in (1.5, 4.5, 7.5, 10.5, 13.5, 16.5, 19.5, 22.5)]
    feats = daily_features([seat, *beats])[d]
    assert (feats["water_ml"], feats["draws"], feats["heartbeats"]) == (0.0, 0.0, 1.0)
    # a tap heard from only until the morning (its node died): missing, not zero
    feats = daily_features([seat, *beats[:3]])[d]
    assert "water_ml" not in feats and "draws" not in feats and "heartbeats" not in feats
    # nobody seen all day (in hospital): no day at all, however alive the sensors
    assert d not in daily_features(beats)


def test_water_by_time_of_day_and_toilet_dwell() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zi = ZoneInfo("Europe/London")
    d = START + timedelta(days=2)

    def at(hour: float, minutes: float, sensor: str, value: float | None = None) -> Activity:
        t = int((datetime.combine(d, datetime.min.time(), zi)
                 + timedelta(hours=hour)).timestamp() * 1000)
        return Activity("r", sensor, t, t + int(minutes * 60_000), value)

    feats = daily_features([at(7.5, 0.1, "tap", 300), at(11.9, 0.1, "tap", 200),
                            at(14, 0.1, "tap", 250), at(9, 3, "toilet"),
                            at(13, 5, "toilet"), at(16, 10, "toilet")])[d]
    assert feats["water_ml"] == 750
    assert (feats["water_morning_ml"], feats["water_afternoon_ml"],
            feats["water_evening_ml"]) == (500, 250, 0)  # the tap reported: 0, not missing
    assert feats["toilet_dwell_min"] == 5


def test_real_homes_quirks_are_written_in_and_seeded() -> None:
    from kinsight.learning.routine import learn_routine
    from kinsight.simulation.quirks import QUIRKS

    _, clean = simulate("healthy", 5, 40, START, outages=False)
    _, quirky = simulate("healthy", 5, 40, START, outages=False, quirks=QUIRKS)
    assert quirky == simulate("healthy", 5, 40, START, outages=False, quirks=QUIRKS)[1]
    taps = [a for a in quirky if a.sensor == "tap"]
    assert taps and all(a.value is None for a in taps)  # no volumes
    assert any(a.sensor == "presence" and a.room == "lounge" for a in quirky)  # PIR bursts
    outs = [a for a in quirky if a.sensor == "door" and a.room == "out"]
    assert len(outs) > 1.4 * len([a for a in clean if a.sensor == "door" and a.room == "out"])
    toilets = [a for a in quirky if a.sensor == "toilet" and a.room == "bathroom"]
    # a door contact's "on" is how long the door stayed shut: it says nothing of a stay
    routine = learn_routine(quirky, START + timedelta(days=18), "Europe/London")
    assert not routine.sensors[("toilet", "bathroom")].measures_stay
    assert max(a.end_ms - a.start_ms for a in toilets) >= 6 * 3_600_000  # stuck on
    # chattering: dozens of "on"s of one sensor within an hour on some day
    by_hour: dict[tuple[str, int], int] = {}
    for a in quirky:
        key = (a.sensor, a.start_ms // 3_600_000)
        by_hour[key] = by_hour.get(key, 0) + 1
    assert max(by_hour.values()) >= 40
    with pytest.raises(ValueError, match="unknown quirks"):
        simulate("healthy", 5, 10, START, quirks=("gremlins",))
