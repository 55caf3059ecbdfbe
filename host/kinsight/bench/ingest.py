"""``kinsight bench ingest``: frames a second through the whole ingest path, one core.

The full path (decode, check, verify, refuse replays, store in one transaction a
batch) is set against a raw floor: the same frames decoded and their tags computed,
the same rows (archive and records) written by the same SQL into the same tables,
one transaction a batch, with nothing checked. The firmware's encoding under
MicroPython is timed too.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import cbor2

import kinsight_wire as wire

from ..ingest import Ingestor
from ..simulation import micropython as mpy
from ..store import BatchRows, Store
from ..wire import Header, encode_frame

_BATCH = 256
_NODES = 50
_T0 = 1_790_000_000


def typical_frames(n: int, seed: int = 1) -> tuple[list[bytes], dict[int, bytes]]:
    """A day's mix from many nodes: event batches, interval summaries, status."""
    rng = random.Random(seed)
    keys = {node: rng.randbytes(32) for node in range(1, _NODES + 1)}
    seqs = dict.fromkeys(keys, 0)
    frames = []
    for i in range(n):
        node = rng.randrange(1, _NODES + 1)
        h = Header(node_id=node, boot=1, seq=seqs[node], time_s=_T0 + i)
        seqs[node] += 1
        pick = i % 4
        if pick < 2:
            body = {"events": [{"type": "draw", "role": "tap", "ago_ds": rng.randrange(9000),
                                "duration_ds": rng.randrange(600),
                                "volume_ml": rng.randrange(900)} for _ in range(3)]}
            frames.append(encode_frame(keys[node], "events", h, body))
        elif pick == 2:
            body = {"summaries": [{"role": "seat", "ago_s": 0, "period_s": 900,
                                   "occupied_ds": rng.randrange(9000), "episodes": 2}]}
            frames.append(encode_frame(keys[node], "summary", h, body))
        else:
            body = {"firmware": "0.1.0", "uptime_s": i, "reset_cause": "power_on",
                    "free_heap": 50_000, "queue_depth": 0, "rssi_dbm": -60}
            frames.append(encode_frame(keys[node], "status", h, body))
    return frames, keys


_RowPlan = tuple[list[int], list[tuple[int, dict[int, str]]]]


def _unchecked(spec: tuple[tuple[int, str, int, int], ...]) -> _RowPlan:
    """A field table's keys in row order, and its enumerations by position."""
    enums = {"type": dict(wire.EVENT_TYPES), "role": dict(wire.ROLES),
             "reset_cause": dict(wire.RESET_CAUSES)}
    return ([key for key, _, _, _ in spec],
            [(pos, enums[name]) for pos, (_, name, _, _) in enumerate(spec) if name in enums])


_EVENT_ROW = _unchecked(wire.EVENT_FIELDS)
_SUMMARY_ROW = _unchecked(wire.SUMMARY_FIELDS)
_STATUS_ROW = _unchecked(wire.STATUS_FIELDS)
_KIND_NAMES = {code: name for code, name, _, _ in wire.KINDS}
_EVENT_AGO = _EVENT_ROW[0].index(wire.EV_AGO_DS)
_SUMMARY_AGO = _SUMMARY_ROW[0].index(wire.SM_AGO_S)


def _row(m: dict[int, Any], table: _RowPlan) -> list[Any]:
    keys, enums = table
    row: list[Any] = [m.get(k) for k in keys]
    for pos, names in enums:
        row[pos] = names.get(row[pos])
    return row


def raw_floor(frames: list[bytes], keys: dict[int, bytes], path: Path) -> float:
    """cbor2 decode + HMAC + the same rows the ingest stores (a frame's archive row and
    its records), in the same tables, SQL and settings, one transaction a batch, with
    no check of anything: frames per second."""
    received_ms = _T0 * 1000
    with Store(path) as store:
        rows = BatchRows()
        start = time.perf_counter()
        for at in range(0, len(frames), _BATCH):
            with store.transaction():
                for raw in frames[at:at + _BATCH]:
                    kind, header, body, _ = cbor2.loads(raw)
                    node, boot, seq, time_s = (header[wire.H_NODE], header[wire.H_BOOT],
                                               header[wire.H_SEQ], header[wire.H_TIME_S])
                    tag = hmac.digest(keys[node], raw[:-wire.TAG_ITEM_LEN], hashlib.sha256)
                    if not hmac.compare_digest(tag[:wire.TAG_LEN], raw[-wire.TAG_LEN:]):
                        raise RuntimeError("benchmark frame failed its tag")
                    rows.frames.append((node, boot, seq, _KIND_NAMES[kind], time_s, received_ms,
                                        False, None, raw, None))
                    if kind == wire.KIND_EVENTS:
                        items = [_row(m, _EVENT_ROW) for m in body[wire.B_EVENTS]]
                        rows.events.extend((node, boot, seq, i, time_s * 1000 - r[_EVENT_AGO] * 100,
                                            *r) for i, r in enumerate(items))
                    elif kind == wire.KIND_SUMMARY:
                        items = [_row(m, _SUMMARY_ROW) for m in body[wire.B_SUMMARIES]]
                        rows.summaries.extend((node, boot, seq, i, time_s - r[_SUMMARY_AGO], *r)
                                              for i, r in enumerate(items))
                    elif kind == wire.KIND_STATUS:
                        rows.statuses.append((node, boot, seq, time_s, *_row(body, _STATUS_ROW)))
                store.write(rows)
                rows.clear()
        elapsed = time.perf_counter() - start
    return len(frames) / elapsed


def full_path(frames: list[bytes], keys: dict[int, bytes], path: Path) -> float:
    """The whole ingest path, as the UDP listener runs it: frames per second."""
    with Store(path) as store:
        for node, key in keys.items():
            store.set_node_key(node, key, now_ms=0)
        ingestor = Ingestor(store, clock_ms=lambda: _T0 * 1000)
        start = time.perf_counter()
        for at in range(0, len(frames), _BATCH):
            ingestor.ingest_batch(frames[at:at + _BATCH])
        elapsed = time.perf_counter() - start
        if ingestor.stats.accepted != len(frames):
            raise RuntimeError(f"benchmark frames refused: {ingestor.stats.as_dict()}")
    return len(frames) / elapsed


def bench_ingest(n: int, rounds: int = 3) -> dict[str, float]:
    frames, keys = typical_frames(n)
    best_raw = best_full = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            best_raw = max(best_raw, raw_floor(frames, keys, Path(tmp) / f"raw{r}.db"))
            best_full = max(best_full, full_path(frames, keys, Path(tmp) / f"full{r}.db"))
    return {"frames": n, "mean_frame_bytes": sum(map(len, frames)) / n,
            "ingest_fps": best_full, "raw_fps": best_raw, "ratio": best_full / best_raw}


def run_ingest(frames: int) -> int:
    print(f"firmware encode under MicroPython (heap {mpy.ESP32_HEAP}):")  # noqa: T201
    out = mpy.run(mpy.source_root() / "tools" / "bench_encode_mpy.py")
    print("  " + out.strip().splitlines()[-1])  # noqa: T201
    r = bench_ingest(frames)
    print(f"host ingest of {r['frames']:.0f} frames, {r['mean_frame_bytes']:.0f} bytes each on "  # noqa: T201
          f"average, from {_NODES} nodes, best of 3, one core")
    print(f"ingest_fps={r['ingest_fps']:.0f} raw_fps={r['raw_fps']:.0f} "  # noqa: T201
          f"ratio={r['ratio']:.2f}")
    return 0
