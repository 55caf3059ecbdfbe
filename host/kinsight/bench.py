"""Benchmarks. Each prints its figures; the last line is key=value pairs."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import sqlite3
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import cbor2

import kinsight_wire as wire

from . import mpy
from .ingest import Ingestor
from .store import Store
from .wire import Fragment, Frame, Header, encode_frame, open_frame

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


def raw_floor(frames: list[bytes], keys: dict[int, bytes], path: Path) -> float:
    """cbor2 decode + HMAC + one SQLite insert per frame, nothing else: frames per second."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE frames (id INTEGER PRIMARY KEY, node_id INTEGER, boot INTEGER, "
                 "seq INTEGER, raw BLOB, UNIQUE (node_id, boot, seq))")
    start = time.perf_counter()
    for at in range(0, len(frames), _BATCH):
        conn.execute("BEGIN")
        for raw in frames[at:at + _BATCH]:
            header = cbor2.loads(raw)[1]
            node = header[wire.H_NODE]
            tag = hmac.digest(keys[node], raw[:-wire.TAG_ITEM_LEN], hashlib.sha256)
            if not hmac.compare_digest(tag[:wire.TAG_LEN], raw[-wire.TAG_LEN:]):
                raise RuntimeError("benchmark frame failed its tag")
            conn.execute("INSERT INTO frames (node_id, boot, seq, raw) VALUES (?, ?, ?, ?)",
                         (node, header[wire.H_BOOT], header[wire.H_SEQ], raw))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
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


def run(what: str, *, frames: int) -> int:
    if what == "firmware":
        return run_firmware()
    if what == "learn":
        return run_learn()
    if what != "ingest":
        raise ValueError(f"no benchmark {what!r}")
    print(f"firmware encode under MicroPython (heap {mpy.ESP32_HEAP}):")  # noqa: T201
    out = mpy.run(mpy.source_root() / "tools" / "bench_encode_mpy.py")
    print("  " + out.strip().splitlines()[-1])  # noqa: T201
    r = bench_ingest(frames)
    print(f"host ingest of {r['frames']:.0f} frames, {r['mean_frame_bytes']:.0f} bytes each on "  # noqa: T201
          f"average, from {_NODES} nodes, best of 3, one core")
    print(f"ingest_fps={r['ingest_fps']:.0f} raw_fps={r['raw_fps']:.0f} "  # noqa: T201
          f"ratio={r['ratio']:.2f}")
    return 0


# --- firmware: a day of each role under MicroPython ------------------------------------------

ROLES = ("seat", "bed", "tap", "toilet")

# Published ESP32 figures (Espressif ESP32 datasheet, power consumption by mode), for the
# energy estimate: charge per radio wake and the current of each sensing mode.
WIFI_WAKE_MAH = 100.0 * 1.0 / 3600  # ~1 s at ~100 mA: join with a saved channel, send, ack
ESPNOW_WAKE_MAH = 120.0 * 0.03 / 3600  # ~30 ms at ~120 mA: send, wait for the ack
SENSING_MA = {
    # seat and bed: the ULP coprocessor samples the ADC at 10 Hz while the cores sleep
    "seat": 0.15, "bed": 0.15,
    # tap: the ULP polls the flow pin for pulses (PCNT stops in light sleep)
    "tap": 0.15,
    # toilet with a PIR: deep sleep, woken by the PIR pin, light sleep while someone is there
    "toilet": 0.05,
}


def _senml_units(name: str, value: int) -> tuple[str | None, float | int]:
    if name.endswith(("_ds", "_ds_max")):
        return "s", value / 10
    if name.endswith("_ml_min"):
        return "l/s", value / 60000
    if name.endswith("_ml"):
        return "l", value / 1000
    if name.endswith("_s"):
        return "s", value
    if name.endswith("_mv"):
        return "V", value / 1000
    return None, value


def senml_json(frame: Frame) -> str:
    """The content of one message as compact SenML JSON (RFC 8428): one pack, base name
    and base time once, one record per value, times relative to the base time."""
    from dataclasses import asdict

    from .wire import EventBatch, Status, SummaryBatch

    items: list[tuple[str, dict[str, object], float]] = []
    skip: set[str] = set()
    body = frame.body
    if isinstance(body, EventBatch):
        items = [(f"{e.role}.{e.type}", asdict(e), -e.ago_ds / 10) for e in body.events]
        skip = {"type", "role", "ago_ds"}
    elif isinstance(body, SummaryBatch):
        items = [(s.role, asdict(s), -s.ago_s) for s in body.summaries]
        skip = {"role", "ago_s"}
    elif isinstance(body, Status):
        items = [("status", asdict(body), 0)]
    pack: list[dict[str, object]] = []
    for prefix, values, t in items:
        for name, value in values.items():
            if name in skip or value is None:
                continue
            record: dict[str, object] = {"n": f"{prefix}.{name}"}
            if isinstance(value, str):
                record["vs"] = value
            else:
                unit, number = _senml_units(name, int(value))  # type: ignore[call-overload]
                record["v"] = number
                if unit:
                    record["u"] = unit
            if t:
                record["t"] = t
            if not pack:
                record["bn"] = f"urn:dev:kinsight:{frame.header.node_id}:"
                record["bt"] = frame.header.time_s
            pack.append(record)
    return json.dumps(pack, separators=(",", ":"))


def messages_of(frames: list[bytes], key: bytes) -> list[Frame]:
    """The messages a node sent, fragments joined."""
    out = []
    pieces: dict[int, dict[int, bytes]] = {}
    for raw in frames:
        frame = open_frame(raw, key)
        if isinstance(frame.body, Fragment):
            got = pieces.setdefault(frame.body.msg, {})
            got[frame.body.index] = frame.body.chunk
            if len(got) == frame.body.count:
                whole = b"".join(got[i] for i in range(frame.body.count))
                out.append(open_frame(whole, key, max_frame_bytes=None))
        else:
            out.append(frame)
    return out


def read_frame_log(path: Path) -> list[bytes]:
    data = path.read_bytes()
    frames, at = [], 0
    while at < len(data):
        n = int.from_bytes(data[at:at + 2], "big")
        frames.append(data[at + 2:at + 2 + n])
        at += 2 + n
    return frames


def bench_firmware(seed: int = 3) -> list[dict[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        compiled = mpy.compile_modules(Path(tmp))
        for role in ROLES:
            log = Path(tmp) / f"{role}.frames"
            out = mpy.run("replay_node", role, str(seed), "loopback", str(log),
                          compiled=compiled)
            report = json.loads(out.strip().splitlines()[-1])
            frames = read_frame_log(log)
            if len(frames) != report["frames_sent"] or report["unacked"]:
                raise RuntimeError(f"{role}: the day's frames did not all get through")
            senml = sum(len(senml_json(m)) for m in messages_of(frames, bytes(range(32))))
            wakes = report["radio_wakes"]
            rows.append({
                "role": role, "events": report["events"], "frames": len(frames),
                "bytes_per_day": report["bytes_sent"], "senml_bytes": senml,
                "senml_ratio": senml / report["bytes_sent"],
                "peak_heap": report["peak_heap"], "code_heap": report["code_heap"],
                "cpu_s_per_sensor_hour": report["cpu_us"] / 1e6 / report["sensor_hours"],
                "radio_wakes": wakes,
                "mah_wifi": wakes * WIFI_WAKE_MAH + 24 * SENSING_MA[role],
                "mah_espnow": wakes * ESPNOW_WAKE_MAH + 24 * SENSING_MA[role],
            })
    return rows


def run_firmware() -> int:
    print("a simulated day of each role under MicroPython (heap "  # noqa: T201
          f"{mpy.ESP32_HEAP}, modules precompiled by mpy-cross, 64-bit unix port):")
    rows = bench_firmware()
    for r in rows:
        print(f"  {r['role']:<6} events={r['events']} frames={r['frames']} "  # noqa: T201
              f"bytes_per_day={r['bytes_per_day']} senml_bytes={r['senml_bytes']} "
              f"senml_ratio={r['senml_ratio']:.1f} peak_heap={r['peak_heap']} "
              f"code_heap={r['code_heap']} cpu_s_per_sensor_hour="
              f"{r['cpu_s_per_sensor_hour']:.3f} radio_wakes={r['radio_wakes']} "
              f"mAh_per_day_wifi={r['mah_wifi']:.1f} mAh_per_day_espnow={r['mah_espnow']:.1f}")
    print(f"peak_heap_max={max(r['peak_heap'] for r in rows)} "  # noqa: T201
          f"bytes_per_day_max={max(r['bytes_per_day'] for r in rows)} "
          f"senml_ratio_min={min(r['senml_ratio'] for r in rows):.1f} "
          f"cpu_s_per_sensor_hour_max={max(r['cpu_s_per_sensor_hour'] for r in rows):.3f}")
    return 0


# --- learn: one day's update of many residents' models ---------------------------------------


def _synthetic_day(rng: random.Random, day: date) -> dict[str, object]:
    """A plausible day's features (a synthetic stream, not a persona)."""
    x: dict[str, object] = {
        "water_ml": rng.gauss(1500, 200), "draws": float(rng.randint(3, 8)),
        "toilet_day": float(rng.randint(3, 8)), "toilet_night": float(rng.randint(0, 2)),
        "sit_total_min": rng.gauss(400, 60), "sit_count": float(rng.randint(6, 12)),
        "sit_longest_min": rng.gauss(90, 20), "rise_s_median": rng.gauss(2.0, 0.2),
        "bed_night_min": rng.gauss(480, 30), "out_of_bed_night": float(rng.randint(0, 2)),
        "first_activity_min": rng.gauss(440, 20), "last_activity_min": rng.gauss(1360, 25),
        "night_activity_count": float(rng.randint(0, 3)), "stairs_min": rng.gauss(2, 0.4),
        "hr_mean": rng.gauss(72, 3)}
    x["day"] = day.isoformat()
    x["weekend"] = int(day.weekday() >= 5)
    return x


def bench_learn(residents: int = 10_000, warm_days: int = 60, seed: int = 5
                ) -> dict[str, float]:
    """Warm ``residents`` models past learning on synthetic streams, then time one
    day's score_one + learn_one for all of them on one core."""
    from .learn import PersonalModel, state_bytes

    rng = random.Random(seed)
    start = date(2024, 1, 1)
    proto = PersonalModel()
    for i in range(warm_days):
        x = _synthetic_day(rng, start + timedelta(days=i))
        proto.score_one(x)
        proto.learn_one(x)
    state = json.loads(json.dumps(proto.to_dict()))
    models = [PersonalModel.from_dict(state) for _ in range(residents)]
    day = start + timedelta(days=warm_days)
    xs = [_synthetic_day(rng, day) for _ in range(residents)]
    t0 = time.perf_counter()
    findings = 0
    for m, x in zip(models, xs, strict=True):
        findings += len(m.score_one(x))
        m.learn_one(x)
    seconds = time.perf_counter() - t0
    return {"residents": residents, "seconds": seconds, "findings": findings,
            "state_bytes_max": max(state_bytes(m) for m in models)}


def run_learn(residents: int = 10_000) -> int:
    r = bench_learn(residents)
    print(f"learning engine: one day's score_one + learn_one for {r['residents']:.0f} "  # noqa: T201
          f"residents (models warmed 60 days on synthetic streams), one core")
    print(f"  {r['seconds'] * 1e6 / r['residents']:.0f} us per resident, "  # noqa: T201
          f"{r['findings']:.0f} findings")
    print(f"residents={r['residents']:.0f} seconds={r['seconds']:.2f} "  # noqa: T201
          f"state_bytes_max={r['state_bytes_max']:.0f}")
    return 0
