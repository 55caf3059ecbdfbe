"""The main job, end to end: simulated residents, the firmware under MicroPython, a lossy
UDP link, the host, ``kinsight analyse``, and the care team's report."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinsight.alerts import list_alerts
from kinsight.demo import RESIDENTS
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
    assert "every event the nodes sent is stored once" in proc.stdout
    assert "rejected: bad_tag 1" in proc.stdout
    assert str(out / "report" / "index.html") in proc.stdout
    with Store(out / "kinsight.db") as store:
        nodes = {n.node_id: n for n in store.node_summaries()}
        assert set(nodes) == {r.node_id(i, role) for i, r in enumerate(RESIDENTS)
                              for role in ("seat", "tap", "toilet")}
        assert all(n.lost == 0 and n.events > 0 for n in nodes.values())
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


def test_demo_refuses_a_silly_loss_rate(tmp_path, capsys):
    from kinsight.cli import main

    assert main(["demo", "--out", str(tmp_path), "--loss", "0.9"]) == 1
    assert "--loss 0.9 is outside 0..0.5" in capsys.readouterr().err
