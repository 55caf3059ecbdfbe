"""The morning costs what the new day costs: ``analyse`` reads and computes only the new
days (service.days), and what it raises is what a full recomputation raises; the hot
paths' queries use indexes, never a scan of a table's whole history."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from kinsight.alerts import AlertRouter, Policy, list_alerts
from kinsight.residents import place, store_activities
from kinsight.service import analyse
from kinsight.service.days import ensure_days, stored_days, stored_night
from kinsight.simulation import simulate
from kinsight.store import Store

TZ = "Europe/London"
START = date(2024, 3, 4)


def mornings(store: Store, days: int, *, full: bool) -> list[tuple[str, str, str, str]]:
    """Analyse each morning at 07:30; ``full`` forgets the stored days first, so that
    every morning recomputes everything from the whole history (the old way)."""
    for i in range(1, days + 1):
        now = datetime.combine(START + timedelta(days=i), time(7, 30), ZoneInfo(TZ))
        now_ms = int(now.timestamp() * 1000)
        if full:
            ensure_days(store)
            store.conn.execute("DELETE FROM day_features")
            store.conn.execute("DELETE FROM resident_nights")
            store.conn.execute("DELETE FROM routine_days")
        analyse(store, AlertRouter(Policy(), store, clock=lambda t=now_ms: t), now_ms,
                deliver=False)
    return [(a.resident, a.day, a.condition, a.text) for a in list_alerts(store)]


@pytest.mark.parametrize("persona,seed", [("daphne", 3), ("mrs_s", 5)])
def test_the_incremental_mornings_raise_what_a_full_recomputation_raises(
        fresh_db, persona, seed):
    scenario, acts = simulate(persona, seed, 70, START)
    runs = {}
    for full in (False, True):
        with Store(fresh_db(f"{full}")) as store:
            store_activities(store, acts, TZ)
            runs[full] = mornings(store, 69, full=full)
            state = store.query("SELECT state_json FROM models")[0][0]
            runs[(full, "state")] = json.loads(state)
            if not full:
                assert stored_night(store, scenario.resident) is not None
                assert len(stored_days(store, scenario.resident)) == 69
                # Every day's routine summary, kept at the morning after it.
                assert store.query("SELECT COUNT(*) FROM routine_days WHERE day >= ?",
                                   (START.isoformat(),))[0][0] == 69
    assert runs[False], "the history has changes to find"
    assert runs[False] == runs[True]
    assert runs[(False, "state")] == runs[(True, "state")]


def test_a_new_feature_definition_derives_the_stored_days_again(tmp_path, caplog):
    from kinsight.service import days as days_module

    _scenario, acts = simulate("healthy", 2, 30, START)
    with Store(tmp_path / "k.db") as store:
        store_activities(store, acts, TZ)
        mornings(store, 20, full=False)
        # What the code of the version before wrote: its days, nights and summaries.
        for table in ("day_features", "resident_nights", "routine_days"):
            store.conn.execute(f"UPDATE {table} SET version = version - 1")  # noqa: S608
        caplog.set_level(logging.WARNING, logger=days_module.__name__)
        now = datetime.combine(START + timedelta(days=21), time(7, 30), ZoneInfo(TZ))
        analyse(store, AlertRouter(Policy(), store), int(now.timestamp() * 1000),
                deliver=False)
        assert "deriving them again" in caplog.text
        for table in ("day_features", "resident_nights", "routine_days"):
            old = store.query(f"SELECT COUNT(*) FROM {table} WHERE version != ?",  # noqa: S608
                              (days_module.FEATURES_VERSION,))[0][0]
            assert old == 0, table


def plan(store: Store, sql: str, params: tuple[object, ...]) -> list[str]:
    return [str(r[3]) for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


# The tables that grow with the history: the hot paths must search them by index.
GROWING = ("activities", "events", "statuses", "summaries", "frames", "day_features",
           "routine_days", "alerts", "deliveries", "audit")


def test_the_hot_paths_search_by_index_never_scan_the_history(tmp_path):
    from kinsight.service import RealtimeWatcher

    _scenario, acts = simulate("healthy", 2, 24, START)
    with Store(tmp_path / "k.db") as store:
        store_activities(store, acts, TZ)
        place(store, 1, "r", "hall")
        now = datetime.combine(START + timedelta(days=23), time(7, 30), ZoneInfo(TZ))
        now_ms = int(now.timestamp() * 1000)
        router = AlertRouter(Policy(), store, clock=lambda: now_ms)
        analyse(store, router, now_ms - 86_400_000, deliver=False)  # the tables exist
        traced: list[str] = []
        store.conn.set_trace_callback(traced.append)
        analyse(store, router, now_ms, deliver=False)  # a morning
        watcher = RealtimeWatcher(store, router, clock=lambda: now_ms, deliver=lambda _t: [])
        watcher.after_batch(frozenset({1}))  # a tick and a batch
        router.deliver_due(now_ms)  # a delivery round
        from kinsight.service.days import with_last_sign

        for who in (acts[0].resident, "r"):  # a home quiet for days, imported or with a node
            with_last_sign(store, who, [], now_ms, now_ms)
        store.conn.set_trace_callback(None)
        selects = {q for q in traced if q.lstrip().upper().startswith(("SELECT", "WITH"))}
        assert len(selects) >= 10
        for q in sorted(selects):
            details = [str(r[3]) for r in store.conn.execute("EXPLAIN QUERY PLAN " + q)]
            scans = [d for d in details if d.startswith("SCAN ")
                     and d.split()[1] in GROWING]
            assert scans == [], (q, details)


def test_the_morning_and_tick_benches_run_the_real_paths_at_a_small_size():
    from kinsight.bench.analyse import bench_analyse
    from kinsight.bench.realtime import bench_latency, bench_ticks

    runs = bench_analyse(residents=12, histories=(20, 40))
    assert [r["history_days"] for r in runs] == [20, 40]
    assert all(r["residents"] == 12 and r["morning_s"] > 0 and r["rss_mb"] > 10 for r in runs)
    tick = bench_ticks(residents=8)
    assert tick["residents"] == 8 and 0 < tick["tick_s"] < tick["full_tick_s"]
    assert tick["checked_per_tick"] < 8  # a tick checks only who is due
    lat = bench_latency(nodes=20, frames_per_s=200, seconds=1.0)
    assert lat["stored"] == lat["frames"] == 200
    assert lat["alerted"] == lat["urgent"] == 10 and 0 < lat["p99_alert_ms"] < 5000


@pytest.mark.parametrize("persona,seed", [("daphne", 3), ("mrs_s", 5), ("john", 7),
                                          ("healthy", 9)])
def test_a_day_summary_finds_the_get_up_and_settling_times_daily_features_finds(
        persona, seed):
    from kinsight.learning import daily_features
    from kinsight.learning.routine import first_and_last, summary_window

    _scenario, acts = simulate(persona, seed, 40, START)
    zone = ZoneInfo(TZ)
    compared = 0
    for i in range(1, 39):
        day = START + timedelta(days=i)
        lo, hi = summary_window(day, zone)
        near = [a for a in acts if a.end_ms >= lo and a.start_ms < hi]
        feats = daily_features(near, TZ).get(day, {})
        want = (feats.get("first_activity_min"), feats.get("last_activity_min"))
        assert first_and_last(near, day, zone) == want, day
        compared += want != (None, None)
    assert compared >= 25  # most days have both


def test_the_watchers_window_after_batches_is_what_a_whole_read_finds(fresh_db):
    """Batch after batch, the rows a batch added are read on their own (events_after):
    the window must be exactly what reading everything again finds, with heartbeats,
    a late event, duplicates and a node placed on the way."""
    import random

    from kinsight.ingest import Ingestor
    from kinsight.residents import recent_activities
    from kinsight.service import RealtimeWatcher
    from kinsight.wire import Header, encode_frame

    key = bytes(range(32))
    rng = random.Random(5)
    now_s = int(datetime.combine(START + timedelta(days=2), time(12), ZoneInfo(TZ))
                .timestamp())
    clock = [now_s * 1000]
    with Store(fresh_db("k")) as store:
        for node in (1, 2):
            store.set_node_key(node, key, now_ms=0)
        place(store, 1, "r", "bathroom", tz=TZ)
        ingestor = Ingestor(store, clock_ms=lambda: clock[0])
        router = AlertRouter(Policy(), store, clock=lambda: clock[0])
        watcher = RealtimeWatcher(store, router, clock=lambda: clock[0],
                                  deliver=lambda _t: [])
        seqs = {1: 0, 2: 0}

        def frame(node: int, kind: str, body: dict) -> bytes:
            seqs[node] += 1
            return encode_frame(key, kind, Header(node_id=node, boot=1, seq=seqs[node],
                                                  time_s=clock[0] // 1000), body)

        since = clock[0] - 2 * 86_400_000
        for step in range(40):
            clock[0] += rng.randrange(30, 600) * 1000
            node = 1 if step < 20 else rng.choice((1, 2))
            if step == 20:
                place(store, 2, "r", "kitchen")
            batch = []
            for _ in range(rng.randrange(1, 4)):
                if rng.random() < 0.2:
                    batch.append(frame(node, "status", {"firmware": "x", "uptime_s": step,
                                                        "reset_cause": "soft",
                                                        "safe_mode": 0}))
                elif rng.random() < 0.2:  # a wearable's interval, with or without a rest
                    batch.append(frame(node, "summary", {"summaries": [
                        {"role": "heart_rate", "ago_s": 0, "period_s": 900, "hr_wear_s": 800,
                         "hr_rest_bpm": rng.choice((None, 55, 61))}]}))
                else:
                    ago = rng.choice((30, 600, 36_000))  # 36,000 ds: a late one, 1 h ago
                    batch.append(frame(node, "events", {"events": [
                        {"type": "visit", "role": "toilet", "ago_ds": ago,
                         "duration_ds": 20}]}))
            if step % 7 == 3:
                batch.append(batch[0])  # a retransmission in the same batch
            ingestor.ingest_batch(batch)
            watcher.after_batch(frozenset({node}))
            got = watcher._window("r", since)
            assert got == recent_activities(store, "r", since), step
        assert len(got) > 30 and any(a.sensor == "heartbeat" for a in got)
        assert any(a.sensor == "heart_rate" and a.value in (55.0, 61.0) for a in got)


@pytest.mark.parametrize("leaves_by_door", [False, True])
def test_a_home_quiet_for_days_is_judged_as_on_a_fortnights_read(tmp_path, leaves_by_door):
    """No sign for three days: the rules are given the last signs found by index
    (days.with_last_sign), and find what they find on the whole fortnight read."""
    from kinsight.learning import realtime
    from kinsight.residents import Activity, as_seen_at, recent_activities
    from kinsight.service.days import ROUTINE_WINDOW_MS, realtime_activities, routine_for

    _scenario, acts = simulate("healthy", 4, 24, START)
    zone = ZoneInfo(TZ)
    gone = int(datetime.combine(START + timedelta(days=19), time(10), zone).timestamp() * 1000)
    kept = [a for a in acts if a.end_ms < gone or a.sensor == "heartbeat"]
    if leaves_by_door:
        kept.append(Activity(kept[0].resident, "door", gone - 60_000, gone - 50_000, None,
                             "hall"))
    with Store(tmp_path / "q.db") as store:
        store_activities(store, kept, TZ)
        resident = kept[0].resident
        compared = 0
        for hours in range(60, 110, 7):  # 2.5 to 4.5 days after the last sign
            now = gone + hours * 3_600_000
            today = datetime.fromtimestamp(now / 1000, zone).date()
            routine = routine_for(store, resident, TZ, today, now)
            short = realtime_activities(store, resident, now)
            whole = as_seen_at(recent_activities(store, resident, now - ROUTINE_WINDOW_MS, now),
                               now)
            assert len(short) < len(whole) / 3
            got = realtime.check(short, now, TZ, routine)
            want = realtime.check(whole, now, TZ, routine)
            assert [(f.condition, f.text) for f in got] == [(f.condition, f.text) for f in want]
            compared += bool(want)
        assert compared >= 2  # the quiet home is not quiet to the rules
