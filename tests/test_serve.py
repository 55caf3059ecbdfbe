"""The real ``kinsight serve`` process on loopback: frames in and acked, ``/healthz`` and
``/metrics`` read over HTTP, SIGTERM (exit 0); and SIGKILL mid-stream then a restart:
nothing acked is lost, nothing is raised twice, the missed mornings are caught up."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kinsight.alerts import list_alerts
from kinsight.residents import place, store_activities
from kinsight.simulation import simulate
from kinsight.store import Store
from kinsight.wire import Header, encode_frame, open_frame

pytestmark = pytest.mark.slow

TZ = "Europe/London"
KEY = bytes(range(32))
MIN_DS = 600


class Serving:
    """``kinsight serve`` in its own process, its endpoints read from its first lines."""

    def __init__(self, db: Path, tmp_path: Path, *extra: str):
        self.err_path = tmp_path / f"serve-{time.monotonic_ns()}.err"
        with self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kinsight.cli", "serve", "--db", str(db), "--udp",
                 "127.0.0.1:0", "--http", "127.0.0.1:0", *extra],
                stdout=subprocess.PIPE, stderr=err, text=True)
        assert self.proc.stdout is not None
        udp = self.proc.stdout.readline()
        http = self.proc.stdout.readline()
        assert udp.startswith("listening udp 127.0.0.1:"), udp + self.stderr()
        assert http.startswith("listening http http://127.0.0.1:"), http + self.stderr()
        self.port = int(udp.rsplit(":", 1)[1])
        self.url = http.split()[-1]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5)

    def stderr(self) -> str:
        return self.err_path.read_text()

    def send(self, raw: bytes, wait_s: float = 1.0) -> bool:
        """Send a frame; True once its ack came back (within ``wait_s``)."""
        self.sock.sendto(raw, ("127.0.0.1", self.port))
        self.sock.settimeout(wait_s)
        try:
            ack = open_frame(self.sock.recv(2048), KEY)
        except TimeoutError:
            return False
        return ack.kind == "ack"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        _, text = self.get("/metrics")
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
                       if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)


def visit(seq: int) -> bytes:
    return encode_frame(KEY, "events", Header(node_id=1, boot=1, seq=seq,
                                              time_s=int(time.time())),
                        {"events": [{"type": "visit", "role": "toilet", "ago_ds": 3000,
                                     "duration_ds": 2400}]})


def toilet_long(seq: int) -> bytes:
    return encode_frame(KEY, "events", Header(node_id=1, boot=1, seq=seq,
                                              time_s=int(time.time())),
                        {"events": [{"type": "prolonged_presence", "role": "toilet",
                                     "ago_ds": 50 * MIN_DS, "duration_ds": 50 * MIN_DS}]})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    db = tmp_path / "home.db"
    with Store(db) as store:
        place(store, 1, "r-1", "bathroom", TZ)
        store.set_node_key(1, KEY, now_ms=0)
    return db


def test_serve_acks_frames_reports_health_and_metrics_and_stops_on_sigterm(home, tmp_path):
    s = Serving(home, tmp_path)
    try:
        status, body = s.get("/healthz")
        assert status == 200, body
        health = json.loads(body)
        assert health["status"] == "ok" and health["store_writable"] is True
        assert list(health["transports"].values()) == ["up"]
        assert health["last_frame_age_s"] is None
        frames = {seq: visit(seq) for seq in range(1, 11)}
        assert all(s.send(raw) for raw in frames.values())
        assert s.send(toilet_long(11))
        deadline = time.monotonic() + 5
        while s.metric("kinsight_alerts_total", condition="prolonged_toilet",
                       urgency="urgent") < 1:
            assert time.monotonic() < deadline, s.get("/metrics")[1]
            time.sleep(0.1)
        assert s.metric("kinsight_frames_total", outcome="accepted", reason="") == 11
        assert s.metric("kinsight_acks_total") == 11
        assert s.metric("kinsight_records_total") == 11
        assert s.metric("kinsight_realtime_checks_total") >= 1
        assert s.send(frames[3])  # a retransmission: acked again, stored once
        assert s.metric("kinsight_frames_total", outcome="duplicate", reason="") == 1
        health = json.loads(s.get("/healthz")[1])
        assert health["status"] == "ok" and health["last_frame_age_s"] < 60
        t0 = time.monotonic()
        assert s.terminate() == 0, s.stderr()
        assert time.monotonic() - t0 < 6
        assert "Traceback" not in s.stderr()
        assert s.proc.stdout is not None and "stopped" in s.proc.stdout.read()
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
    with Store(home) as store:
        assert store.query("SELECT COUNT(*) FROM frames")[0][0] == 11


def test_a_store_that_cannot_be_written_is_degraded(home, tmp_path):
    s = Serving(home, tmp_path)
    try:
        blocker = Store(home)
        blocker.conn.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        status, body = s.get("/healthz")
        blocker.conn.execute("ROLLBACK")
        blocker.close()
        assert status == 503, body
        assert "the store is not writable" in json.loads(body)["reasons"]
        assert s.get("/healthz")[0] == 200
        assert s.terminate() == 0
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


def test_sigkill_mid_stream_then_a_restart_loses_nothing_and_raises_nothing_twice(
        home, tmp_path):
    today = datetime.now().astimezone().date()
    # Three weeks of history to yesterday, last analysed three days ago: two mornings
    # were missed while the service was down.
    _sc, acts = simulate("healthy", 3, 21, today - timedelta(days=21), outages=False)
    acts = [a.__class__("r-1", a.sensor, a.start_ms, a.end_ms, a.value, a.room)
            for a in acts]
    with Store(home) as store:
        store_activities(store, acts, TZ)
    now_3 = datetime.combine(today - timedelta(days=2), datetime.min.time()).astimezone()
    analysed = subprocess.run(
        [sys.executable, "-m", "kinsight.cli", "analyse", "--db", str(home), "--now",
         (now_3 + timedelta(hours=8)).isoformat()], capture_output=True, text=True)
    assert analysed.returncode == 0, analysed.stderr
    assert last_day(home) == (today - timedelta(days=3)).isoformat()

    s = Serving(home, tmp_path, "--morning", "00:00")
    acked: list[int] = []
    unacked: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while last_day(home) != (today - timedelta(days=1)).isoformat():
            assert time.monotonic() < deadline, "the missed mornings were not caught up"
            time.sleep(0.1)
        state = model_state(home)
        killed = threading.Event()
        frames = node_frames()
        sending = threading.Thread(target=send_all, args=(s, frames, acked, unacked, killed),
                                   daemon=True)
        sending.start()
        time.sleep(0.4)
        s.proc.kill()  # no goodbye: mid-stream, whatever was in hand
        s.proc.wait(timeout=10)
        killed.set()
        sending.join(timeout=10)
        assert not sending.is_alive()
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
    assert acked and unacked, (acked, unacked)
    with Store(home) as store:
        stored = {int(r[0]) for r in store.query("SELECT seq FROM frames WHERE node_id = 1")}
    assert set(acked) <= stored  # an ack covered only what was stored

    s = Serving(home, tmp_path, "--morning", "00:00")
    try:
        # The node goes on (its address learnt again from a new frame), sends again all
        # it holds unacked, and the long visit once more.
        for seq in [FRAMES + 1, *unacked, 20]:
            assert s.send(frames[seq]), seq
        time.sleep(1.0)
        assert s.terminate() == 0, s.stderr()
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
    with Store(home) as store:
        stored = {int(r[0]) for r in store.query("SELECT seq FROM frames WHERE node_id = 1")}
        alerts = [(a.condition, a.subject) for a in list_alerts(store)]
    assert stored == set(range(1, FRAMES + 2))  # every frame, acked before the kill or after
    assert alerts.count(("prolonged_toilet", alerts_subject(alerts))) == 1
    assert len(alerts) == len(set(alerts)), alerts
    assert last_day(home) == (today - timedelta(days=1)).isoformat()  # not analysed again
    assert model_state(home) == state


FRAMES = 3000


def node_frames() -> dict[int, bytes]:
    """What a node makes, once: frames 1..FRAMES + 1, the 20th a long visit."""
    return {seq: toilet_long(seq) if seq == 20 else visit(seq) for seq in range(1, FRAMES + 2)}


def send_all(s: Serving, frames: dict[int, bytes], acked: list[int], unacked: list[int],
             killed: threading.Event) -> None:
    """Frames 1..FRAMES as fast as their acks come, until the service is killed: what is
    left counts as unacked."""
    for seq in range(1, FRAMES + 1):
        if killed.is_set():
            unacked.append(seq)
            continue
        try:
            ok = s.send(frames[seq], wait_s=0.2)
        except OSError:
            ok = False
        (acked if ok else unacked).append(seq)


def alerts_subject(alerts: list[tuple[str, str]]) -> str:
    (subject,) = {s for c, s in alerts if c == "prolonged_toilet"}
    return subject


def last_day(db: Path) -> str | None:
    with Store(db) as store:
        try:
            row = store.conn.execute("SELECT last_day FROM models WHERE resident = 'r-1'"
                                     ).fetchone()
        except Exception:  # no models table yet
            return None
    return None if row is None else row[0]


def model_state(db: Path) -> str:
    with Store(db) as store:
        return str(store.query("SELECT state_json FROM models WHERE resident = 'r-1'")[0][0])


def test_a_bad_configuration_is_refused_by_name(tmp_path):
    bad = tmp_path / "kinsight.toml"
    bad.write_text('db = "x.db"\nudp = "127.0.0.1:0"\nmorning = "25:00"\n')
    proc = subprocess.run([sys.executable, "-m", "kinsight.cli", "serve", "--config", str(bad)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "morning" in proc.stderr and "HH:MM" in proc.stderr and "Traceback" not in proc.stderr
    bad.write_text('db = "x.db"\nudp = "127.0.0.1:0"\nport = 5\n')
    proc = subprocess.run([sys.executable, "-m", "kinsight.cli", "serve", "--config", str(bad)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "port" in proc.stderr and "the keys are" in proc.stderr

