"""What the field tools (kinsight-field) ask a node, over the raw REPL.

Each public function prints exactly one JSON line (``live`` prints one per
reading or event), so the tool reads answers without parsing tracebacks:

    import fieldapi; fieldapi.status()

The node's own code does the work (config.load, sensors.build_sensors, Outbox,
BootGuard's file), so the tools and the node always agree on what a
configuration means. Nothing here changes the node unless its name says so
(``set_tunables``, ``set_safe_mode``, ``install``, ``factory_reset``, ``log``).
The key and passwords stay in NVS (hal.secret_*): no answer here carries them.

``ROOT`` prefixes every path: "" on a node, a scratch folder in the tests.
"""

import json
import os
import time

from micropython import const

from kinsight_wire import EVENT_FIELDS, EVENT_TYPES, RESET_CAUSES, ROLES

ROOT = ""
_LOG_LINES = const(50)
_LEVEL_MS = const(100)
_FLOW_MS = const(250)
_PRESENCE_MS = const(200)
_ADC_MAX = const(4095)


def _path(name):
    return ROOT + name


def _say(obj):
    print(json.dumps(obj))


def _name(table, code):
    for value, name in table:
        if value == code:
            return name
    return code


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _read_text(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def _load():
    import hal
    from config import load

    return load(_path("/config.json"), _path("/boards"), hal.secret_get)


def _staged(secrets):
    """A getter over secrets sent by the tool ({name: hex}), for a configuration that is
    checked before anything is stored."""
    from binascii import unhexlify

    def get(name):
        value = secrets.get(name)
        return unhexlify(value) if value else None

    return get


def _ticks():
    return time.ticks_ms()


# --- the error log ------------------------------------------------------------------------------


def log(line):
    """Appends one line to /kinsight/log.txt, keeping the last 50."""
    path = _path("/kinsight/log.txt")
    try:
        os.mkdir(_path("/kinsight"))
    except OSError:
        pass
    lines = _log_lines(path)
    lines.append(str(line).replace("\n", " "))
    _write_atomic(path, "\n".join(lines[-_LOG_LINES:]) + "\n")


def _log_lines(path):
    text = _read_text(path, "")
    return [line for line in text.split("\n") if line]


def _crashes():
    from crashlog import records

    return records(_path("/kinsight/crashes"))


def logs(n=_LOG_LINES):
    _say({"lines": _log_lines(_path("/kinsight/log.txt"))[-n:], "crashes": _crashes()})


# --- diagnostics --------------------------------------------------------------------------------


def _boot_count():
    from sequence import load_boot

    return load_boot(_path("/kinsight/boot"))


def _attempts():
    try:
        return int((_read_text(_path("/kinsight/bootguard"), "0") or "0").strip() or "0")
    except ValueError:
        return 0


def _queue_depth():
    folder = _path("/kinsight/outbox")
    if not _exists(folder):
        return 0  # Outbox() would make the folder: leave a node that never queued alone
    from outbox import Outbox

    return Outbox(folder).depth


def _rssi():
    try:
        import network

        import hal

        wlan = network.WLAN(network.WLAN.IF_STA)
        if wlan.active() and wlan.isconnected():
            return hal.rssi_dbm(wlan)
    except (ImportError, AttributeError, OSError):
        pass
    return None


def _build_sensors(roles, sink):
    from sensors import build_sensors

    return build_sensors(roles, sink)


def _sensors(cfg):
    from node import Sink

    return _build_sensors(cfg["roles"], Sink())


def _readings(cfg):
    out = []
    if cfg is None:
        return out
    try:
        sensors = _sensors(cfg)
    except Exception as err:  # a driver that cannot start is itself a diagnosis
        return [{"role": "?", "error": "%s: %s" % (type(err).__name__, err)}]
    for i, r in enumerate(cfg["roles"]):
        sensor = sensors[i]
        value = problem = None
        try:
            value = sensor.read()
        except Exception as err:
            problem = "%s: %s" % (type(err).__name__, err)
        out.append({"role": r["role"], "sensor": r["sensor"], "value": value,
                    "error": problem})
    return out


def _secrets_held():
    import hal
    from config import SECRETS

    return [name for name in SECRETS if hal.secret_get(name) is not None]


def status():
    import gc

    import hal

    cfg, error = _load()
    limit = cfg["safe_mode_after"] if cfg else 3
    attempts = _attempts()
    gc.collect()
    _say({
        "firmware": (_read_text(_path("/lib/kinsight_version"), "") or "").strip(),
        "node_id": cfg["node_id"] if cfg else None,
        "board": cfg["board"]["name"] if cfg else None,
        "household": cfg["household"] if cfg else None,
        "resident": cfg["resident"] if cfg else None,
        "uplink": cfg["uplink"]["type"] if cfg else None,
        "config_error": error,
        "secrets": _secrets_held(),  # their names, never their values
        "reset_cause": _name(RESET_CAUSES, hal.reset_cause()),
        "free_heap": hal.free_heap(),
        "uptime_s": (time.ticks_diff(_ticks(), 0) & 0x3FFFFFFF) // 1000,
        "boot": _boot_count(),
        "boot_attempts": attempts,
        "safe_mode_after": limit,
        "safe_mode": attempts > limit,
        "queue_depth": _queue_depth(),
        "rssi_dbm": _rssi(),
        "errors": _log_lines(_path("/kinsight/log.txt"))[-5:],
        "crashes": _crashes(),
        "readings": _readings(cfg),
    })


# --- configuration ------------------------------------------------------------------------------


def check(path="/config.json.tmp", secrets=None):
    """The node's verdict on a configuration file and the secrets meant to go with it
    ({name: hex}, None for those in NVS): {"error": None} when they are good."""
    import hal
    from config import load

    get = hal.secret_get if secrets is None else _staged(secrets)
    cfg, error = load(_path(path), _path("/boards"), get)
    if cfg is None and error is None:
        error = "config: not usable"
    _say({"error": error})


def install(path, secrets):
    """Puts a checked configuration in place with its secrets ({name: hex}): the secrets
    into NVS (those not given are erased, so none of an earlier provisioning stays), then
    the file as /config.json."""
    import hal
    from config import SECRETS

    get = _staged(secrets)
    for name in SECRETS:
        hal.secret_set(name, get(name) or b"")
    target = _path("/config.json")
    try:
        os.rename(_path(path), target)
    except OSError:  # some filesystems will not rename over a file
        os.remove(target)
        os.rename(_path(path), target)
    _say({"error": None, "secrets": _secrets_held()})


def set_tunables(index, values):
    """Sets roles[index]'s tunables (a dict) in config.json, checked, written atomically."""
    import hal
    from config import load

    path = _path("/config.json")
    try:
        with open(path) as f:
            raw = json.load(f)
        raw["roles"][index].update(values)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        _say({"error": "config.json: cannot update roles[%d] (%s)" % (index, err)})
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(raw, f)
    _, error = load(tmp, _path("/boards"), hal.secret_get)
    if error:
        os.remove(tmp)
        _say({"error": error})
        return
    os.rename(tmp, path)
    log("field: roles[%d] set %s" % (index, json.dumps(values)))
    _say({"error": None, "role": raw["roles"][index]})


def set_safe_mode(enter):
    """enter: the boot count past the limit (safe mode now and at the next boot); else 0."""
    cfg, _ = _load()
    limit = cfg["safe_mode_after"] if cfg else 3
    try:
        os.mkdir(_path("/kinsight"))
    except OSError:
        pass
    count = limit + 1 if enter else 0
    _write_atomic(_path("/kinsight/bootguard"), "%d\n" % count)
    log("field: safe mode %s" % ("entered" if enter else "cleared"))
    _say({"boot_attempts": count, "safe_mode_after": limit, "safe_mode": bool(enter)})


def _remove_tree(path):
    from update import rmtree  # one way to empty a folder, the updater's

    rmtree(path)


def factory_reset():
    """Forgets the secrets in NVS, the configuration and every piece of state; the
    firmware stays."""
    import hal
    from config import SECRETS

    erased = [name for name in SECRETS if hal.secret_erase(name)]
    removed = []
    for name in ("/config.json", "/config.json.tmp", "/kinsight"):
        if _exists(_path(name)):
            _remove_tree(_path(name))
            removed.append(name)
    _say({"removed": removed, "secrets": erased})


# --- sensors ------------------------------------------------------------------------------------


def _plausible(r, values):
    kind = r["sensor"]
    good = [v for v in values if v is not None]
    if not good:
        return False, "no reading (check the wiring)"
    if kind == "fsr":
        if min(good) < 0 or max(good) > _ADC_MAX:
            return False, "ADC out of range: %d..%d" % (min(good), max(good))
        if max(good) == 0:
            return False, "ADC stuck at 0 (sensor unplugged or shorted to ground)"
        if min(good) == _ADC_MAX:
            return False, "ADC stuck at 4095 (sensor shorted to 3.3 V)"
        return True, "ADC %d..%d" % (min(good), max(good))
    if kind == "hx711":
        return True, "load cell %d..%d" % (min(good), max(good))
    if kind == "flow":
        return True, "counter at %d" % good[-1]
    if len(good) < len(values):
        return False, "%d of %d reads failed" % (len(values) - len(good), len(values))
    return True, "present" if good[-1] else "absent"


def selftest(reads=5):
    cfg, error = _load()
    if cfg is None:
        _say({"error": error, "results": []})
        return
    results = []
    try:
        sensors = _sensors(cfg)
    except Exception as err:
        _say({"error": "sensors cannot start: %s: %s" % (type(err).__name__, err),
              "results": []})
        return
    for i, r in enumerate(cfg["roles"]):
        sensor = sensors[i]
        values = []
        for _ in range(reads):
            try:
                values.append(sensor.read())
            except Exception:
                values.append(None)
            time.sleep_ms(sensor.sample_ms)
        ok, detail = _plausible(r, values)
        results.append({"role": r["role"], "sensor": r["sensor"], "ok": ok, "detail": detail})
    _say({"error": error, "results": results})


def _event(ev):
    out = {}
    for key, name, _, _ in EVENT_FIELDS:
        if key in ev:
            out[name] = ev[key]
    if "type" in out:
        out["type"] = _name(EVENT_TYPES, out["type"])
    if "role" in out:
        out["role"] = _name(ROLES, out["role"])
    return out


def live(seconds, every_ms=1000):
    """Runs the configured sensors and extractors for seconds: JSON lines of readings
    (every every_ms) and events as they are noticed, then {"done": ...}."""
    from node import Sink

    cfg, error = _load()
    if cfg is None or not cfg["roles"]:
        _say({"error": error or "no sensor roles configured"})
        return
    sink = Sink()
    sensors = _build_sensors(cfg["roles"], sink)
    start = _ticks()
    next_report = 0
    events = 0
    now = 0
    while now < seconds * 1000:
        now = time.ticks_diff(_ticks(), start)
        for sensor in sensors:
            while sensor.next_ms <= now:
                sensor.extractor.feed(sensor.next_ms, sensor.read())
                sensor.next_ms += sensor.sample_ms
            poll = getattr(sensor.extractor, "poll_flush", None)
            if poll is not None:
                poll(now)
        pending = sink.urgent_events + sink.events
        sink.urgent_events = []
        sink.events = []
        for start_ms, ev in pending:
            events += 1
            _say({"t_ms": start_ms, "event": _event(ev)})
        if now >= next_report:
            next_report += every_ms
            readings = []
            for i, r in enumerate(cfg["roles"]):
                reading = sensors[i].extractor.reading()
                reading["role"] = r["role"]
                readings.append(reading)
            _say({"t_ms": now, "readings": readings})
        time.sleep_ms(20)
    _say({"done": True, "seconds": seconds, "events": events})


def measure(index, seconds):
    """What roles[index]'s sensor measures over seconds, for calibration."""
    import hal

    cfg, error = _load()
    if cfg is None or not 0 <= index < len(cfg["roles"]):
        _say({"error": error or "roles[%d]: no such role in config.json" % index})
        return
    r = cfg["roles"][index]
    kind = r["sensor"]
    end = time.ticks_add(_ticks(), int(seconds * 1000))
    if kind in ("fsr", "hx711"):
        from node import Sink

        read = _build_sensors([r], Sink())[0].read
        scale = 64 if kind == "hx711" else 1
        total = n = 0
        low = high = None
        while n == 0 or time.ticks_diff(end, _ticks()) > 0:
            v = read() // scale
            total += v
            n += 1
            low = v if low is None or v < low else low
            high = v if high is None or v > high else high
            time.sleep_ms(_LEVEL_MS)
        _say({"kind": "level", "mean": total // n, "min": low, "max": high, "samples": n})
    elif kind == "flow":
        counter = hal.pulse_counter(r["pin"])
        last = counter.value()
        pulses = 0
        while time.ticks_diff(end, _ticks()) > 0:
            time.sleep_ms(_FLOW_MS)
            value = counter.value()
            pulses += (value - last) & 0xFFFF  # 16-bit counters wrap
            last = value
        _say({"kind": "pulses", "pulses": pulses})
    elif kind == "vl53l0x":
        from vl53l0x import VL53L0X

        b = r["i2c"]
        tof = VL53L0X(hal.i2c(b["id"], b["scl"], b["sda"]))
        values = []
        while not values or time.ticks_diff(end, _ticks()) > 0:
            try:
                mm = tof.distance_mm()
                if 0 < mm < 8190:
                    values.append(mm)
            except OSError:
                pass
            time.sleep_ms(_PRESENCE_MS)
            if len(values) == 0 and time.ticks_diff(end, _ticks()) <= 0:
                break
        if not values:
            _say({"error": "the distance sensor saw nothing in range (check where it points)"})
            return
        _say({"kind": "distance", "mean_mm": sum(values) // len(values), "min_mm": min(values),
              "max_mm": max(values), "samples": len(values)})
    elif kind == "ld2410":
        from ld2410 import LD2410Parser

        u = r["uart"]
        uart = hal.uart(u["id"], u["tx"], u["rx"], 256000)
        parser = LD2410Parser()
        top = -1
        reports = 0
        while time.ticks_diff(end, _ticks()) > 0:
            data = uart.read()
            for rep in (parser.feed(data) or ()) if data else ():
                reports += 1
                energy = rep[2] if rep[2] > rep[4] else rep[4]
                top = energy if energy > top else top
            time.sleep_ms(_PRESENCE_MS)
        _say({"kind": "energy", "max_energy": top, "reports": reports})
    else:
        from node import Sink

        read = _build_sensors([r], Sink())[0].read
        seen = n = 0
        while n == 0 or time.ticks_diff(end, _ticks()) > 0:
            if read():
                seen += 1
            n += 1
            time.sleep_ms(_PRESENCE_MS)
        _say({"kind": "presence", "present": seen, "samples": n})
