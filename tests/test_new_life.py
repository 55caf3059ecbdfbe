"""A node's new life: reset and provisioned again under the same node id, or with its
boot count lost from flash, its frames are new to the host and stored, never refused
as replays of the old life while an ack covers them. Keys added, rotated or removed
count in a running listener at once. The real firmware modules under MicroPython
against a real ``kinsight listen``."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kinsight.cli import main
from kinsight.store import Store
from support import REPO, micropython_command, start_listener

NODE = 41
KEY = bytes(range(11, 43))
LINK_NODE = REPO / "tests" / "firmware" / "link_node.py"


def life(port: int, key: bytes, flash: Path, count: int) -> dict[str, object]:
    """One life of the node: ``count`` event frames, forwarded until all are acked."""
    command, env = micropython_command(LINK_NODE, "udp", "127.0.0.1", str(port), str(NODE),
                                       key.hex(), str(flash), str(count), "10")
    proc = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=90)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stored(db: Path) -> tuple[int, list[tuple[int, int]]]:
    with Store(db) as s:
        events = s.query("SELECT COUNT(*) FROM events WHERE node_id = ?", (NODE,))[0][0]
        boots = s.query("SELECT boot, COUNT(*) FROM frames WHERE node_id = ? GROUP BY boot "
                        "ORDER BY MIN(received_ms)", (NODE,))
    return int(events), [(int(b), int(n)) for b, n in boots]


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err
    return out


@pytest.mark.slow
@pytest.mark.parametrize("provisioned_again", [False, True],
                         ids=["boot count lost", "provisioned again with a new key"])
def test_a_new_life_is_stored_whole(tmp_path: Path, provisioned_again: bool) -> None:
    db, flash = tmp_path / "k.db", tmp_path / "flash"
    assert main(["keys", "--db", str(db), "add", str(NODE), KEY.hex()]) == 0
    listener, port = start_listener(db)
    try:
        first = life(port, KEY, flash, 20)
        assert first["acked"] == 20 and first["depth"] == 0, first
        # Factory reset (or both copies of the boot count lost): the flash is blank.
        shutil.rmtree(flash)
        key = KEY
        if provisioned_again:
            # Provisioning draws a new key: the running listener must take it at once.
            rotate = subprocess.run(
                [sys.executable, "-m", "kinsight.cli", "keys", "--db", str(db), "rotate",
                 str(NODE)], capture_output=True, text=True, timeout=30)
            assert rotate.returncode == 0, rotate.stderr
            key = bytes.fromhex(rotate.stdout.split("new key ")[1].split()[0])
        second = life(port, key, flash, 25)
    finally:
        out = stop(listener)
    assert second["boot"] != first["boot"]
    assert second["acked"] == 25 and second["depth"] == 0, second
    events, boots = stored(db)
    # Every event of both lives, once each; the old life's records kept.
    assert events == 45
    assert boots == [(first["boot"], 20), (second["boot"], 25)]
    assert "replay" not in out and "bad_tag" not in out, out


def test_keys_removed_and_rotated_count_in_a_running_ingestor_at_once(tmp_path: Path) -> None:
    from kinsight.ingest import Ingestor
    from kinsight.wire import Header, encode_frame

    def frame(key: bytes, seq: int) -> bytes:
        return encode_frame(key, "events", Header(node_id=NODE, boot=3, seq=seq,
                                                  time_s=1_790_000_000),
                            {"events": [{"type": "visit", "role": "toilet", "ago_ds": 0,
                                         "duration_ds": 600}]})

    db = tmp_path / "k.db"
    with Store(db) as writer, Store(db) as other:
        writer.set_node_key(NODE, KEY, now_ms=0)
        ingestor = Ingestor(writer, clock_ms=lambda: 1_790_000_000_000)
        assert ingestor.ingest(frame(KEY, 0)).status == "accepted"
        new = bytes(range(100, 132))
        other.set_node_key(NODE, new, now_ms=1)  # kinsight keys rotate, elsewhere
        assert ingestor.ingest(frame(KEY, 1)).status == "rejected"  # the old key no more
        assert ingestor.ingest(frame(new, 2)).status == "accepted"
        assert other.remove_node_key(NODE)
        assert ingestor.ingest(frame(new, 3)).status == "rejected"
        assert dict(ingestor.stats.rejected) == {"bad_tag": 1, "unknown_node": 1}


def test_an_ack_never_covers_frames_refused_as_a_reused_count(tmp_path: Path) -> None:
    # Old firmware that lost its boot count numbers a new life's frames as the old
    # life's: those are refused, and no ack may say "everything up to N is stored".
    from kinsight.ingest import Ingestor
    from kinsight.wire import Header, encode_frame, open_frame

    def frame(seq: int, ago_ds: int) -> bytes:
        return encode_frame(KEY, "events", Header(node_id=NODE, boot=1, seq=seq,
                                                  time_s=1_790_000_000),
                            {"events": [{"type": "visit", "role": "toilet", "ago_ds": ago_ds,
                                         "duration_ds": 600}]})

    with Store(tmp_path / "k.db") as store:
        store.set_node_key(NODE, KEY, now_ms=0)
        ingestor = Ingestor(store, clock_ms=lambda: 1_790_000_000_000)
        ingestor.ingest_batch([frame(s, 0) for s in range(8)])  # the old life
        results = ingestor.ingest_batch([frame(s, 7) for s in range(10)])  # the new one
        assert [r.status for r in results] == ["rejected"] * 8 + ["accepted"] * 2
        acks = [open_frame(raw, KEY).body for _node, raw in ingestor.acks]
    assert [(a.acked_seq, a.contiguous_seq) for a in acks] == [(8, None), (9, None)]
