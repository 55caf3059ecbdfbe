"""``kinsight ota``: stage a firmware update for a node, list updates, withdraw one.

The node learns of a staged bundle from the acks the host sends it, fetches it in
pieces over its own uplink, checks its SHA-256, installs it in its free slot and
restarts into it; a boot of it that fails goes back to the firmware before
(docs/node.md). A running ``kinsight serve`` or ``listen`` on the same database does
the host's side; nothing else needs to run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import ConfigError
from ..simulation import micropython as mpy
from ..store import Store
from ..store import updates as staged
from ..wire.bundle import BOARD_MODULES, pack


def firmware_files(folder: Path | None, *, source: bool = False) -> tuple[dict[str, bytes], str]:
    """(bundle file name -> contents, firmware version) of the firmware in ``folder``
    (the checkout's firmware/ and shared/ when None), compiled by mpy-cross unless
    ``source``. The board's own modules (the loader, the hardware layer) are left out."""
    if folder is None:
        try:
            root = mpy.source_root()
        except ConfigError as exc:
            raise ConfigError(f"{exc}; or give --firmware DIR") from None
        sources = [*sorted((root / "firmware").glob("*.py")), root / "shared" / "kinsight_wire.py"]
    else:
        if not folder.is_dir():
            raise ConfigError(f"--firmware {folder}: no such folder")
        sources = sorted([*folder.glob("*.py"), *folder.glob("*.mpy")])
    sources = [p for p in sources if p.stem not in BOARD_MODULES]
    if not sources:
        raise ConfigError(f"--firmware {folder}: no .py or .mpy modules in it")
    version = "unknown"
    for p in sources:
        if p.name == "node.py":
            found = re.search(r'^FIRMWARE_VERSION = "([^"]+)"', p.read_text(encoding="utf-8"),
                              re.M)
            if found:
                version = found.group(1)
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in sources:
            if p.suffix == ".mpy" or source:
                files[p.name] = p.read_bytes()
                continue
            target = Path(tmp) / f"{p.stem}.mpy"
            try:
                done = subprocess.run([mpy.mpy_cross_binary(), "-s", p.name, "-o", str(target),
                                       str(p)], capture_output=True, text=True, timeout=60)
            except ConfigError as exc:
                raise ConfigError(f"{exc}, or give --source to send the modules as source")\
                    from None
            if done.returncode != 0:
                raise ConfigError(f"mpy-cross cannot compile {p.name}: {done.stderr.strip()}")
            files[target.name] = target.read_bytes()
    return files, version


def do_ota(args: argparse.Namespace) -> int:
    path = Path(args.db)
    if not args.db.startswith("postgresql:") and not path.exists():
        raise ConfigError(f"no database at {args.db}")
    now_ms = int(time.time() * 1000)
    with Store(args.db, create=False) as store:
        if args.cancel:
            if args.node is None:
                raise ConfigError("--cancel needs --node")
            n = staged.cancel(store, args.node, now_ms=now_ms)
            print(f"node {args.node}: " + ("the staged update is withdrawn" if n else
                                          "no update was staged"))
            return 0
        if args.node is None or args.list:
            rows = staged.updates(store, args.node)
            if not rows:
                print("no updates staged")
            for u in rows:
                when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(u.staged_ms / 1000))
                progress = (f", fetched {min(u.fetched, u.size) * 100 // u.size}%"
                            if u.state == "staged" else "")
                print(f"bundle {u.bundle}: node {u.node_id}, firmware {u.firmware}, "
                      f"{u.size} bytes, staged {when} UTC: {u.state}{progress}")
            return 0
        if args.node not in store.node_keys():
            raise ConfigError(f"node {args.node} has no key in {args.db}: add it first "
                               "(kinsight keys add)")
        folder = Path(args.firmware) if args.firmware else None
        files, version = firmware_files(folder, source=args.source)
        data = pack(files)
        bundle = staged.stage(store, args.node, data, version, now_ms=now_ms)
    print(f"node {args.node}: bundle {bundle} staged (firmware {version}, {len(files)} files, "
          f"{len(data)} bytes): the node fetches it after the next ack it gets, and "
          "'kinsight ota --db DB --node ID --list' says how far it has come")
    return 0
