"""The ``kinsight-field`` command: install and look after Kinsight nodes, over mpremote.

A table of commands, one ``do_<name>`` each, as mpremote has. Every node is
named with ``--port`` (a serial port, a pty or socket://HOST:PORT). Every
failure the field engineer can act on is a CommandError, printed as
``kinsight-field: message`` with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .link import CommandError, Link, now_ms
from .roles import parse_role
from .roles import whole as _int
from .said import crash_text as _crash_text
from .said import reading_text as _reading_text
from .said import secrets_text as _secrets_text

# USB bridges found on ESP32 boards: (vendor id, product id or None for any).
ESP32_USB = {
    (0x10C4, 0xEA60): "CP210x",
    (0x1A86, 0x7523): "CH340",
    (0x1A86, 0x55D4): "CH9102",
    (0x0403, 0x6001): "FTDI",
    (0x303A, None): "Espressif USB",
}
_CAL_FILE = "/kinsight/calibration.json"


def _connect(args: argparse.Namespace, check: bool = True) -> Link:
    from .deploy import firmware_version

    link = Link.open(args.port, args.baud)
    if check:
        try:
            link.check_kinsight(firmware_version())
        except BaseException:
            link.close()
            raise
    return link


def _log(link: Link, line: str) -> None:
    link.exec(f"import fieldapi\nfieldapi.log({line!r})")


# --- list and deploy ------------------------------------------------------------------------------


def do_list(args: argparse.Namespace) -> int:
    from serial.tools import list_ports

    found = 0
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        vid, pid = port.vid, port.pid
        kind = ESP32_USB.get((vid, pid)) or ESP32_USB.get((vid, None)) if vid else None
        if kind is None and not args.all:
            continue
        found += 1
        ids = f"{vid:04x}:{pid:04x}" if vid is not None and pid is not None else "-"
        print(f"{port.device}\t{ids}\t{kind or '-'}\t{port.description}")
    if not found:
        print("no ESP32 boards found: plug the node in with a data USB cable (some cables only "
              "charge), or use --all to see every serial port")
    return 0


def do_deploy(args: argparse.Namespace) -> int:
    from .deploy import deploy, firmware_files, firmware_version

    files = firmware_files(args.board, args.mpy)
    with _connect(args, check=False) as link:
        old = link.firmware_version()
        result = deploy(link, files, lambda step: print(f"  {step}", flush=True))
        version = firmware_version()
        if not (result.sent or result.swapped_lib):
            print(f"{args.port}: firmware {version} is up to date ({len(files)} files checked)")
            return 0
        _log(link, f"field: deployed firmware {version} (was {old or 'none'})")
    print(f"{args.port}: firmware {version} installed (was {old or 'none'}): "
          f"{len(result.sent)} files sent, {len(result.kept)} unchanged, "
          f"{len(result.removed)} removed; every file checked by SHA-256")
    return 0


# --- provision ----------------------------------------------------------------------------------


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """config.json for the node: everything but its secrets (build_secrets)."""
    uplinks = [u for u in ("udp", "serial_uplink", "espnow") if getattr(args, u) is not None]
    if len(uplinks) != 1:
        raise CommandError("provision needs exactly one uplink: --udp HOST[:PORT] (Wi-Fi, with "
                           "--ssid and --password), --serial-uplink UART or --espnow GATEWAY_MAC")
    cfg: dict[str, Any] = {"node_id": args.node_id, "board": args.board,
                           "household": args.household, "resident": args.resident}
    if args.udp is not None:
        host, _, port = args.udp.partition(":")
        cfg["uplink"] = {"type": "udp", "host": host,
                         "port": _int(port, "--udp port") if port else 5683,
                         "ssid": args.ssid or ""}
    elif args.serial_uplink is not None:
        cfg["uplink"] = {"type": "serial", "uart": args.serial_uplink, "baud": args.uplink_baud}
    else:
        cfg["uplink"] = {"type": "espnow", "gateway": args.espnow, "channel": args.channel}
    if args.gateway_channel is not None:
        cfg["espnow_gateway"] = {"channel": args.gateway_channel}
    roles = [parse_role(spec) for spec in args.role]
    if roles or args.gateway_channel is None:
        cfg["roles"] = roles
    return cfg


def build_secrets(args: argparse.Namespace, key: bytes) -> dict[str, str]:
    """The node's NVS, {name: hex} (config.py's SECRETS; one not given is erased)."""
    out = {"key": key.hex()}
    if args.udp is not None and args.password:
        out["wifi_password"] = args.password.encode().hex()
    return out


def do_provision(args: argparse.Namespace) -> int:
    import importlib

    # The host library's key store (imported by name: it is installed beside this package).
    store_class: Any = importlib.import_module("kinsight.store").Store
    place: Any = importlib.import_module("kinsight.residents").place
    key = secrets.token_bytes(32)
    cfg = build_config(args)
    staged = build_secrets(args, key)
    text = json.dumps(cfg, indent=1).encode()
    with _connect(args) as link:
        link.fs()
        link.exec("try:\n os.mkdir('/kinsight')\nexcept OSError:\n pass")
        link.write_file("/config.json.tmp", text)
        if link.hashes([], ["/config.json.tmp"]).get("/config.json.tmp") != _sha(text):
            raise CommandError("config.json arrived damaged: run provision again")
        verdict = link.call(f"check('/config.json.tmp', {staged!r})")
        if verdict.get("error"):
            link.exec("_rmtree('/config.json.tmp')")
            raise CommandError(f"the node refuses this configuration: {verdict['error']}")
        try:
            with store_class(args.db) as store:
                store.set_node_key(args.node_id, key, now_ms())
                if args.resident:  # its events become the resident's: alerts can come
                    place(store, args.node_id, args.resident, args.room or None)
        except Exception as exc:  # the store's StoreError, sqlite3's errors, OSError
            link.exec("_rmtree('/config.json.tmp')")
            raise CommandError(f"cannot register the key in {args.db} ({exc}): check the path "
                               "(the node was left as it was)") from None
        # The key and Wi-Fi password go into the node's NVS, where `fs cat` cannot read
        # them; config.json is put in place after them.
        installed = link.call(f"install('/config.json.tmp', {staged!r})")
        if set(installed.get("secrets", ())) != set(staged):
            raise CommandError("the node did not keep its key in NVS: run provision again")
        _log(link, f"field: provisioned as node {args.node_id}")
    roles = ", ".join(f"{r['role']} ({r['sensor']})" for r in cfg.get("roles", [])) or "none"
    placed = (f" and it is placed with {args.resident}"
              + (f" in the {args.room}" if args.room else "")) if args.resident else \
        " (no --resident: place it with kinsight place before alerts can come)"
    print(f"{args.port}: provisioned node {args.node_id} on {args.board} for household "
          f"{args.household or '-'}, roles: {roles}, uplink: {cfg['uplink']['type']}; its key "
          f"is in the node's NVS and registered in {args.db}{placed}. Reboot the node to "
          "start it.")
    return 0


def _sha(data: bytes) -> str:
    from .link import sha256

    return sha256(data)


# --- looking at a node ----------------------------------------------------------------------------


def do_status(args: argparse.Namespace) -> int:
    with _connect(args) as link:
        s = link.call("status()", timeout=30)
    if args.json:
        print(json.dumps(s, sort_keys=True))
        return 0
    safe = "YES (sensors off)" if s.get("safe_mode") else "no"
    if s.get("safe_mode") and s.get("crashes"):
        safe += f", after: {s['crashes'][-1].get('what')}"
    rows = [
        ("node", f"{s.get('node_id')} on {s.get('board')}, household {s.get('household')}, "
                 f"resident {s.get('resident')}, uplink {s.get('uplink')}"),
        ("firmware", s.get("firmware")),
        ("config", s.get("config_error") or "ok"),
        ("secrets", _secrets_text(s.get("secrets"), "in NVS")),
        ("last reset", s.get("reset_cause")),
        ("uptime", f"{s.get('uptime_s')} s, boot {s.get('boot')}"),
        ("safe mode", f"{safe} (boot attempts {s.get('boot_attempts')} of "
                      f"{s.get('safe_mode_after')})"),
        ("free heap", f"{s.get('free_heap')} bytes"),
        ("queue", f"{s.get('queue_depth')} frames waiting for the host"),
        ("Wi-Fi RSSI", "-" if s.get("rssi_dbm") is None else f"{s['rssi_dbm']} dBm"),
    ]
    for r in s.get("readings", []):
        rows.append((f"{r.get('role')} ({r.get('sensor')})", _reading_text(r)))
    for line in s.get("errors", []):
        rows.append(("log", line))
    crashes = s.get("crashes", [])
    rows.append(("last crash", _crash_text(crashes[-1]) if crashes else "none recorded"))
    for name, value in rows:
        print(f"{name:>16}: {value}")
    return 0


def do_selftest(args: argparse.Namespace) -> int:
    with _connect(args) as link:
        res = link.call("selftest()", timeout=30)
    results = res.get("results", [])
    if res.get("error") and not results:
        raise CommandError(f"selftest cannot run: {res['error']}")
    failed = 0
    for r in results:
        ok = bool(r.get("ok"))
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {r.get('role')} ({r.get('sensor')}): {r.get('detail')}")
    if res.get("error"):
        print(f"FAIL config: {res['error']}")
        failed += 1
    if not results:
        print("no sensors configured (a gateway node)")
    if failed:
        raise CommandError(f"{failed} check(s) failed: check the wiring and pins of the failing "
                           "sensor(s), then run selftest again")
    return 0


def do_live(args: argparse.Namespace) -> int:
    state = {"events": 0}

    def show(line: str) -> None:
        if not line.startswith("{"):
            return
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if "error" in msg:
            raise CommandError(f"live cannot run: {msg['error']}")
        if "event" in msg:
            state["events"] += 1
            ev = dict(msg["event"])
            desc = " ".join(f"{k}={v}" for k, v in ev.items() if k not in ("type", "role"))
            print(f"EVENT {ev.get('role')} {ev.get('type')} {desc}", flush=True)
        elif "readings" in msg:
            parts = []
            for r in msg["readings"]:
                fields = " ".join(f"{k}={v}" for k, v in r.items() if k != "role")
                parts.append(f"{r.get('role')}: {fields}")
            print(f"[{msg['t_ms'] / 1000:5.1f}s] " + " | ".join(parts), flush=True)
        elif msg.get("done"):
            print(f"done: {msg.get('seconds')} s, {msg.get('events')} events", flush=True)

    with _connect(args) as link:
        link.stream(f"import fieldapi\nfieldapi.live({args.seconds})", show, timeout=10)
    return 0


def do_logs(args: argparse.Namespace) -> int:
    if args.follow:
        from .follow import follow_logs

        return follow_logs(args)
    if args.seconds is not None:
        raise CommandError("--seconds goes with --follow (the log file is shown at once)")
    with _connect(args) as link:
        found = link.call(f"logs({args.lines})")
    lines, crashes = found.get("lines", []), found.get("crashes", [])
    for line in lines:
        print(line)
    if not lines:
        print("the node's log is empty")
    for c in crashes:
        print(f"crash: {_crash_text(c)}")
    return 0


# --- calibration --------------------------------------------------------------------------------


def _role_index(cfg: dict[str, Any], wanted: str | None) -> int:
    roles = cfg.get("roles") or []
    if not roles:
        raise CommandError("the node has no sensor roles to calibrate: provision it with --role")
    if wanted is None:
        return 0
    if wanted.isdigit() and int(wanted) < len(roles):
        return int(wanted)
    for i, r in enumerate(roles):
        if isinstance(r, dict) and r.get("role") == wanted:
            return i
    names = ", ".join(str(r.get("role")) for r in roles if isinstance(r, dict))
    raise CommandError(f"--role {wanted}: the node has no such role (it has {names})")


def _measure(link: Link, index: int, seconds: float) -> dict[str, Any]:
    res = link.call(f"measure({index}, {seconds})", timeout=seconds + 20)
    if res.get("error"):
        raise CommandError(f"cannot measure: {res['error']}")
    return res


def _store(link: Link, index: int, values: dict[str, int]) -> dict[str, Any]:
    res = link.call(f"set_tunables({index}, {values!r})")
    if res.get("error"):
        raise CommandError(f"the node refuses the calibration: {res['error']}")
    return res


def _prompt(args: argparse.Namespace, text: str) -> None:
    if not args.yes:
        print(f"{text}, then press Enter", flush=True)
        sys.stdin.readline()


def _calibrate_pressure(args: argparse.Namespace, link: Link, index: int, role: str) -> None:
    saved = link.read_text(_CAL_FILE)
    levels: dict[str, Any] = {}
    if saved:
        try:
            levels = json.loads(saved)
        except ValueError:
            levels = {}
    steps = [s for s in ("empty", "occupied") if getattr(args, s)] or ["empty", "occupied"]
    place = "bed" if role == "bed" else "seat"
    for step in steps:
        if step == "empty":
            _prompt(args, f"Make sure nobody is on the {place}")
        else:
            _prompt(args, f"Ask the resident (or yourself) to sit/lie on the {place}")
        res = _measure(link, index, args.seconds)
        levels[f"{index}.{step}"] = res["mean"]
        print(f"{step}: level {res['mean']} (range {res['min']}..{res['max']})")
    link.write_file(_CAL_FILE, json.dumps(levels).encode())
    empty, occupied = levels.get(f"{index}.empty"), levels.get(f"{index}.occupied")
    if empty is None or occupied is None:
        print("run calibrate --occupied next to finish" if occupied is None
              else "run calibrate --empty next to finish")
        return
    delta = int(occupied) - int(empty)
    if delta < 40:
        raise CommandError(f"the occupied level ({occupied}) is only {delta} above empty "
                           f"({empty}): check the sensor sits where the weight goes, then "
                           "calibrate again")
    values = {"on_delta": max(20, delta * 6 // 10), "off_delta": max(10, delta * 3 // 10)}
    _store(link, index, values)
    print(f"stored on_delta {values['on_delta']} and off_delta {values['off_delta']} "
          f"(empty {empty}, occupied {occupied})")


def do_calibrate(args: argparse.Namespace) -> int:
    with _connect(args) as link:
        cfg = link.config()
        index = _role_index(cfg, args.role)
        r = cfg["roles"][index]
        sensor = r.get("sensor")
        if sensor in ("fsr", "hx711"):
            _calibrate_pressure(args, link, index, str(r.get("role")))
        elif sensor == "flow":
            if args.litres is None or args.litres <= 0:
                raise CommandError("calibrating a flow meter needs --litres N: the volume you "
                                   "will run through it (use a measuring jug)")
            _prompt(args, f"Get ready to run exactly {args.litres} l within {args.seconds} s")
            print(f"measuring for {args.seconds} s: run {args.litres} l now", flush=True)
            pulses = _measure(link, index, args.seconds)["pulses"]
            if pulses == 0:
                raise CommandError("no pulses counted: check the flow meter's wiring and that "
                                   "water ran through it, then calibrate again")
            per_litre = round(pulses / args.litres)
            _store(link, index, {"pulses_per_l": per_litre})
            print(f"{pulses} pulses for {args.litres} l: stored pulses_per_l {per_litre}")
        elif sensor == "vl53l0x":
            _prompt(args, "Point the sensor at the door with nobody in the room")
            res = _measure(link, index, args.seconds)
            range_mm = max(100, min(4000, res["mean_mm"] - 150))
            _store(link, index, {"range_mm": range_mm})
            print(f"the door is {res['mean_mm']} mm away: stored range_mm {range_mm}")
        elif sensor == "ld2410":
            _prompt(args, "Leave the room empty")
            res = _measure(link, index, args.seconds)
            print(f"empty room: highest radar energy {res['max_energy']} in "
                  f"{res['reports']} reports; a min_energy above it "
                  f"({res['max_energy'] + 10}) ignores the room. config.json has no "
                  "min_energy setting yet, so the firmware default (20) stays")
        else:
            res = _measure(link, index, args.seconds)
            print(f"PIR: present in {res['present']} of {res['samples']} samples; a PIR has "
                  "no range setting: turn its sensitivity potentiometer instead")
        _log(link, f"field: calibrated roles[{index}] ({sensor})")
    return 0


# --- reboot, safe mode, factory reset -------------------------------------------------------


def do_reboot(args: argparse.Namespace) -> int:
    with _connect(args) as link:
        _log(link, "field: reboot")
        link.send("import hal\nhal.reset()")
    print(f"{args.port}: rebooting")
    return 0


def do_safe_mode(args: argparse.Namespace) -> int:
    with _connect(args) as link:
        res = link.call(f"set_safe_mode({not args.clear})")
    if args.clear:
        print(f"{args.port}: safe mode cleared; the node starts its sensors at the next boot "
              "(kinsight-field reboot)")
    else:
        print(f"{args.port}: safe mode on (boot attempts {res.get('boot_attempts')} > "
              f"{res.get('safe_mode_after')}): only status frames after the next boot; "
              "leave it with --clear")
    return 0


def do_factory_reset(args: argparse.Namespace) -> int:
    with _connect(args) as link:
        if not args.yes:
            print(f"Erase the configuration, key and queued data of the node on {args.port}? "
                  "[y/N] ", end="", flush=True)
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                print("nothing erased")
                return 1
        res = link.call("factory_reset()")
    erased = res.get("secrets") or []
    removed = [*res.get("removed", []), *(["the " + _secrets_text(erased, "from NVS")]
                                          if erased else [])]
    said = ", ".join(removed) or "nothing (already blank)"
    print(f"{args.port}: removed {said}; the firmware stays. Provision it again to use it.")
    return 0


# --- the table of commands ------------------------------------------------------------------------


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    parser = argparse.ArgumentParser(
        prog="kinsight-field",
        description="Install, provision and look after Kinsight nodes (see docs/field-guide.md).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    table: dict[str, Callable[[argparse.Namespace], int]] = {}

    def command(name: str, fn: Callable[[argparse.Namespace], int], help: str,
                node: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        if node:
            p.add_argument("--port", required=True, metavar="DEVICE",
                           help="the node: a serial port (/dev/ttyUSB0, COM3), a pty, "
                                "or socket://HOST:PORT")
            p.add_argument("--baud", type=int, default=115200, help="serial speed (115200)")
        table[name] = fn
        return p

    p = command("list", do_list, "list the serial ports that look like ESP32 nodes", node=False)
    p.add_argument("--all", action="store_true", help="list every serial port")

    p = command("deploy", do_deploy, "copy the firmware to a node (only what changed, checked "
                "by SHA-256, swapped in whole)")
    p.add_argument("--board", help="copy only this board's pin map (default: all boards)")
    p.add_argument("--mpy", action="store_true",
                   help="send modules precompiled with mpy-cross (less memory on the node)")

    p = command("provision", do_provision, "give a node its identity, sensors, uplink and a "
                "fresh key (registered in the host's database)")
    p.add_argument("--db", required=True, help="the host's database (kinsight listen --db)")
    p.add_argument("--node-id", type=int, required=True, help="the node's number (1..2^32-1)")
    p.add_argument("--board", required=True, help="esp32-devkitc, esp32-c3-devkitm or "
                   "esp32-s3-devkitc")
    p.add_argument("--household", default="", help="household reference, e.g. h-17")
    p.add_argument("--resident", default="", help="resident reference, e.g. r-1: the node is "
                   "placed with them in the host's database too")
    p.add_argument("--room", default="", help="with --resident: the room it is in (kitchen)")
    p.add_argument("--role", action="append", default=[], metavar="ROLE:SENSOR[:k=v,...]",
                   help="a sensor role, repeatable: seat:fsr:pin=34, bed:hx711:dout=16,sck=17, "
                        "tap:flow:pin=27, toilet:ld2410:uart=2/17/16,flush_pin=25, "
                        "stairs:vl53l0x:i2c=0/22/21, stairs:pir:pin=13")
    p.add_argument("--udp", metavar="HOST[:PORT]", help="uplink over Wi-Fi to kinsight listen")
    p.add_argument("--ssid", help="Wi-Fi network name (with --udp)")
    p.add_argument("--password", help="Wi-Fi password (with --udp)")
    p.add_argument("--serial-uplink", type=int, metavar="UART", help="uplink over a UART (0-2)")
    p.add_argument("--uplink-baud", type=int, default=115200, help="with --serial-uplink")
    p.add_argument("--espnow", metavar="MAC", help="uplink over ESP-NOW to this gateway's MAC")
    p.add_argument("--channel", type=int, default=1, help="ESP-NOW channel (with --espnow)")
    p.add_argument("--gateway-channel", type=int, metavar="N",
                   help="make this node an ESP-NOW gateway on channel N")

    p = command("status", do_status, "the node's diagnostics and current sensor readings")
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")

    p = command("live", do_live, "stream readings and events for an installation check")
    p.add_argument("--seconds", type=int, default=30, help="how long (30)")

    p = command("calibrate", do_calibrate, "measure and store a sensor's thresholds: seat/bed "
                "levels, flow pulses per litre, presence range")
    p.add_argument("--role", help="which role (name or index; default the first)")
    p.add_argument("--empty", action="store_true", help="seat/bed: measure the empty level only")
    p.add_argument("--occupied", action="store_true",
                   help="seat/bed: measure the occupied level (after --empty) and store")
    p.add_argument("--litres", type=float, help="flow: the volume you will run")
    p.add_argument("--seconds", type=float, default=5, help="how long each measurement takes")
    p.add_argument("--yes", action="store_true", help="do not wait for Enter between steps")

    command("selftest", do_selftest, "check that every configured sensor answers plausibly")

    p = command("logs", do_logs, "the node's error and field log; with --follow, the "
                "running node's console lines as they come, without stopping it")
    p.add_argument("--lines", type=int, default=50, help="how many of the last lines (50)")
    p.add_argument("--follow", action="store_true",
                   help="show what the node prints as it runs (boot summary, uplink up and "
                        "down, sensor faults, events, a summary a minute), sending it "
                        "nothing; Ctrl-C stops")
    p.add_argument("--seconds", type=float, metavar="N", help="with --follow: stop after N "
                   "seconds")

    command("reboot", do_reboot, "restart the node")

    p = command("safe-mode", do_safe_mode, "put the node in safe mode (status only), or take "
                "it out with --clear")
    p.add_argument("--clear", action="store_true", help="leave safe mode")

    p = command("factory-reset", do_factory_reset, "erase the node's configuration, key and "
                "state (the firmware stays)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    sub.add_parser("virtual-node", help="run a virtual node (see virtual-node --help)",
                   add_help=False)
    return parser, table


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["virtual-node"]:
        import importlib

        return int(importlib.import_module("kinsight_field.virtual_node").main(argv[1:]))
    parser, table = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return table[args.command](args)
    except CommandError as exc:
        print(f"kinsight-field: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kinsight-field: interrupted (a deploy stopped midway leaves the old firmware; "
              "run it again)", file=sys.stderr)
        return 130
    except Exception as exc:  # a fault of ours: one line too, never a traceback
        print(f"kinsight-field: internal error ({type(exc).__name__}: {exc}); please report "
              "it with the command you ran", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
