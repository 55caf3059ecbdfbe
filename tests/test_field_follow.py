"""``kinsight-field logs --follow`` on the virtual node: a provisioned node is rebooted
with a follower already on its socket:// port; the follower shows the running loop's
console lines (the boot summary, the host answering, a summary, an event), stops at
Ctrl-C without a traceback, and the node never noticed: it goes on sensing (a second
follower sees an event the world made after the first had gone), on the same boot."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kinsight.store import Store
from kinsight_field.cli import main
from kinsight_field.virtual_node import VirtualNode
from support import start_listener

pytestmark = pytest.mark.slow

FIELD = str(Path(sys.executable).parent / "kinsight-field")
# A line's start may follow another client's REPL prompt: the virtual node's clients
# share one line, as on a board's UART.
LINE = re.compile(r"\[(\d+)\.\d\]\[([DIWE])\]\[([a-z]+)\] (.+)$")


class Follower:
    """``kinsight-field logs --follow`` in a process of its own, its lines read by a thread
    so a wait for one that never comes fails at its deadline."""

    def __init__(self, url: str, *extra: str) -> None:
        self.proc = subprocess.Popen([FIELD, "logs", "--follow", "--port", url, *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        assert self.proc.stderr is not None and self.proc.stdout is not None
        said = self.proc.stderr.readline()  # printed once it is connected
        assert said.startswith(f"following {url}"), said + self.proc.stderr.read()
        self.lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        threading.Thread(target=lambda: [self.lines.put(line) for line in stdout],
                         daemon=True).start()

    def read_until(self, wanted: str, seconds: float) -> list[str]:
        """Its lines until one has ``wanted`` (fails after ``seconds``)."""
        got: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            got.append(line.rstrip("\n"))
            if wanted in line:
                return got
        raise AssertionError(f"no {wanted!r} within {seconds} s: {got}")

    def stop(self) -> tuple[str, str]:
        """Ctrl-C, as the user stops it; what it printed since, on stdout and stderr."""
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=10)
        rest: list[str] = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return "".join(rest), err


def _parsed(lines: list[str]) -> list[tuple[int, str, str, str]]:
    out = []
    for line in lines:
        m = LINE.search(line)
        if m:
            out.append((int(m[1]), m[2], m[3], m[4]))
    return out


def _statuses(db: Path) -> int:
    with Store(db) as store:
        return int(store.query("SELECT COUNT(*) FROM statuses WHERE node_id = 103")[0][0])


def test_logs_follow_shows_the_running_loop_and_leaves_it_running(tmp_path: Path):
    db = tmp_path / "host.db"
    listener, port = start_listener(db)
    node = VirtualNode(tmp_path / "flash", pty_path=tmp_path / "pty",
                       socket_addr=("127.0.0.1", 0))
    node.start()
    pty = str(tmp_path / "pty")
    assert node.socket_address is not None
    url = "socket://{}:{}".format(*node.socket_address)
    first = second = None
    try:
        assert main(["deploy", "--port", pty, "--mpy"]) == 0
        assert main(["provision", "--port", pty, "--db", str(db), "--node-id", "103",
                     "--board", "esp32-devkitc", "--udp", f"127.0.0.1:{port}", "--ssid",
                     "home", "--password", "secret", "--role", "seat:fsr:pin=34"]) == 0
        first = Follower(url)
        time.sleep(0.5)  # the node has taken the connection: what it prints reaches it
        assert main(["reboot", "--port", pty]) == 0
        lines = first.read_until("[node] up", 60)
        out, err = first.stop()
        assert first.proc.returncode == 0, err
        assert "Traceback" not in err + out and err.strip().endswith(f"stopped following {url}")
        parsed = _parsed(lines + out.splitlines())
        tags = [(level, tag) for _, level, tag, _ in parsed]
        boot = [text for _, _, tag, text in parsed if tag == "boot"]
        assert boot and "node 103 on esp32-devkitc, reset hard" in boot[0], lines
        assert f"roles seat (fsr); uplink udp 127.0.0.1:{port}" in boot[1]
        assert ("I", "uplink") in tags  # the host's acks came
        (summary,) = [text for _, _, tag, text in parsed if tag == "node"][:1]
        assert re.match(r"up \d+ s, boot \d+, queue \d+, sent [1-9]\d*, acked [1-9]", summary)
        boots, statuses = node.boots, _statuses(db)
        assert statuses >= 1

        # The first follower is gone and the loop still senses: a sit noticed now is said
        # to whoever follows next.
        second = Follower(url, "--seconds", "40")
        node.world.sit_down()
        time.sleep(12)
        node.world.stand_up()
        lines = second.read_until("[event] seat sit", 35)
        second.stop()
        later = _parsed(lines)
        assert later, lines
        assert later[-1][0] > parsed[-1][0]  # the same uptime, counting on
        assert node.boots == boots and node.running  # no reset; main.py still runs
        assert _statuses(db) == statuses  # a new boot would have sent a status at once
    finally:
        for follower in (first, second):
            if follower is not None and follower.proc.poll() is None:
                follower.proc.kill()
                follower.proc.wait(10)
        node.stop()
        listener.terminate()
        listener.wait(10)


def test_follow_seconds_stops_by_itself_and_needs_a_node(tmp_path: Path, capsys):
    node = VirtualNode(tmp_path / "flash", pty_path=tmp_path / "pty",
                       socket_addr=("127.0.0.1", 0))
    node.start()
    try:
        assert node.socket_address is not None
        url = "socket://{}:{}".format(*node.socket_address)
        started = time.monotonic()
        assert main(["logs", "--follow", "--seconds", "1.5", "--port", url]) == 0
        assert 1.5 <= time.monotonic() - started < 10
        assert node.mode == "friendly" and node.boots == 1  # nothing was sent to it
    finally:
        node.stop()
    capsys.readouterr()
    assert main(["logs", "--follow", "--seconds", "1", "--port", url]) == 1
    assert capsys.readouterr().err.startswith(f"kinsight-field: nothing answers at {url}")
    assert main(["logs", "--seconds", "1", "--port", url]) == 1
    assert "--seconds goes with --follow" in capsys.readouterr().err
