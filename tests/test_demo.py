"""The main job, end to end: simulated residents, the firmware under MicroPython, a lossy
UDP link, the host, ``kinsight analyse``, and the care team's report."""

from __future__ import annotations

import html
import re
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kinsight.alerts import list_alerts
from kinsight.demo import RESIDENTS
from kinsight.demo.four_residents import DAYS, FIRMWARE_DAYS, START, TZ
from kinsight.learning import personal_features
from kinsight.residents import all_activities
from kinsight.simulation import simulate
from kinsight.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[Path, subprocess.CompletedProcess[str], float]:
    out = tmp_path_factory.mktemp("demo")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kinsight.cli", "demo", "--out", str(out),
                           "--loss", "0.3"], capture_output=True, text=True, timeout=300)
    return out, proc, time.monotonic() - started


@pytest.mark.slow
def test_demo_stores_every_event_once(demo):
    out, proc, seconds = demo
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert seconds < 180
    assert "every event and summary the nodes sent is stored once" in proc.stdout
    assert "rejected: bad_tag 1" in proc.stdout
    assert str(out / "report" / "index.html") in proc.stdout
    with Store(out / "kinsight.db") as store:
        nodes = {n.node_id: n for n in store.node_summaries()}
        assert set(nodes) == {r.node_id(i, role) for i, r in enumerate(RESIDENTS)
                              for role in r.roles}
        assert {r.rid for r in RESIDENTS if "heart_rate" in r.roles} == {"mrs_s", "john"}
        assert all(n.lost == 0 for n in nodes.values())
        assert all(n.events > 0 for i, r in enumerate(RESIDENTS) for role in r.roles
                   if role != "heart_rate" for n in [nodes[r.node_id(i, role)]])
        # Every simulated episode of the firmware days was found by the firmware.
        for m in re.finditer(r"(\d+) of (\d+) (sit|draw|visit)s found", proc.stdout):
            assert m.group(1) == m.group(2), m.group(0)


@pytest.mark.slow
def test_demo_report_pages(demo):
    out, proc, _ = demo
    assert proc.returncode == 0, proc.stdout + proc.stderr
    overview = (out / "report" / "index.html").read_text()
    assert "support a practitioner's judgement" in overview
    with Store(out / "kinsight.db") as store:
        for r in RESIDENTS:
            page = (out / "report" / f"{r.rid}.html").read_text()
            assert f'href="{r.rid}.html"' in overview
            assert page.count("<svg") >= 5  # water, toilet, sitting, rise time, bed
            alerts = [a for a in list_alerts(store, r.rid) if a.condition != "device"]
            if r.persona != "healthy":
                assert alerts, f"{r.name} had a simulated change and no alert"
                assert "simulated change" in page
            if not alerts:
                assert "No health alerts" in page
            for a in alerts:
                assert html.escape(a.text) in page


def _midnight_ms(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), ZoneInfo(TZ)).timestamp() * 1000)


@pytest.mark.slow
def test_demo_heart_rate_comes_from_the_wearable_nodes(demo):
    """The firmware days' hr_mean is the resting rates of the heart_rate node's
    summaries, close to the simulated readings', and none of it was imported."""
    out, proc, _ = demo
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = START + timedelta(days=DAYS - FIRMWARE_DAYS)
    with Store(out / "kinsight.db") as store:
        every = all_activities(store)
        for i, r in enumerate(RESIDENTS):
            if "heart_rate" not in r.roles:
                continue
            node = r.node_id(i, "heart_rate")
            total, rested = store.query(
                "SELECT COUNT(*), COUNT(hr_rest_bpm) FROM summaries WHERE node_id = ? AND "
                "role = 'heart_rate'", (node,))[0]
            assert total == FIRMWARE_DAYS * 96  # every 15-minute interval of the days
            assert 0 < rested < total  # worn by day, off at night
            assert store.query(
                "SELECT COUNT(*) FROM activities WHERE resident = ? AND sensor = 'heart_rate' "
                "AND end_ms >= ?", (r.rid, _midnight_ms(first)))[0][0] == 0
            from_node = [a for a in every[r.rid] if a.sensor == "heart_rate"
                         and a.start_ms >= _midnight_ms(first)]
            assert len(from_node) == rested
            feats = personal_features(every[r.rid], tz=TZ)[0]
            _, acts = simulate(r.persona, r.seed, DAYS, START, outages=False,
                               resident=r.rid, **r.variant)
            checked = 0
            for d in range(DAYS - FIRMWARE_DAYS, DAYS):
                day = START + timedelta(days=d)
                t0, t1 = _midnight_ms(day), _midnight_ms(day + timedelta(days=1))
                readings = [a.value for a in acts if a.sensor == "heart_rate"
                            and t0 <= a.start_ms < t1 and a.value is not None]
                if not readings:
                    assert "hr_mean" not in feats.get(day, {})
                    continue
                checked += 1
                assert abs(feats[day]["hr_mean"] - statistics.fmean(readings)) < 1.5, (r.rid,
                                                                                        day)
            assert checked >= FIRMWARE_DAYS - 1


def test_demo_refuses_a_silly_loss_rate(tmp_path, capsys):
    from kinsight.cli import main

    assert main(["demo", "--out", str(tmp_path), "--loss", "0.9"]) == 1
    assert "--loss 0.9 is outside 0..0.5" in capsys.readouterr().err
