"""Real-time alerts from ``kinsight listen --alerts``: signed frames over real UDP (and a
serial line) into a listener whose RealtimeWatcher raises the real-time rules' alerts
within a second, once, for placed nodes only, and on its tick when no frame comes."""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kinsight.alerts import AlertRecord, AlertRouter, Policy, list_alerts
from kinsight.cli import main
from kinsight.ingest import Ingestor
from kinsight.ingest.serial_port import SerialListener
from kinsight.ingest.udp import UdpListener
from kinsight.residents import import_jsonl, place
from kinsight.service import RealtimeWatcher
from kinsight.store import Store
from kinsight.wire import Header, encode_frame, open_frame
from kinsight.wire.slip import encode

KEY = bytes(range(32))
# toilet nodes of two residents, an unplaced node, and the hall node of a resident
# with a history
A_TOILET, B_TOILET, STRANGER, C_HALL = 11, 14, 12, 13
MIN_DS = 600  # deciseconds in a minute


def toilet_long(node: int, seq: int, minutes: int = 50, ended_min_ago: int = 0,
                boot: int = 1) -> bytes:
    """A toilet node's prolonged-presence event: in the toilet for ``minutes`` until
    ``ended_min_ago`` minutes ago, as the node sends it now."""
    return encode_frame(KEY, "events", Header(node_id=node, boot=boot, seq=seq,
                                              time_s=int(time.time())),
                        {"events": [{"type": "prolonged_presence", "role": "toilet",
                                     "ago_ds": (minutes + ended_min_ago) * MIN_DS,
                                     "duration_ds": minutes * MIN_DS}]})


def visit(node: int, seq: int, boot: int = 1) -> bytes:
    return encode_frame(KEY, "events", Header(node_id=node, boot=boot, seq=seq,
                                              time_s=int(time.time())),
                        {"events": [{"type": "visit", "role": "toilet", "ago_ds": 3000,
                                     "duration_ds": 2400}]})


def k(*args: str) -> None:
    assert main(list(args)) == 0, args


def wait_for(what: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "home.db")
    for node in (A_TOILET, B_TOILET, STRANGER, C_HALL):
        k("keys", "--db", path, "add", str(node), KEY.hex())
    k("place", "--db", path, str(A_TOILET), "res-a", "--room", "bathroom")
    k("place", "--db", path, str(B_TOILET), "res-b", "--room", "bathroom")
    return path


class Listening:
    """``kinsight listen --udp 127.0.0.1:0 --alerts ...`` in its own process, its output
    lines read as they come, and a node's socket to send it frames."""

    def __init__(self, db: str, tmp_path: Path, *extra: str):
        self.stderr_path = tmp_path / "listen.err"
        with self.stderr_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kinsight.cli", "listen", "--db", db, "--udp",
                 "127.0.0.1:0", "--alerts", *extra],
                stdout=subprocess.PIPE, stderr=err, text=True)
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout
        first = self.stdout.readline()
        assert first.startswith("listening on udp 127.0.0.1:"), first + self.stderr()
        self.port = int(first.rsplit(":", 1)[1])
        assert self.stdout.readline().startswith("real-time alerts on"), self.stderr()
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5)

    def _read(self) -> None:
        for line in self.stdout:
            self.lines.put((time.time(), line))

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def send(self, raw: bytes) -> float:
        """Send a frame and wait for its ack; the time it was sent (s since the epoch)."""
        sent_s = time.time()
        self.sock.sendto(raw, ("127.0.0.1", self.port))
        ack = open_frame(self.sock.recv(2048), KEY)
        assert ack.kind == "ack"
        return sent_s

    def alert_line(self, timeout_s: float = 5.0) -> tuple[float, str]:
        while True:
            when, line = self.lines.get(timeout=timeout_s)
            if line.startswith("alert "):
                return when, line

    def stop(self) -> list[str]:
        """SIGTERM; the output lines not yet taken."""
        self.sock.close()
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=10) == 0, self.stderr()
        self.reader.join(timeout=5)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get()[1])
        return rest

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def listening(db: str, tmp_path: Path) -> Iterator[Callable[..., Listening]]:
    started: list[Listening] = []

    def start(*extra: str) -> Listening:
        started.append(Listening(db, tmp_path, *extra))
        return started[-1]

    yield start
    for lis in started:
        lis.kill()


def log_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def conditions(db: str) -> list[tuple[str, str]]:
    with Store(db) as s:
        return [(a.resident, a.condition) for a in list_alerts(s)]


@pytest.mark.slow
def test_a_toilet_long_frame_raises_an_alert_within_a_second_and_only_once(
        db: str, tmp_path: Path, listening: Callable[..., Listening],
        record_property: Callable[[str, object], None]):
    log = tmp_path / "alerts.jsonl"
    lis = listening("--log", str(log), "--tick", "0.2")
    first = toilet_long(A_TOILET, 0)
    sent_s = lis.send(first)
    printed_s, line = lis.alert_line()
    with Store(db) as s:
        (alert,) = list_alerts(s)
    latency_ms = alert.created_ms - sent_s * 1000
    record_property("frame_to_alert_ms", round(latency_ms, 1))
    record_property("frame_to_printed_alert_ms", round((printed_s - sent_s) * 1000, 1))
    assert latency_ms < 1000, f"alert recorded {latency_ms:.0f} ms after the frame was sent"
    assert printed_s - sent_s < 1.0
    assert (alert.resident, alert.condition, alert.severity) == (
        "res-a", "prolonged_toilet", "urgent")
    assert "50 min" in alert.text
    assert line == f"alert {alert.id} res-a prolonged_toilet (urgent): {alert.text}\n"
    assert [(x["id"], x["condition"], x["resident"]) for x in log_lines(log)] == [
        (alert.id, "prolonged_toilet", "res-a")]

    # The same frame again (a retransmission), then a later long visit in a new frame,
    # with ticks in between: nothing new for res-a. res-b's alert shows the listener has
    # run the watcher for everything sent before it.
    lis.send(first)
    lis.send(toilet_long(A_TOILET, 1, minutes=55))
    time.sleep(0.5)
    lis.send(toilet_long(B_TOILET, 0))
    _, barrier = lis.alert_line()
    assert " res-b prolonged_toilet " in barrier
    assert conditions(db) == [("res-a", "prolonged_toilet"), ("res-b", "prolonged_toilet")]
    assert len(log_lines(log)) == 2
    rest = lis.stop()
    assert not [x for x in rest if x.startswith("alert ")]
    assert "  alerts raised: 2; messages sent: 0\n" in rest  # nobody to send them to
    assert "Traceback" not in lis.stderr()


@pytest.mark.slow
def test_a_webhook_that_hangs_holds_up_neither_acks_nor_other_alerts(
        db: str, tmp_path: Path, listening: Callable[..., Listening]):
    # A web server that accepts connections and never answers: each delivery attempt
    # waits for the webhook's timeout, three times over.
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"residents": {"res-a": {
        "consent": {"carer": "all"},
        "circle": [{"name": "day carer", "role": "carer", "receives": "all",
                    "webhook": f"http://127.0.0.1:{hang.getsockname()[1]}/hook"}]}}}))
    lis = listening("--policy", str(policy))
    try:
        lis.send(toilet_long(A_TOILET, 0))
        lis.alert_line()
        # res-a's alert is now being sent to the hanging server; res-b's frame is acked and
        # her alert raised as quickly as ever
        wait_for(lambda: bool(select.select([hang], [], [], 0)[0]))
        sent_s = lis.send(toilet_long(B_TOILET, 0))
        acked_s = time.time()
        printed_s, line = lis.alert_line()
        assert acked_s - sent_s < 1.0 and printed_s - sent_s < 1.0
        assert " res-b prolonged_toilet " in line
    finally:
        hang.close()  # the delivery fails now, instead of after its timeouts
    rest = lis.stop()
    assert "  alerts raised: 2; messages sent: 0\n" in rest


@pytest.mark.slow
def test_an_acknowledged_alert_is_not_raised_again_for_the_same_day(
        db: str, tmp_path: Path, listening: Callable[..., Listening]):
    # No throttle at all: only the watcher's once-a-day rule stands between the next
    # frame (whose check finds the same long visit again) and a second alert.
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"organisation": {"throttle_hours": 0}}))
    lis = listening("--policy", str(policy))
    lis.send(toilet_long(A_TOILET, 0))
    _, line = lis.alert_line()
    alert_id = line.split()[1]
    k("ack", "--db", db, alert_id, "--outcome", "useful", "--by", "carer")
    lis.send(visit(A_TOILET, 1))
    lis.send(toilet_long(B_TOILET, 0))
    _, barrier = lis.alert_line()
    assert " res-b " in barrier
    assert conditions(db) == [("res-a", "prolonged_toilet"), ("res-b", "prolonged_toilet")]
    lis.stop()


@pytest.mark.slow
def test_an_unplaced_node_raises_nothing_and_breaks_nothing(
        db: str, listening: Callable[..., Listening]):
    lis = listening("--tick", "0.2")
    lis.send(toilet_long(STRANGER, 0))
    lis.send(toilet_long(A_TOILET, 0))
    _, line = lis.alert_line()
    assert " res-a prolonged_toilet " in line
    assert conditions(db) == [("res-a", "prolonged_toilet")]
    lis.stop()
    assert "Traceback" not in lis.stderr()
    with Store(db) as s:
        assert s.query("SELECT node_id, COUNT(*) FROM events GROUP BY node_id") == [
            (A_TOILET, 1), (STRANGER, 1)]


@pytest.mark.slow
def test_a_failing_check_is_logged_and_frames_are_still_stored_and_acked(
        db: str, listening: Callable[..., Listening]):
    # A database moved to a machine that lacks res-a's time zone: her checks fail.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE residents SET tz = 'Mars/Olympus_Mons' WHERE resident = 'res-a'")
    lis = listening()
    for seq in range(3):
        lis.send(toilet_long(A_TOILET, seq))
    lis.send(toilet_long(B_TOILET, 0))
    _, line = lis.alert_line()
    assert " res-b prolonged_toilet " in line  # one resident's failure does not stop another's
    lis.stop()
    err = lis.stderr()
    assert "real-time check of res-a failed" in err and "Mars/Olympus_Mons" in err
    with Store(db) as s:
        assert s.query("SELECT seq FROM frames WHERE node_id = ? ORDER BY seq", (A_TOILET,)) == [
            (0,), (1,), (2,)]
    assert conditions(db) == [("res-b", "prolonged_toilet")]


def test_a_failing_hook_is_logged_and_the_listener_keeps_storing(
        db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    # A real watcher whose database connection has gone: every call raises.
    gone = Store(db)
    watcher = RealtimeWatcher(gone, AlertRouter(Policy(), gone))
    gone.close()
    with Store(db) as store:
        listener = UdpListener(Ingestor(store), "127.0.0.1", 0, after_batch=watcher)
        stop = threading.Event()
        thread = threading.Thread(target=listener.serve, kwargs={"stop": stop, "tick_s": 0.02})
        thread.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(5)
        try:
            with caplog.at_level(logging.ERROR, logger="kinsight.ingest.udp"):
                for seq in range(3):
                    sock.sendto(toilet_long(A_TOILET, seq), listener.address)
                    assert open_frame(sock.recv(2048), KEY).body.acked_seq == seq
                wait_for(lambda: any(f"nodes [{A_TOILET}]" in r.getMessage()
                                     for r in caplog.records))
        finally:
            stop.set()
            thread.join(timeout=10)
            listener.close()
            sock.close()
        assert not thread.is_alive()
        assert store.query("SELECT seq FROM frames ORDER BY seq") == [(0,), (1,), (2,)]
    failures = [r for r in caplog.records if r.getMessage().startswith("after-batch hook failed")]
    assert failures and all(r.exc_info and r.exc_info[0] is sqlite3.ProgrammingError
                            for r in failures)


def history(path: Path, resident: str, today: date) -> Path:
    """Fourteen ordinary days before ``today``, in wall-clock time: the toilet at 07:30,
    water at 08:00, 12:00, 18:00 and 21:00."""
    lines = []
    for i in range(14, 0, -1):
        d = (today - timedelta(days=i)).isoformat()
        lines.append({"resident": resident, "sensor": "toilet", "start": f"{d}T07:30:00",
                      "end": f"{d}T07:35:00"})
        lines += [{"resident": resident, "sensor": "tap", "start": f"{d}T{h}:00:00",
                   "end": f"{d}T{h}:01:00", "value": 250} for h in ("08", "12", "18", "21")]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_the_tick_raises_not_up_without_any_frame(db: str, tmp_path: Path):
    tz = ZoneInfo("Europe/London")
    today = date(2024, 6, 20)
    clock_ms = [int(datetime(2024, 6, 20, 8, 30, tzinfo=tz).timestamp() * 1000)]
    with Store(db) as store:
        import_jsonl(store, history(tmp_path / "res-c.jsonl", "res-c", today), "Europe/London")
        place(store, C_HALL, "res-c", "hall")
        raised: list[AlertRecord] = []
        router = AlertRouter(Policy(), store, clock=lambda: clock_ms[0])
        watcher = RealtimeWatcher(store, router, lambda: clock_ms[0], tick_s=60,
                                  on_alert=raised.append)
        listener = UdpListener(Ingestor(store), "127.0.0.1", 0, after_batch=watcher)
        stop = threading.Event()
        thread = threading.Thread(target=listener.serve, kwargs={"stop": stop, "tick_s": 0.02})
        thread.start()
        try:
            wait_for(lambda: watcher.ticks == 1)
            time.sleep(0.1)  # more idle passes within the minute: no tick, nothing raised
            assert watcher.ticks == 1 and raised == []  # 08:30: within the 2 h margin
            clock_ms[0] += 2 * 3_600_000  # 10:30, usually up by 07:30
            wait_for(lambda: bool(raised))
        finally:
            stop.set()
            thread.join(timeout=10)
            listener.close()
        assert listener.datagrams == 0
        assert watcher.ticks == 2
        (alert,) = raised
        assert (alert.resident, alert.condition, alert.day) == ("res-c", "not_up", "2024-06-20")
        assert "usually up by 07:30" in alert.text
        assert [(a.id, a.condition) for a in list_alerts(store)] == [(alert.id, "not_up")]


@pytest.mark.slow
def test_listen_tick_raises_not_up_for_a_resident_with_a_history(
        db: str, tmp_path: Path, listening: Callable[..., Listening]):
    # A zone where it is now about 13:00, five and a half hours past res-c's 07:30.
    utc_now = datetime.now(timezone.utc)
    offset_h = 13 - utc_now.hour
    zone = "Etc/GMT" if offset_h == 0 else f"Etc/GMT{-offset_h:+d}"
    today = utc_now.astimezone(ZoneInfo(zone)).date()
    k("import", "--db", db, "--tz", zone, str(history(tmp_path / "res-c.jsonl", "res-c", today)))
    k("place", "--db", db, str(C_HALL), "res-c", "--room", "hall", "--tz", zone)
    log = tmp_path / "alerts.jsonl"
    lis = listening("--log", str(log), "--tick", "0.5")
    _, line = lis.alert_line()
    lis.stop()
    (raised,) = log_lines(log)
    assert (raised["resident"], raised["condition"]) == ("res-c", "not_up")
    # The clock in the words is the zone's when it was raised (13:xx, or 14:00 if the
    # hour turned meanwhile).
    local = datetime.fromtimestamp(int(raised["created_ms"]) / 1000, tz=ZoneInfo(zone))
    said = line.split("Not seen up and about yet at ")[1][:5]
    # the check's clock, to the nearest minute, a moment before the alert was stored
    assert said in {f"{local + timedelta(minutes=m):%H:%M}" for m in (-1, 0, 1)}, line
    assert " res-c not_up (urgent): " in line and local.hour in (13, 14)
    assert "usually up by 07:30" in line


def test_the_serial_listener_runs_the_watcher_after_its_acks(db: str):
    controller, device = os.openpty()
    with Store(db) as store:
        raised: list[AlertRecord] = []
        watcher = RealtimeWatcher(store, AlertRouter(Policy(), store), on_alert=raised.append)
        watcher(frozenset())  # the first tick, so only the batch can raise what follows
        acks_waiting: list[bool] = []

        def after_batch(nodes: frozenset[int]) -> None:
            if nodes:  # the acks are already on their way down the line
                acks_waiting.append(bool(select.select([controller], [], [], 0)[0]))
            watcher(nodes)

        listener = SerialListener(Ingestor(store), os.ttyname(device), after_batch=after_batch)
        try:
            os.write(controller, encode(visit(B_TOILET, 0)) + encode(toilet_long(A_TOILET, 0)))
            listener.serve(idle_exit_s=0.3, tick_s=0.05)
            acks = b""
            while select.select([controller], [], [], 0.5)[0]:
                acks += os.read(controller, 4096)
        finally:
            listener.close()
            os.close(controller)
            os.close(device)
    assert watcher.ticks == 1
    assert acks_waiting == [True]
    assert [(a.resident, a.condition) for a in raised] == [("res-a", "prolonged_toilet")]
    assert acks.count(b"\xc0") == 4  # an ack for each node's frame


def test_the_udp_listener_runs_the_watcher_after_its_acks(db: str):
    node = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    node.settimeout(5)
    with Store(db) as store:
        raised: list[AlertRecord] = []
        watcher = RealtimeWatcher(store, AlertRouter(Policy(), store), on_alert=raised.append)
        watcher(frozenset())
        acks_waiting: list[bool] = []

        def after_batch(nodes: frozenset[int]) -> None:
            if nodes:
                acks_waiting.append(bool(select.select([node], [], [], 0)[0]))
            watcher(nodes)

        listener = UdpListener(Ingestor(store), "127.0.0.1", 0, after_batch=after_batch)
        try:
            node.sendto(toilet_long(A_TOILET, 0), listener.address)
            wait_for(lambda: select.select([listener.sock], [], [], 0)[0] != [])
            assert listener.serve_ready() == 1
            assert open_frame(node.recv(2048), KEY).kind == "ack"
        finally:
            listener.close()
            node.close()
    assert acks_waiting == [True]
    assert [(a.resident, a.condition) for a in raised] == [("res-a", "prolonged_toilet")]


def test_cli_alert_options_go_with_alerts(db: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]):
    assert main(["listen", "--db", db, "--udp", "127.0.0.1:0", "--policy", "p.json"]) == 1
    assert "--policy, --log and --tick go with --alerts" in capsys.readouterr().err
    assert main(["listen", "--db", db, "--udp", "127.0.0.1:0", "--alerts", "--tick", "0"]) == 1
    assert "--tick 0 is outside 0.01..86400 seconds" in capsys.readouterr().err
    assert main(["listen", "--db", db, "--udp", "127.0.0.1:0", "--alerts", "--log",
                 str(tmp_path)]) == 1
    assert "cannot write the alert log" in capsys.readouterr().err


def test_event_nodes_are_those_whose_events_were_stored(store: Store):
    from kinsight.ingest import event_nodes
    from kinsight.wire import fragment_frame

    for node in (A_TOILET, B_TOILET, STRANGER):
        store.set_node_key(node, KEY, now_ms=0)
    ingestor = Ingestor(store)
    big = encode_frame(KEY, "events", Header(node_id=B_TOILET, boot=1, seq=5, time_s=1_790_000_000),
                       {"events": [{"type": "draw", "role": "tap", "ago_ds": i, "volume_ml": i}
                                   for i in range(30)]})
    parts = fragment_frame(KEY, big, node_id=B_TOILET, boot=1, time_s=1_790_000_000, first_seq=6)
    status = encode_frame(KEY, "status", Header(node_id=STRANGER, boot=1, seq=0,
                                                time_s=1_790_000_000),
                          {"firmware": "1.0", "uptime_s": 5, "reset_cause": "power_on"})
    first = visit(A_TOILET, 0)
    results = ingestor.ingest_batch([first, status])
    assert [r.status for r in results] == ["accepted", "accepted"]
    assert event_nodes(results) == {A_TOILET}
    assert event_nodes(ingestor.ingest_batch([first, first[:-1] + b"x"])) == frozenset()
    assert event_nodes(ingestor.ingest_batch(parts[:-1])) == frozenset()
    assert event_nodes(ingestor.ingest_batch(parts[-1:])) == {B_TOILET}  # the message completed


def test_recent_activities_reads_only_the_window(db: str, tmp_path: Path):
    from kinsight.residents import recent_activities

    now_s = int(time.time())
    old = encode_frame(KEY, "events", Header(node_id=A_TOILET, boot=1, seq=0, time_s=now_s),
                       {"events": [{"type": "visit", "role": "toilet", "ago_ds": 20 * 36000,
                                    "duration_ds": 3000},  # 20 h ago
                                   {"type": "visit", "role": "toilet", "ago_ds": 10 * 36000,
                                    "duration_ds": 9 * 36000},  # 10 h ago, for 9 h
                                   {"type": "visit", "role": "toilet", "ago_ds": 36000,
                                    "duration_ds": 3000}]})  # 1 h ago
    since_ms = now_s * 1000 - 2 * 3_600_000
    imported = tmp_path / "res-a.jsonl"
    imported.write_text("".join(json.dumps(x) + "\n" for x in (
        {"resident": "res-a", "sensor": "seat", "start": _iso(since_ms - 60_000),
         "end": _iso(since_ms - 1)},
        {"resident": "res-a", "sensor": "tap", "start": _iso(since_ms - 60_000),
         "end": _iso(since_ms), "value": 200})))
    with Store(db) as store:
        Ingestor(store).ingest(old)
        import_jsonl(store, imported)
        acts = recent_activities(store, "res-a", since_ms)
    assert [(a.sensor, (now_s * 1000 - a.start_ms) // 3_600_000) for a in acts] == [
        ("toilet", 10), ("tap", 2), ("toilet", 1)]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def test_a_full_store_is_told_as_equipment_once_it_can_hold_the_alert(db: str) -> None:
    from kinsight.errors import StoreFullError

    with Store(db) as store:
        ingestor = Ingestor(store)
        router = AlertRouter(Policy(), store)
        watcher = RealtimeWatcher(store, router)
        ingestor.ingest_batch([toilet_long(A_TOILET, 0, minutes=5)])
        store.conn.execute(f"PRAGMA max_page_count = {store.query('PRAGMA page_count')[0][0]}")
        with pytest.raises(StoreFullError):
            ingestor.ingest_batch([toilet_long(A_TOILET, s, minutes=5) for s in range(1, 400)])
        assert ingestor.full_spells == [] and ingestor.store_full_since_ms is not None
        store.conn.execute("PRAGMA max_page_count = 1073741823")  # space returns
        ingestor.ingest_batch([toilet_long(A_TOILET, s, minutes=5) for s in range(1, 400)])
        ((since, until),) = ingestor.full_spells
        assert since <= until
        raised = watcher.storage_was_full(since, until)
        assert sorted((a.resident, a.condition, a.subject) for a in raised) == [
            ("res-a", "device", "host storage"), ("res-b", "device", "host storage")]
        assert "storage was full" in raised[0].text and "not a health alert" in raised[0].text
        # The same spell told again is held: it is the same incident.
        assert watcher.storage_was_full(since, until) == []
