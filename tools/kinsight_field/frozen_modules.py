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
