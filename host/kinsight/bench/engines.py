"""The real engines some benchmarks and tests start for themselves, on loopback in
temporary folders: Mosquitto (``Broker``) and a PostgreSQL cluster (``PgCluster``),
from Debian's packages (``mosquitto``, ``postgresql``).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from ..errors import ConfigError


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A real Mosquitto on 127.0.0.1 with a config and a password file of its own in
    ``folder``; ``restart`` stops it and starts it again on the same port."""

    USER, PASSWORD = "kinsight", "a broker passphrase"

    def __init__(self, folder: Path):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto; "
                                    "./run test installs it)")
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
        raise ConfigError("mosquitto did not start: "
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
            raise FileNotFoundError("PostgreSQL is not installed (apt-get install "
                                    "postgresql; ./run test installs it)")
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
            raise ConfigError(f"{tool} failed: {(done.stderr or done.stdout).strip()}")

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
