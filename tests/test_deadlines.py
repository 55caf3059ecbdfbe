"""The real-time watcher checks a resident when their next deadline falls due
(``realtime.next_due``) or when something new is stored, not every resident at every
tick: and it raises exactly what checking everyone at every tick raises, for every
rule that fires with time rather than with a frame, on a store that fills as a live
one does."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from kinsight.alerts import AlertRouter, Policy, list_alerts
from kinsight.evaluation.injection import inject
from kinsight.residents import Activity, store_activities
from kinsight.service.replay import midnight_ms
from kinsight.service.scheduler import Scheduler
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


def lived(acts: list[Activity], recheck_s: float | None) -> tuple[list[tuple], int]:
    """The days from the day before ONSET as a live store sees them: each activity
    stored once it has ended, the scheduler stepped every TICK_S; the alerts and how
    many real-time checks were run."""
    start = midnight_ms(ONSET - timedelta(days=1), TZ)
    end = midnight_ms(ONSET + timedelta(days=3), TZ)
    by_end = sorted(acts, key=lambda a: a.end_ms)
    with Store(":memory:") as store:
        store_activities(store, [a for a in by_end if a.end_ms < start], TZ)
        now = [start]
        scheduler = Scheduler(store, AlertRouter(Policy(), store, clock=lambda: now[0]),
                              lambda: now[0], tick_s=TICK_S, recheck_s=recheck_s)
        i = next((k for k, a in enumerate(by_end) if a.end_ms >= start), len(by_end))
        while now[0] < end:
            now[0] += int(TICK_S * 1000)
            ended = []
            while i < len(by_end) and by_end[i].end_ms <= now[0]:
                ended.append(by_end[i])
                i += 1
            if ended:
                with store.transaction():
                    store.conn.executemany(
                        "INSERT OR IGNORE INTO activities VALUES (?, ?, ?, ?, ?, ?, 'test')",
                        [(a.resident, a.sensor, a.start_ms, a.end_ms, a.value, a.room)
                         for a in ended])
            scheduler.step()
        return [(a.resident, a.day, a.condition, a.severity, a.text)
                for a in list_alerts(store)], scheduler.watcher.checks


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
    every_tick, all_checks = lived(acts, None)
    by_deadline, checks = lived(acts, NEVER_S)
    assert FOUND_BY[change] in {a[2] for a in every_tick}, every_tick
    assert by_deadline == every_tick
    assert checks < all_checks / 2, (checks, all_checks)
