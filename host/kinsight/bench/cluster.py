"""``kinsight bench cluster``: several ``kinsight serve`` workers on one PostgreSQL and one
Mosquitto, simulated nodes publishing, workers killed and the broker restarted mid-run.

Both engines are started here on loopback (``engines``). ``nodes`` nodes are
accepted and placed with a resident each; ``workers`` ``serve`` processes share the
broker's stream (``--mqtt``) and the residents (``--worker``, leases). The nodes, as
gateways publish for them, send ``frames_per_node`` event frames each at QoS 1 and
read their acks on ``.../down``; like a node, they send again whatever has no ack
after a while. A third of the way in one worker is SIGKILLed, halfway the broker is
restarted, at two thirds another worker is SIGKILLed. At the end the store is
counted: every frame sent must be stored once, and filed once (``duplicated`` counts
frames stored or events filed more than once; ``lost`` frames sent and never
stored). ``fps`` is frames acked a second over the whole run, kills included; the
same run with one worker and nothing killed gives ``single_worker_fps``.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..residents import place
from ..store import Store
from ..wire import Ack, Header, encode_frame, open_frame
from .engines import Broker, PgCluster

log = logging.getLogger(__name__)

HOUSEHOLD = "bench"
_RESEND_S = 3.0


def _key(node: int) -> bytes:
    return hashlib.sha256(b"bench node %d" % node).digest()


def _subscribe(client: Any, topics: Any, flags: Any, reason: Any, properties: Any) -> None:
    """On each (re)connection: the nodes' ``down`` topics."""
    del flags, reason, properties
    client.subscribe(topics)


class _Fleet:
    """The nodes, published for by a few gateway clients; acks read on ``down``."""

    def __init__(self, broker: Broker, nodes: list[int], gateways: int = 4):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.nodes = nodes
        self.acked: dict[int, set[int]] = {n: set() for n in nodes}
        self.lock = threading.Lock()
        self.clients = []
        self.t0 = int(time.time())
        for g in range(gateways):
            mine = nodes[g::gateways]
            client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                 client_id=f"bench-gateway-{g}")
            client.username_pw_set(Broker.USER, Broker.PASSWORD)
            client.max_inflight_messages_set(200)
            client.max_queued_messages_set(0)
            client.reconnect_delay_set(min_delay=1, max_delay=2)
            client.on_message = self._on_message
            topics = [(f"kinsight/{HOUSEHOLD}/{n}/down", 1) for n in mine]
            client.user_data_set(topics)
            client.on_connect = _subscribe
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            self.clients.append((client, set(mine)))

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        node = int(msg.topic.split("/")[2])
        try:
            body = open_frame(bytes(msg.payload), _key(node)).body
        except Exception:  # not ours to judge here: a node ignores what does not verify
            return
        if not isinstance(body, Ack):
            return
        with self.lock:
            if body.contiguous_seq is not None:
                self.acked[node].update(range(body.contiguous_seq + 1))
            if body.acked_seq is not None:
                self.acked[node].add(body.acked_seq)

    def frame(self, node: int, seq: int) -> bytes:
        return encode_frame(_key(node), "events", Header(node_id=node, boot=1, seq=seq,
                                                         time_s=self.t0 + seq),
                            {"events": [{"type": "visit", "role": "toilet",
                                         "ago_ds": 10, "duration_ds": 1200}]})

    def send(self, node: int, seq: int) -> None:
        for client, mine in self.clients:
            if node in mine:
                client.publish(f"kinsight/{HOUSEHOLD}/{node}/up", self.frame(node, seq), qos=1)
                return

    def unacked(self, frames_per_node: int) -> list[tuple[int, int]]:
        with self.lock:
            return [(n, s) for n in self.nodes for s in range(frames_per_node)
                    if s not in self.acked[n]]

    def close(self) -> None:
        for client, _mine in self.clients:
            client.disconnect()
            client.loop_stop()


def _serve(db: str, broker: Broker, name: str, folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinsight.cli", "serve", "--db", db, "--mqtt", broker.url,
         "--worker", name], stdout=subprocess.PIPE,
        stderr=(folder / f"{name}.log").open("a"), text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening mqtt"):
        raise RuntimeError(f"worker {name} did not start: {(folder / f'{name}.log').read_text()}")
    return proc


def run_cluster(nodes: int = 100, frames_per_node: int = 100, workers: int = 3,
                chaos: bool = True, timeout_s: float = 300.0) -> dict[str, float]:
    """One run; its figures (see the module's docstring)."""
    with tempfile.TemporaryDirectory(prefix="kinsight-bench-") as tmp:
        folder = Path(tmp)
        (folder / "pg").mkdir()
        (folder / "mqtt").mkdir()
        pg = PgCluster(folder / "pg")
        broker = Broker(folder / "mqtt")
        procs: dict[str, subprocess.Popen[str]] = {}
        fleet = None
        try:
            db = pg.fresh_database()
            ids = list(range(1, nodes + 1))
            with Store(db) as store:
                for n in ids:
                    store.set_node_key(n, _key(n), now_ms=0)
                    place(store, n, f"r-{n}", "bathroom")
            for w in range(workers):
                procs[f"w{w + 1}"] = _serve(db, broker, f"w{w + 1}", folder)
            fleet = _Fleet(broker, ids)
            total = nodes * frames_per_node
            kills = restarts = 0
            events = {total // 3: "kill", total // 2: "restart", 2 * total // 3: "kill"}
            t0 = time.monotonic()
            sent = 0
            for seq in range(frames_per_node):
                for n in ids:
                    fleet.send(n, seq)
                    sent += 1
                    what = events.get(sent) if chaos else None
                    if what == "kill":
                        victim = f"w{kills + 1}"
                        procs[victim].send_signal(signal.SIGKILL)
                        procs[victim].wait(10)
                        kills += 1
                        log.info("worker %s SIGKILLed after %d frames", victim, sent)
                    elif what == "restart":
                        broker.restart()
                        restarts += 1
                        log.info("broker restarted after %d frames", sent)
            deadline = t0 + timeout_s
            last_resend = time.monotonic()
            while True:
                missing = fleet.unacked(frames_per_node)
                if not missing:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(missing)} frames still not acked after "
                                       f"{timeout_s:.0f} s")
                if time.monotonic() - last_resend >= _RESEND_S:
                    for n, s in missing:  # what a node does with what has no ack
                        fleet.send(n, s)
                    last_resend = time.monotonic()
                time.sleep(0.1)
            seconds = time.monotonic() - t0
            with Store(db) as store:
                stored = int(store.query("SELECT COUNT(*) FROM frames")[0][0])
                distinct = int(store.query("SELECT COUNT(*) FROM (SELECT DISTINCT node_id, "
                                           "boot, seq FROM frames) AS f")[0][0])
                filed = int(store.query("SELECT COUNT(*) FROM events")[0][0])
                filed_distinct = int(store.query(
                    "SELECT COUNT(*) FROM (SELECT DISTINCT node_id, boot, seq, idx FROM "
                    "events) AS e")[0][0])
        finally:
            if fleet is not None:
                fleet.close()
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(20)
                    except subprocess.TimeoutExpired:
                        p.kill()
            broker.stop()
            pg.stop()
    return {"frames": total, "stored": distinct, "lost": total - distinct,
            "duplicated": (stored - distinct) + (filed - filed_distinct),
            "workers": workers, "kills": kills, "broker_restarts": restarts,
            "fps": total / seconds, "seconds": seconds}


def bench_cluster(nodes: int = 100, frames_per_node: int = 100, workers: int = 3
                  ) -> tuple[dict[str, float], dict[str, float]]:
    """The run with kills and a broker restart, and the same with one worker, none."""
    return (run_cluster(nodes, frames_per_node, workers),
            run_cluster(nodes, frames_per_node, 1, chaos=False))


def run_bench_cluster() -> int:
    run, single = bench_cluster()
    print(f"{run['workers']:.0f} serve workers on PostgreSQL and Mosquitto, "  # noqa: T201
          f"{run['frames']:.0f} frames from 100 nodes in {run['seconds']:.1f} s with "
          f"{run['kills']:.0f} workers SIGKILLed and {run['broker_restarts']:.0f} broker "
          f"restart; one worker, nothing killed: {single['seconds']:.1f} s")
    print(f"frames={run['frames']:.0f} stored={run['stored']:.0f} lost={run['lost']:.0f} "  # noqa: T201
          f"duplicated={run['duplicated']:.0f} workers={run['workers']:.0f} "
          f"kills={run['kills']:.0f} broker_restarts={run['broker_restarts']:.0f} "
          f"fps={run['fps']:.0f} single_worker_fps={single['fps']:.0f}")
    return 0 if run["lost"] == 0 and run["duplicated"] == 0 else 1
