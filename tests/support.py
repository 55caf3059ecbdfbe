"""Helpers the tests share: paths, golden vectors, running MicroPython."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
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
    """Run a script under the MicroPython unix port with an ESP32-sized heap and the
    firmware and shared folders on its path, as /lib would be on a node."""
    full_env = dict(os.environ,
                    MICROPYPATH=os.pathsep.join([str(REPO / "firmware"), str(REPO / "shared"),
                                                 str(REPO / "tests" / "firmware"),
                                                 str(REPO / "tools")]))
    full_env.update(env or {})
    command = [mpy.micropython_binary(), "-X", f"heapsize={mpy.ESP32_HEAP}", str(script), *args]
    return subprocess.run(command,
                          input=stdin, capture_output=True, timeout=timeout, env=full_env,
                          cwd=REPO)


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
    import time

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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """What a real SMTP server on 127.0.0.1 (aiosmtpd) received."""

    def __init__(self) -> None:
        self.got: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.got.append(envelope)
        return "250 OK"


class Broker:
    """A real Mosquitto on 127.0.0.1 with a config and a password file of its own in
    ``folder``; ``restart`` stops it and starts it again on the same port."""

    USER, PASSWORD = "kinsight", "a broker passphrase"

    def __init__(self, folder: Path):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise FileNotFoundError("mosquitto is not installed (./run test installs it: "
                                    "apt-get install mosquitto)")
        self.exe = exe
        self.folder = folder
        self.port = free_port()
        passwd = folder / "passwd"
        subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd",
                        "-c", "-b", str(passwd), self.USER, self.PASSWORD], check=True,
                       capture_output=True)
        passwd.chmod(0o600)
        self.conf = folder / "mosquitto.conf"
        # Run as whoever runs the tests (as root it would switch to the "mosquitto"
        # user, who cannot read a test's private folder).
        self.conf.write_text(f"user {getpass.getuser()}\n"
                             f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
                             f"password_file {passwd}\npersistence false\n"
                             "log_dest stderr\nlog_type error\nlog_type warning\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://{self.USER}:{self.PASSWORD.replace(' ', '%20')}@127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=(self.folder / "mosquitto.log").open("ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start: "
                           + (self.folder / "mosquitto.log").read_text())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _pg_bin() -> Path | None:
    for found in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True):
        return found.parent
    exe = shutil.which("initdb")
    return Path(exe).parent if exe else None


class PgCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 in ``folder`` (Debian's
    ``postgresql``: ``initdb`` and ``pg_ctl``), run as an unprivileged user: as
    ``postgres`` when the tests run as root, else as whoever runs them."""

    USER = "kinsight"

    def __init__(self, folder: Path):
        bindir = _pg_bin()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (./run test installs it: "
                                    "apt-get install postgresql)")
        self.bin = bindir
        self.port = free_port()
        self._as: list[str] = []
        self._own: Path | None = None
        if os.geteuid() == 0:  # initdb refuses root: the server runs as postgres, in a
            import pwd  # folder of its own that it can reach (pytest's are root's)
            import tempfile

            pw = pwd.getpwnam("postgres")
            folder = self._own = Path(tempfile.mkdtemp(prefix="kinsight-pg-"))
            os.chown(folder, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.folder = folder
        self.data = folder / "data"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.USER,
                  "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(folder / "server.log"), "-w",
                  "-o", f"-p {self.port} -k {folder} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c synchronous_commit=off -c max_connections=200",
                  "start")
        self._n = 0

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(self.bin / tool), *args], capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr or done.stdout}")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{db}"

    def fresh_database(self) -> str:
        """A new, empty database's URL."""
        import psycopg

        self._n += 1
        name = f"t{os.getpid()}_{self._n}"
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        if self._own is not None:
            shutil.rmtree(self._own, ignore_errors=True)
