"""End to end over UDP: a MicroPython node (Outbox + UdpUplink + Forwarder) against
a real ``kinsight listen`` process that is killed mid-way and restarted on the
same port after an outage. The host ends with exactly the frames sent, once each,
and the node's outbox empty."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kinsight.store import Store
from support import REPO, micropython_command, start_listener

KEY = bytes(range(7, 39))
NODE = 31
T0_S = 1_790_000_000  # before link_node.py's clock (the real one)
LINK_NODE = REPO / "tests" / "firmware" / "link_node.py"


@pytest.mark.slow
def test_node_survives_a_host_outage_and_everything_arrives_once(tmp_path: Path):
    db = tmp_path / "k.db"
    # Provisioned before the node's clock starts: its frames are stamped after its key.
    with Store(db) as store:
        store.set_node_key(NODE, KEY, now_ms=(T0_S - 86_400) * 1000)
    count = 60
    listener, port = start_listener(db, 0)
    command, env = micropython_command(LINK_NODE, "udp", "127.0.0.1", str(port), str(NODE),
                                       KEY.hex(), str(tmp_path / "flash"), str(count), "40")
    node = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert node.stdout is not None
    restarted = None
    try:
        # Let the host ack some frames, then take it down (SIGKILL: no goodbye).
        for line in node.stdout:
            if line.startswith("acked ") and int(line.split()[1]) >= 15:
                break
        else:
            pytest.fail(f"node ended early: {node.communicate()[1]}")
        listener.kill()
        listener.wait(timeout=10)
        time.sleep(1.5)  # the node keeps making frames that go nowhere
        restarted, again = start_listener(db, port)
        assert again == port
        rest = node.stdout.read()
        node.wait(timeout=90)
        assert node.returncode == 0, rest + (node.stderr.read() if node.stderr else "")
        summary = json.loads(rest.strip().splitlines()[-1])
    finally:
        if node.poll() is None:
            node.kill()
        if listener.poll() is None:
            listener.kill()
        if restarted is not None:
            restarted.send_signal(signal.SIGTERM)
            restarted.communicate(timeout=10)
    assert summary["made"] == list(range(count))
    assert summary["depth"] == 0 and summary["dropped"] == 0, summary
    assert summary["acked"] == count, summary
    # The outage cost resends (the frames sent while the host was down).
    assert summary["sent"] > count, summary
    with Store(db) as store:
        rows = store.query("SELECT boot, seq FROM frames WHERE node_id=? ORDER BY boot, seq",
                           (NODE,))
        events = store.query("SELECT COUNT(*) FROM events")[0][0]
    assert rows == [(summary["boot"], s) for s in range(count)], "exactly the frames, once each"
    assert events == count
