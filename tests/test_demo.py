"""The main job, end to end: nodes under MicroPython, a lossy UDP link, the host."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kinsight.store import Store


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["0", "0.3"])
def test_demo_stores_every_event_once(tmp_path, loss):
    proc = subprocess.run([sys.executable, "-m", "kinsight.cli", "demo", "--out", str(tmp_path),
                           "--loss", loss], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every event the nodes sent is stored once" in proc.stdout
    assert "rejected: bad_tag 1" in proc.stdout
    with Store(tmp_path / "kinsight.db") as store:
        nodes = {n.node_id: n for n in store.node_summaries()}
        assert set(nodes) == {101, 102, 103}
        assert all(n.lost == 0 and n.statuses >= 3 for n in nodes.values())
        # Each node rebooted once: two boots, sequence numbers from 0 in each.
        boots = store.query("SELECT node_id, boot, MIN(seq) FROM frames GROUP BY node_id, boot")
        assert sorted(boots) == [(n, b, 0) for n in (101, 102, 103) for b in (1, 2)]
        assert store.query("SELECT COUNT(*) FROM frames WHERE reassembled = 1")[0][0] >= 1
        assert store.query("SELECT COUNT(*) FROM events")[0][0] == 9 + 40 + 9


def test_demo_refuses_a_silly_loss_rate(tmp_path, capsys):
    from kinsight.cli import main

    assert main(["demo", "--out", str(tmp_path), "--loss", "0.9"]) == 1
    assert "--loss 0.9 is outside 0..0.5" in capsys.readouterr().err
