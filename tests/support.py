"""Helpers the tests share: paths, golden vectors, running MicroPython."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
