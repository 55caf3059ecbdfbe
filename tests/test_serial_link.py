"""The serial uplink end to end: the firmware's Outbox + Forwarder + SerialUplink
under MicroPython on one tty, the host's SerialListener on another, joined by a
null-modem relay between the two pseudo-terminals' master ends."""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinsight.errors import ConfigError
from kinsight.ingest import Ingestor
from kinsight.ingest.serial_port import SerialListener
from kinsight.store import Store
from kinsight.wire.slip import encode
from support import REPO, micropython_command

KEY = bytes(range(40, 72))
NODE = 21
LINK_NODE = REPO / "tests" / "firmware" / "link_node.py"


def node_env() -> dict[str, str]:
    return dict(os.environ, MICROPYPATH=os.pathsep.join(
        str(REPO / d) for d in ("firmware", "shared", "tests/firmware")))


class NullModem:
    """Two pty pairs; whatever one master end reads is written to the other."""

    def __init__(self) -> None:
        self.a_master, self.a_slave = os.openpty()
        self.b_master, self.b_slave = os.openpty()
        self.a_path = os.ttyname(self.a_slave)
        self.b_path = os.ttyname(self.b_slave)
        self.stop = threading.Event()
        self.bytes = {"a->b": 0, "b->a": 0}
        self.thread = threading.Thread(target=self._relay, daemon=True)
        self.thread.start()

    def _relay(self) -> None:
        pairs = {self.a_master: (self.b_master, "a->b"), self.b_master: (self.a_master, "b->a")}
        while not self.stop.is_set():
            ready, _, _ = select.select(list(pairs), [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                out, name = pairs[fd]
                self.bytes[name] += len(data)
                os.write(out, data)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for fd in (self.a_master, self.a_slave, self.b_master, self.b_slave):
            os.close(fd)


@pytest.fixture
def modem() -> Iterator[NullModem]:
    m = NullModem()
    yield m
    m.close()


def test_a_micropython_node_over_a_pty_gets_every_frame_stored_and_acked(
        modem: NullModem, tmp_path: Path):
    count = 40
    with Store(tmp_path / "k.db") as store:
        store.set_node_key(NODE, KEY, now_ms=0)
        ingestor = Ingestor(store)
        listener = SerialListener(ingestor, modem.a_path)
        stop = threading.Event()
        thread = threading.Thread(target=listener.serve,
                                  kwargs={"stop": stop, "tick_s": 0.05}, daemon=True)
        thread.start()
        try:
            command, env = micropython_command(LINK_NODE, "serial", modem.b_path, str(NODE),
                                               KEY.hex(), str(tmp_path / "flash"), str(count),
                                               "20")
            proc = subprocess.run(command, env=env, cwd=REPO, capture_output=True, timeout=120)
        finally:
            stop.set()
            thread.join(timeout=10)
            listener.close()
        out = proc.stdout.decode()
        assert proc.returncode == 0, out + proc.stderr.decode()
        summary = json.loads(out.strip().splitlines()[-1])
        rows = store.query("SELECT boot, seq FROM frames WHERE node_id=? ORDER BY boot, seq",
                           (NODE,))
    assert summary["made"] == list(range(count))
    assert rows == [(summary["boot"], s) for s in range(count)], "exactly the frames sent"
    assert summary["depth"] == 0 and summary["acked"] == count, summary
    assert summary["sent"] < 2 * count, summary  # acks kept up: few resends
    assert summary["bad_acks"] == 0 and summary["host_time_s"] is not None, summary
    assert ingestor.stats.accepted == count
    assert modem.bytes["a->b"] > 0 and modem.bytes["b->a"] > 0


def test_listener_ingests_a_burst_in_one_batch_and_acks_down_the_line(
        modem: NullModem, tmp_path: Path):
    from kinsight.wire import Header, encode_frame

    frames = [encode_frame(KEY, "events", Header(node_id=NODE, boot=1, seq=s, time_s=1_790_000_000),
                           {"events": [{"type": "visit", "role": "toilet", "ago_ds": s}]})
              for s in range(5)]
    with Store(tmp_path / "k.db") as store:
        store.set_node_key(NODE, KEY, now_ms=0)
        ingestor = Ingestor(store)
        listener = SerialListener(ingestor, modem.a_path)
        far = os.open(modem.b_path, os.O_RDWR | os.O_NOCTTY)
        try:
            import tty

            tty.setraw(far)
            # Line noise, a broken frame, then the burst.
            os.write(far, b"noise\xc0\xdb\x01\xc0" + b"".join(encode(f) for f in frames))
            listener.serve(idle_exit_s=0.5, tick_s=0.05)
            acks = b""
            while select.select([far], [], [], 0.5)[0]:
                acks += os.read(far, 4096)
        finally:
            os.close(far)
            listener.close()
    assert ingestor.stats.accepted == 5
    assert listener.decoder.errors == 1
    assert dict(ingestor.stats.rejected) == {"decode": 1}  # "noise" is not CBOR
    # One batch: one ack, whose contiguous seq covers all five.
    assert acks.count(b"\xc0") == 2, acks


def test_a_missing_port_is_a_config_error(tmp_path: Path):
    with Store(":memory:") as store, pytest.raises(ConfigError, match="no-such-tty"):
        SerialListener(Ingestor(store), str(tmp_path / "no-such-tty"))


def test_cli_listen_takes_exactly_one_of_udp_and_serial(modem: NullModem, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]):
    from kinsight.cli import main
    from kinsight.wire import Header, encode_frame

    db = str(tmp_path / "k.db")
    assert main(["keys", "--db", db, "add", str(NODE), KEY.hex()]) == 0
    assert main(["listen", "--db", db]) == 1
    assert "exactly one of --udp HOST:PORT or --serial PORT" in capsys.readouterr().err
    assert main(["listen", "--db", db, "--udp", "127.0.0.1:0", "--serial", modem.a_path]) == 1
    assert "exactly one" in capsys.readouterr().err
    assert main(["listen", "--db", db, "--serial", str(tmp_path / "absent")]) == 1
    assert "cannot open serial port" in capsys.readouterr().err

    far = os.open(modem.b_path, os.O_RDWR | os.O_NOCTTY)
    try:
        import tty

        tty.setraw(far)
        frame = encode_frame(KEY, "events", Header(node_id=NODE, boot=4, seq=0,
                                                   time_s=int(time.time())),
                             {"events": [{"type": "visit", "role": "toilet", "ago_ds": 1}]})
        # Written once the listener has opened its port (opening flushes the input).
        timer = threading.Timer(0.3, os.write, (far, encode(frame)))
        timer.start()
        assert main(["listen", "--db", db, "--serial", modem.a_path, "--baud", "9600",
                     "--idle-exit", "0.5"]) == 0
        assert select.select([far], [], [], 2)[0], "an ack came back down the line"
        timer.join()
    finally:
        os.close(far)
    out = capsys.readouterr().out
    assert f"listening on serial {modem.a_path} at 9600 baud" in out
    assert "stopped after 1 frames" in out and "accepted: 1" in out
    with Store(db) as store:
        assert store.query("SELECT boot, seq FROM frames") == [(4, 0)]
