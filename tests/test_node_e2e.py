"""A node under MicroPython lives a recorded day and sends it over UDP to a real
``kinsight listen``; the host stores exactly the events the traces contain."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kinsight.simulation import micropython as mpy
from kinsight.store import Store

KEY = bytes(range(50, 82))
T0_S = 1790035200  # the day tools/replay_node.py replays
PULSES_PER_L = 450
EDGE_MS = 1000


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mpy.compile_modules(tmp_path_factory.mktemp("mpy"))


def replay_over_udp(tmp_path: Path, compiled: Path, role: str, seed: int, node_id: int):
    db = tmp_path / "k.db"
    # Provisioned the day before the day it replays: the host files a node's frames
    # only when they are stamped after its key was added.
    with Store(db) as store:
        store.set_node_key(node_id, KEY, now_ms=(T0_S - 86_400) * 1000)
    listener = subprocess.Popen(
        [sys.executable, "-m", "kinsight.cli", "listen", "--db", str(db), "--udp",
         "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        line = listener.stdout.readline()
        assert line.startswith("listening on udp 127.0.0.1:"), line
        port = line.rsplit(":", 1)[1].strip()
        out = mpy.run("replay_node", role, str(seed), "udp", "127.0.0.1", port, str(node_id),
                      KEY.hex(), str(tmp_path / "flash"), compiled=compiled, timeout=300)
    finally:
        listener.send_signal(signal.SIGTERM)
        listener.communicate(timeout=20)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["unacked"] == 0, report
    store = Store(db)
    events = store.query("SELECT type, start_ms, duration_ds, volume_ml, rise_ds, restless "
                         "FROM events WHERE node_id = ? ORDER BY start_ms", (node_id,))
    assert store.lost_frames() == {node_id: 0}
    assert store.reject_counts() == {}
    store.close()
    return report, events


def near(found: int, truth: int, tolerance: int, what: str) -> None:
    assert abs(found - truth) <= tolerance, f"{what}: {found} vs truth {truth}"


@pytest.mark.slow
def test_a_day_in_the_chair(tmp_path, compiled):
    report, events = replay_over_udp(tmp_path, compiled, "seat", 11, 201)
    truth = report["truth"]
    sits = [e for e in events if e[0] == "sit"]
    assert len(sits) == len(truth) == len(events) and len(truth) >= 8
    for (_, start_ms, duration_ds, _, rise_ds, restless), (t0, t1, rise_ms, moves) in zip(
            sits, truth, strict=True):
        near(start_ms, T0_S * 1000 + t0, EDGE_MS, "sat down")
        near(start_ms + duration_ds * 100, T0_S * 1000 + t1, EDGE_MS, "stood up")
        near(rise_ds * 100, rise_ms, 500, "rise time")
        assert restless == moves


@pytest.mark.slow
def test_a_day_at_the_tap(tmp_path, compiled):
    report, events = replay_over_udp(tmp_path, compiled, "tap", 12, 202)
    draws, _drips, _leak = report["truth"]
    assert len(events) == len(draws) >= 30
    for (kind, start_ms, duration_ds, volume_ml, _, _), (t0, t1, pulses, _flow) in zip(
            events, draws, strict=True):
        assert kind == "draw"
        near(start_ms, T0_S * 1000 + t0, EDGE_MS, "tap opened")
        near(start_ms + duration_ds * 100, T0_S * 1000 + t1, EDGE_MS, "tap closed")
        truth_ml = pulses * 1000 / PULSES_PER_L
        assert abs(volume_ml - truth_ml) <= max(0.02 * truth_ml, 1), (volume_ml, truth_ml)


@pytest.mark.slow
def test_a_day_of_toilet_visits(tmp_path, compiled):
    report, events = replay_over_udp(tmp_path, compiled, "toilet", 13, 203)
    visits = report["truth"]
    assert len(events) == len(visits) >= 8
    for (kind, start_ms, duration_ds, *_), (t0, t1) in zip(events, visits, strict=True):
        assert kind == "visit"
        near(start_ms, T0_S * 1000 + t0, EDGE_MS, "went in")
        near(start_ms + duration_ds * 100, T0_S * 1000 + t1, EDGE_MS, "came out")


@pytest.mark.slow
def test_a_day_with_a_wearable_becomes_the_residents_heart_rate(tmp_path, compiled):
    """From the fake BLE radio's notifications through the node's extractor, frames over
    UDP and the host's store, to the resident's daily hr_mean."""
    from kinsight.learning.features import daily_features
    from kinsight.residents.from_nodes import activities_of, place

    report, _events = replay_over_udp(tmp_path, compiled, "heart_rate", 14, 204)
    with Store(tmp_path / "k.db") as store:
        rows = store.query("SELECT role, hr_rest_bpm, hr_wear_s, hr_quality_pm FROM summaries "
                           "WHERE node_id = 204")
        assert len(rows) == 96 and {r[0] for r in rows} == {"heart_rate"}
        worn = [r for r in rows if r[2]]
        assert 48 <= len(worn) <= 64, len(worn)  # about 15 hours worn
        assert all(r[3] >= 990 for r in worn), worn
        place(store, 204, "ada", "bedroom", tz="UTC")
        acts = [a for a in activities_of(store, "ada") if a.sensor == "heart_rate"]
        assert len(acts) == len([r for r in rows if r[1] is not None]) >= 40
        feats = daily_features(acts, "UTC")
    [(day, values)] = [(d, f) for d, f in feats.items() if "hr_mean" in f]
    assert day.isoformat() == "2026-09-22"
    near(round(values["hr_mean"]), report["truth"]["rest_bpm"], 1, "hr_mean")


@pytest.mark.slow
def test_a_day_of_every_role_fits_the_radio_budget():
    """Bytes on the air are a property of the protocol and the batching, not of the
    machine: each role's day fits 4 KB and is at least 5 times smaller than SenML."""
    from kinsight.bench import bench_firmware

    rows = bench_firmware(seed=21)
    assert [r["role"] for r in rows] == ["seat", "bed", "tap", "toilet", "heart_rate"]
    for r in rows:
        assert r["events"] > 0 or r["role"] == "heart_rate", r  # its day is all summaries
        assert r["bytes_per_day"] <= 4096, r
        assert r["peak_heap"] <= 48 * 1024, r
        assert r["senml_ratio"] >= 5, r
