"""The real-time watcher checks a resident when their next deadline falls due
(``realtime.next_due``), not every resident at every tick: and it raises exactly
what checking everyone at every tick raises, for every rule that fires with time
rather than with a frame."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from kinsight.alerts import AlertRouter, Policy, list_alerts
from kinsight.evaluation.injection import inject
from kinsight.residents import Activity, store_activities
from kinsight.service.replay import midnight_ms, play
from kinsight.simulation import simulate
from kinsight.store import Store

TZ = "Europe/London"
START = date(2024, 3, 4)
ONSET = START + timedelta(days=20)
TICK_S = 300.0
NEVER_S = 30 * 86400.0  # no safety net: the deadlines alone


def long_toilet_visit(acts: list[Activity], day: date) -> list[Activity]:
    """An 80-minute toilet visit from 14:00 with nothing else moving meanwhile."""
    t0 = int(datetime.combine(day, time(14), ZoneInfo(TZ)).timestamp() * 1000)
    t1 = t0 + 80 * 60_000
    kept = [a for a in acts if a.sensor == "heartbeat" or a.end_ms < t0 or a.start_ms > t1]
    room = next((a.room for a in acts if a.sensor == "toilet"), None)
    return sorted([*kept, Activity(acts[0].resident, "toilet", t0, t1, None, room)],
                  key=lambda a: (a.start_ms, a.end_ms, a.sensor))


def replayed(acts: list[Activity], recheck_s: float | None) -> tuple[list[tuple], int]:
    with Store(":memory:") as store:
        store_activities(store, acts, TZ)
        played = play(store, AlertRouter(Policy(), store),
                      midnight_ms(ONSET - timedelta(days=1), TZ),
                      midnight_ms(ONSET + timedelta(days=3), TZ), tick_s=TICK_S,
                      recheck_s=recheck_s)
        return [(a.resident, a.day, a.condition, a.severity, a.text)
                for a in list_alerts(store)], played.checks


# Each change, and the real-time rule that must find it with time.
FOUND_BY = {"inactivity": "not_up", "silent_home": "silent_home", "dehydration": "no_water",
            "out_overnight": "out_overnight", "stuck_sensor": "device",
            "prolonged_sitting": "device", "long_toilet_visit": "prolonged_toilet"}


@pytest.mark.parametrize("change", sorted(FOUND_BY))
def test_deadlines_raise_what_checking_everyone_every_tick_raises(change):
    _scenario, acts = simulate("healthy", 41, 24, START, outages=False)
    if change == "long_toilet_visit":
        acts = long_toilet_visit(acts, ONSET)
    else:
        acts = inject(acts, change, ONSET, TZ)
    every_tick, all_checks = replayed(acts, None)
    by_deadline, checks = replayed(acts, NEVER_S)
    assert FOUND_BY[change] in {a[2] for a in every_tick}, every_tick
    assert by_deadline == every_tick
    assert checks < all_checks / 2, (checks, all_checks)
