"""``kinsight demo``: sensor nodes under MicroPython talking to a real host.

Three nodes (a chair, a tap, a toilet) each live a simulated day with the real
firmware modules under the MicroPython unix port and an ESP32-sized heap. They
send their frames over loopback UDP, through a link that drops some of them, to
the host's UDP listener, which stores them in SQLite and acks them; nodes send
again what was not acked. A forged frame and a replayed one are sent too. Then
the demo says what arrived, checks it against what the nodes sent, and exits
non-zero if anything went missing.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import mpy
from .capture import CaptureWriter
from .errors import ConfigError
from .ingest import Ingestor
from .store import Store
from .udp import UdpListener

NODES = ((101, "seat"), (102, "tap"), (103, "toilet"))


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the demo talks to the person running it


def run(out_dir: Path | None = None, loss: float = 0.1, seed: int = 7) -> int:
    if not 0 <= loss <= 0.5:
        raise ConfigError(f"--loss {loss} is outside 0..0.5")
    out = Path(out_dir or "kinsight-demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    db = out / "kinsight.db"
    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), out / "demo.kcap"):
        stale.unlink(missing_ok=True)
    root = mpy.source_root()
    keys = {node: secrets.token_bytes(32) for node, _ in NODES}

    _say(f"Kinsight demo: {len(NODES)} nodes under MicroPython (heap {mpy.ESP32_HEAP}) -> "
         f"UDP -> host -> SQLite, the link dropping {loss:.0%} of datagrams")
    with Store(db) as store:
        for node, key in keys.items():
            store.set_node_key(node, key, now_ms=int(time.time() * 1000))
        ingestor = Ingestor(store)
        capture = CaptureWriter.open(out / "demo.kcap")
        listener = UdpListener(ingestor, "127.0.0.1", 0, capture=capture)
        stop = threading.Event()
        thread = threading.Thread(target=listener.serve, kwargs={"stop": stop, "tick_s": 0.05},
                                  daemon=True)
        thread.start()
        host, port = listener.address
        _say(f"[1/4] host listening on udp {host}:{port}")
        try:
            reports = _run_nodes(root, out, host, port, keys, loss, seed)
            _say("[3/4] sending a forged frame and a replayed one")
            _attack(out / "demo.kcap", host, port)
        finally:
            stop.set()
            thread.join(timeout=10)
            listener.close()
            capture.close()
        _say("[4/4] what arrived")
        return _summarise(store, ingestor, reports, out)


def _run_nodes(root: Path, out: Path, host: str, port: int, keys: dict[int, bytes],
               loss: float, seed: int) -> dict[int, dict[str, object]]:
    procs = {}
    for node, role in NODES:
        flash = out / f"flash-{node}"
        flash.mkdir(exist_ok=True)
        for f in flash.iterdir():
            f.unlink()
        procs[node] = mpy.popen(root / "tools" / "demo_node.py", host, str(port), str(node),
                                keys[node].hex(), str(flash), role, str(seed + node), str(loss),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _say(f"[2/4] nodes {', '.join(f'{n} ({r})' for n, r in NODES)} running their day")
    reports = {}
    spinner = "|/-\\"
    started = time.monotonic()
    i = 0
    while any(p.poll() is None for p in procs.values()):
        done = sum(p.poll() is not None for p in procs.values())
        if sys.stdout.isatty():
            print(f"\r      {spinner[i % 4]} {done}/{len(procs)} nodes done, "  # noqa: T201
                  f"{time.monotonic() - started:4.1f} s", end="", flush=True)
        i += 1
        time.sleep(0.1)
        if time.monotonic() - started > 300:
            for p in procs.values():
                p.kill()
            raise ConfigError("the demo nodes did not finish within 5 minutes")
    if sys.stdout.isatty():
        print("\r" + " " * 60 + "\r", end="")  # noqa: T201
    for node, p in procs.items():
        out_text, err_text = (s.decode(errors="replace") for s in p.communicate())
        lines = out_text.strip().splitlines()
        if p.returncode != 0 or not lines:
            raise ConfigError(f"demo node {node} failed under MicroPython: "
                              f"{(err_text or out_text).strip()[-400:]}")
        reports[node] = json.loads(lines[-1])
    return reports


def _attack(capture_path: Path, host: str, port: int) -> None:
    """Replay a frame the host already has, and send one with a byte changed."""
    from .capture import read_capture

    records = read_capture(capture_path)
    original = records[len(records) // 2][0]
    forged = bytearray(original)
    forged[-1] ^= 0x01  # the tag: still well-formed, so it is the tag check that refuses it
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for raw in (original, bytes(forged)):
        sock.sendto(raw, (host, port))
    sock.close()
    time.sleep(0.5)


def _summarise(store: Store, ingestor: Ingestor, reports: dict[int, dict[str, object]],
               out: Path) -> int:
    nodes = {n.node_id: n for n in store.node_summaries()}
    ok = True
    _say(f"  {'node':>5} {'role':<7} {'boots':<6} {'events sent/stored':>19} {'datagrams':>9} "
         f"{'dropped':>7} {'resent':>6} {'frames':>6} {'lost':>4}")
    for node, role in NODES:
        r = reports[node]
        s = nodes.get(node)
        stored = s.events if s else 0
        frames = s.frames if s else 0
        lost = s.lost if s else 0
        boots = ",".join(str(b) for b in r["boots"])  # type: ignore[attr-defined]
        _say(f"  {node:>5} {role:<7} {boots:<6} {r['events']!s:>9}/{stored:<9} "
             f"{r['datagrams']!s:>9} {r['dropped_by_link']!s:>7} {r['resent']!s:>6} "
             f"{frames:>6} {lost:>4}")
        if stored != r["events"] or not r["complete"] or lost:
            ok = False
    stats = ingestor.stats.as_dict()
    rejected = ", ".join(f"{k} {v}" for k, v in stats["rejected"].items()) or "none"  # type: ignore[attr-defined]
    _say(f"  host: {stats['accepted']} frames stored ({stats['reassembled']} of them rejoined "
         f"from fragments), {stats['duplicates']} duplicates acked again, rejected: {rejected}")
    _say("  a few of the events, as stored:")
    for line in _examples(store):
        _say(f"    {line}")
    _say(f"  database: {out / 'kinsight.db'}")
    _say(f"  capture:  {out / 'demo.kcap'} (kinsight ingest --db OTHER.db replays it)")
    if not ok:
        _say("  MISMATCH: the host did not store every event the nodes sent")
        return 1
    _say("  every event the nodes sent is stored once, in spite of the lossy link")
    return 0


def _examples(store: Store) -> list[str]:
    lines = []
    rows = store.query(
        "SELECT node_id, start_ms, type, duration_ds, volume_ml, rise_ds FROM events "
        "WHERE (node_id, start_ms) IN (SELECT node_id, MIN(start_ms) FROM events "
        "GROUP BY node_id, type) ORDER BY node_id, start_ms")
    for node, start_ms, kind, duration_ds, volume_ml, rise_ds in rows:
        when = time.strftime("%H:%M", time.gmtime(start_ms / 1000))
        minutes = (duration_ds or 0) / 600
        if kind == "sit":
            lines.append(f"node {node} {when} sat {minutes:.0f} min, rose in "
                         f"{(rise_ds or 0) / 10:.1f} s")
        elif kind == "draw":
            lines.append(f"node {node} {when} drew {volume_ml} ml of water")
        elif kind == "visit":
            lines.append(f"node {node} {when} toilet visit of {minutes:.0f} min")
        else:
            lines.append(f"node {node} {when} {kind.replace('_', ' ')} for {minutes:.0f} min")
    return lines


if __name__ == "__main__":
    sys.exit(run(Path(os.environ.get("KINSIGHT_DEMO_OUT", "kinsight-demo"))))
