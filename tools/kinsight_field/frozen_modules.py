"""The virtual node's "frozen" firmware: what a board has built into its flash image.

A board runs the firmware frozen, precompiled and read-only; the virtual node
stages the same modules as .mpy in its rom folder (mounted read-only at
"/.frozen" by device/agent.py), with device/hal.py in place of firmware/hal.py.
Compiling them from source on an ESP32's heap would need far more memory than
running them does.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from kinsight.simulation import micropython as mpy

log = logging.getLogger(__name__)

DEVICE_DIR = Path(__file__).resolve().parent / "device"


@functools.cache
def _cache_dir() -> Path:
    # One cache per process, gone when it exits: the nodes a test run starts one after
    # another compile the firmware once between them, and nothing stays in the temp dir.
    path = Path(tempfile.mkdtemp(prefix="kinsight-vnode-mpy-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _frozen_sources() -> list[Path]:
    root = mpy.source_root()
    firmware = [p for p in sorted((root / "firmware").glob("*.py"))
                if p.name not in ("hal.py", "main.py", "boot.py")]
    return [*firmware, root / "shared" / "kinsight_wire.py", *sorted(DEVICE_DIR.glob("*.py"))]


def stage(rom: Path) -> None:
    """Compile the firmware, the shared constants and the device modules into rom (as
    .mpy, cached by content); a module mpy-cross rejects is staged as source."""
    cache = _cache_dir()
    jobs: list[tuple[Path, Path, subprocess.Popen[bytes]]] = []
    for source in _frozen_sources():
        data = source.read_bytes()
        cached = cache / f"{hashlib.sha1(data).hexdigest()}-{source.stem}.mpy"
        if cached.exists():
            shutil.copyfile(cached, rom / f"{source.stem}.mpy")
            continue
        tmp = cache / f"{cached.name}.{os.getpid()}.tmp"
        proc = subprocess.Popen([mpy.mpy_cross_binary(), "-s", source.name, "-o", str(tmp),
                                 str(source)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        jobs.append((source, cached, proc))
    for source, cached, proc in jobs:
        _, err = proc.communicate()
        tmp = cache / f"{cached.name}.{os.getpid()}.tmp"
        if proc.returncode == 0:
            os.replace(tmp, cached)
            shutil.copyfile(cached, rom / f"{source.stem}.mpy")
        else:
            log.warning("mpy-cross rejects %s, staged as source: %s", source.name,
                        err.decode(errors="replace").strip())
            shutil.copyfile(source, rom / source.name)


def heap_bytes(text: str) -> int:
    """``112K``, ``2M`` or a number of bytes."""
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


_COSTS: dict[str, int] = {}


def import_cost(rom: Path) -> int:
    """The heap the staged firmware modules take once imported, on the unix port.

    A board runs them frozen: their bytecode, constants and code objects stay in flash.
    Under the unix port the same .mpy load into the heap, so the virtual node's heap is
    the board's free heap plus this, measured (not guessed) for the firmware as it is
    now: every module a node may import, imported once into a large heap."""
    files = sorted(p for p in rom.iterdir() if p.suffix in (".mpy", ".py") and p.stem != "agent")
    digest = hashlib.sha1(b"".join(p.name.encode() + p.read_bytes() for p in files)).hexdigest()
    if digest in _COSTS:
        return _COSTS[digest]
    names = [p.stem for p in files]
    code = ("import gc\nimport asyncio\ngc.collect()\nbase = gc.mem_alloc()\n"
            + "".join(f"import {n}\n" for n in names)
            + "gc.collect()\nprint(gc.mem_alloc() - base)\n")
    done = subprocess.run([mpy.micropython_binary(), "-X", "heapsize=8M", "-c", code],
                          env=dict(os.environ, MICROPYPATH=".frozen" + os.pathsep + str(rom)),
                          capture_output=True, text=True, timeout=60, cwd=str(rom))
    if done.returncode != 0:
        raise RuntimeError(f"measuring the firmware's import cost failed: {done.stderr}")
    _COSTS[digest] = cost = int(done.stdout.split()[-1])
    return cost
