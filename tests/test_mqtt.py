"""The MQTT transport against a real Mosquitto that the tests start on loopback (its
own config and password file): frames published on ``kinsight/<household>/<node>/up``
are stored once and acked on ``.../down``; refusals are counted by reason; workers
in one shared subscription split the stream without a frame stored twice; a broker
restart loses nothing; a worker killed mid-stream acknowledged nothing it had not
stored, and the nodes' resends fill the gap."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kinsight.errors import ConfigError
from kinsight.ingest import Ingestor
from kinsight.ingest.mqtt import MqttListener, down_topic, parse_mqtt_url, up_topic
from kinsight.residents import place
from kinsight.store import Store
from kinsight.wire import Header, encode_frame, open_frame
from support import REPO, Broker, micropython_command

KEYS = {n: hashlib.sha256(b"node %d" % n).digest() for n in range(1, 9)}
HOUSEHOLD = "h-7"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "home.db"
    with Store(path) as store:
        for node, key in KEYS.items():
            store.set_node_key(node, key, now_ms=0)
            place(store, node, f"r-{node}", "hall")
    return path


T0_S = int(time.time())  # one stamp base: a frame sent again is the same bytes, as a node's


def visit(node: int, seq: int) -> bytes:
    return encode_frame(KEYS[node], "events", Header(node_id=node, boot=1, seq=seq,
                                                     time_s=T0_S + seq % 60),
                        {"events": [{"type": "visit", "role": "toilet", "ago_ds": 300,
                                     "duration_ds": 2400}]})


class Nodes:
    """Nodes as a gateway would publish for them, reading their acks on ``down``."""

    def __init__(self, broker: Broker, nodes: list[int], household: str = HOUSEHOLD):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.acked: dict[int, set[int]] = {n: set() for n in nodes}
        self.lock = threading.Lock()
        self.household = household
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(Broker.USER, Broker.PASSWORD)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(
            [(down_topic(household, n), 1) for n in nodes])
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        node = int(msg.topic.split("/")[2])
        body = open_frame(bytes(msg.payload), KEYS[node]).body
        with self.lock:
            if body.contiguous_seq is not None:
                self.acked[node].update(range(1, body.contiguous_seq + 1))
            if body.acked_seq is not None:
                self.acked[node].add(body.acked_seq)

    def send(self, node: int, seq: int, topic_node: int | None = None) -> None:
        info = self.client.publish(up_topic(self.household, topic_node or node),
                                   visit(node, seq), qos=1)
        info.wait_for_publish(10)

    def unacked(self, want: dict[int, range]) -> list[tuple[int, int]]:
        with self.lock:
            return [(n, s) for n, seqs in want.items() for s in seqs
                    if s not in self.acked[n]]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Worker:
    """An ingest worker in this process: an MqttListener on its own thread."""

    def __init__(self, db: Path, broker: Broker, group: str = "ingest"):
        self.store = Store(db)
        self.ingestor = Ingestor(self.store, shared=True)
        self.listener = MqttListener(self.ingestor,
                                     parse_mqtt_url(broker.url + f"?group={group}"))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.listener.serve,
                                       kwargs={"stop": self.stop, "tick_s": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()
        self.store.close()


def stored(db: Path) -> list[tuple[int, int]]:
    with Store(db) as store:
        return [(int(n), int(s)) for n, s in store.query(
            "SELECT node_id, seq FROM frames ORDER BY node_id, seq")]


def wait_until(what: Any, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_frames_through_the_broker_are_stored_once_and_acked_on_down(db, broker):
    worker, nodes = Worker(db, broker), Nodes(broker, [1, 2])
    try:
        for seq in range(1, 11):
            nodes.send(1, seq)
            nodes.send(2, seq)
        want = {1: range(1, 11), 2: range(1, 11)}
        wait_until(lambda: not nodes.unacked(want))
        nodes.send(1, 4)  # a resend: acked again, stored once
        wait_until(lambda: worker.ingestor.stats.duplicates == 1)
        assert stored(db) == [(n, s) for n in (1, 2) for s in range(1, 11)]
        assert worker.ingestor.stats.accepted == 20
        assert worker.listener.node_households == {1: HOUSEHOLD, 2: HOUSEHOLD}
    finally:
        nodes.close()
        worker.close()


def test_refusals_are_counted_and_a_frame_under_another_nodes_topic_is_not_answered(
        db, broker):
    worker, nodes = Worker(db, broker), Nodes(broker, [3, 4])
    try:
        nodes.client.publish(f"kinsight/{HOUSEHOLD}/not-a-node/up", b"x", qos=1)
        nodes.client.publish(up_topic(HOUSEHOLD, 3), b"\x00garbage", qos=1)
        nodes.send(4, 1, topic_node=3)  # node 4's frame on node 3's topic
        wait_until(lambda: sum(worker.ingestor.stats.rejected.values()) == 2
                   and worker.ingestor.stats.accepted == 1)
        assert worker.ingestor.stats.rejected["mqtt topic"] == 1
        time.sleep(0.5)
        assert nodes.unacked({4: range(1, 2)}) == [(4, 1)]  # stored, not answered there
        assert stored(db) == [(4, 1)]
        nodes.send(4, 2)  # from its own topic: learnt, and answered
        wait_until(lambda: not nodes.unacked({4: range(2, 3)}))
    finally:
        nodes.close()
        worker.close()


def test_workers_of_one_shared_subscription_split_the_stream_without_duplicates(db, broker):
    workers = [Worker(db, broker, "split"), Worker(db, broker, "split")]
    nodes = Nodes(broker, [1, 2, 3, 4, 5])
    want = {n: range(1, 41) for n in range(1, 6)}
    try:
        for seq in range(1, 41):
            for n in range(1, 6):
                nodes.send(n, seq)
        wait_until(lambda: not nodes.unacked(want), 30)
        got = [w.ingestor.stats.accepted for w in workers]
        assert sum(got) == 200 and min(got) > 0, got  # both had a share
        assert sum(w.ingestor.stats.duplicates for w in workers) == 0
        assert stored(db) == [(n, s) for n in range(1, 6) for s in range(1, 41)]
    finally:
        nodes.close()
        for w in workers:
            w.close()


def test_a_broker_restart_loses_nothing(db, broker):
    worker, nodes = Worker(db, broker), Nodes(broker, [6])
    try:
        for seq in range(1, 6):
            nodes.send(6, seq)
        wait_until(lambda: not nodes.unacked({6: range(1, 6)}))
        broker.restart()
        wait_until(lambda: worker.listener.connected and nodes.client.is_connected(), 30)
        time.sleep(0.5)  # resubscribed (on_connect)
        for seq in range(6, 11):
            nodes.send(6, seq)
        # What went unacked around the restart is sent again, as a node does.
        deadline = time.monotonic() + 30
        while nodes.unacked({6: range(1, 11)}):
            assert time.monotonic() < deadline
            for _n, seq in nodes.unacked({6: range(1, 11)}):
                nodes.send(6, seq)
            time.sleep(0.5)
        assert stored(db) == [(6, s) for s in range(1, 11)]
    finally:
        nodes.close()
        worker.close()


def test_a_killed_worker_acknowledged_only_what_it_stored(db, broker, tmp_path):
    """Two ``kinsight serve`` workers; one SIGKILLed mid-stream. The nodes resend what
    was not acked; in the end every frame is stored once and acked."""
    def serve() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "kinsight.cli", "serve", "--db", str(db), "--mqtt",
             broker.url + "?group=killed"], stdout=subprocess.PIPE,
            stderr=(tmp_path / "serve.err").open("a"), text=True)

    procs = [serve(), serve()]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().startswith("listening mqtt mqtt://127.0.0.1:"), (
            tmp_path / "serve.err").read_text()
    nodes = Nodes(broker, [7, 8])
    want = {7: range(1, 201), 8: range(1, 201)}
    try:
        for seq in range(1, 201):
            nodes.send(7, seq)
            nodes.send(8, seq)
            if seq == 60:
                procs[0].send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 60
        while nodes.unacked(want):
            assert time.monotonic() < deadline, nodes.unacked(want)[:10]
            time.sleep(1.0)
            for n, seq in nodes.unacked(want):
                nodes.send(n, seq)
        assert stored(db) == [(n, s) for n in (7, 8) for s in range(1, 201)]
    finally:
        nodes.close()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                assert p.wait(15) == 0, (tmp_path / "serve.err").read_text()
    assert "Traceback" not in (tmp_path / "serve.err").read_text()


def test_bad_broker_settings_are_refused_with_what_is_wrong(db, broker):
    for url, words in (("http://x", "not an MQTT URL"), ("mqtt://h:99999", "not an MQTT URL"),
                       ("mqtt://h?grup=x", "unknown parameters"),
                       ("mqtt://h?group=a/b", "group")):
        with pytest.raises(ConfigError, match=words):
            parse_mqtt_url(url)
    with Store(db) as store:
        wrong = parse_mqtt_url(f"mqtt://kinsight:wrong@127.0.0.1:{broker.port}")
        with pytest.raises(ConfigError, match="refused"):
            MqttListener(Ingestor(store), wrong, connect_timeout_s=3)


def _mpy_lib() -> Path:
    lib = Path(os.environ.get("KINSIGHT_MPY_LIB") or REPO / ".venv" / "mpy-lib")
    if not (lib / "umqtt" / "simple.py").is_file():
        if os.environ.get("KINSIGHT_SYSTEM_PARTS") == "installed":
            pytest.fail(f"umqtt.simple is not installed in {lib}")
        pytest.skip("umqtt.simple is not installed (./run installs it: tools/mpy_packages.py)")
    return lib


@pytest.mark.slow
def test_a_micropython_node_over_mqtt_survives_a_broker_restart(db, broker, tmp_path):
    """The firmware's Outbox, Forwarder and MqttUplink on micropython-lib's umqtt.simple,
    under the unix port with an ESP32-sized heap, against the real broker and an ingest
    worker; the broker restarted mid-way. Every frame is stored once, the outbox empties."""
    node, count = 5, 60
    worker = Worker(db, broker)
    command, env = micropython_command(
        REPO / "tests" / "firmware" / "link_node.py", "mqtt", "127.0.0.1", str(broker.port),
        Broker.USER, Broker.PASSWORD, HOUSEHOLD, str(node), KEYS[node].hex(),
        str(tmp_path / "flash"), str(count), "50", extra_path=_mpy_lib())
    proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("acked ") and int(line.split()[1]) >= 15:
                break
        else:
            pytest.fail(f"node ended early: {proc.communicate()[1]}")
        broker.restart()
        rest = proc.stdout.read()
        proc.wait(timeout=90)
        assert proc.returncode == 0, rest + (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
        worker.close()
    summary = json.loads(rest.strip().splitlines()[-1])
    assert summary["acked"] == count and summary["depth"] == 0, summary
    assert summary["reconnects"] >= 1, summary  # the restart was felt, and got over
    with Store(db) as store:
        rows = store.query("SELECT seq FROM frames WHERE node_id = ? ORDER BY seq", (node,))
    assert [r[0] for r in rows] == list(range(count))


@pytest.mark.slow
def test_an_espnow_gateway_forwards_two_nodes_to_mqtt(db, broker, tmp_path):
    worker = Worker(db, broker)
    command, env = micropython_command(
        REPO / "tests" / "firmware" / "gateway_mqtt_node.py", "127.0.0.1", str(broker.port),
        Broker.USER, Broker.PASSWORD, HOUSEHOLD, str(tmp_path / "f"), "30",
        f"1:{KEYS[1].hex()}", f"2:{KEYS[2].hex()}", extra_path=_mpy_lib())
    try:
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=120)
    finally:
        worker.close()
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for node in ("1", "2"):
        assert summary["nodes"][node]["acked"] == 30, summary
        assert summary["nodes"][node]["depth"] == 0, summary
    assert stored(db) == [(n, s) for n in (1, 2) for s in range(30)]
    assert worker.listener.node_households == {1: HOUSEHOLD, 2: HOUSEHOLD}
