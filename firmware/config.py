"""config.json: read it, check every value, fill in the defaults.

A node must stay reachable whatever its configuration says, so nothing here
raises past ``load``: it returns the checked configuration and the first error
found, as a sentence that names the field, e.g. "roles[0].pin: 99 is not a
GPIO of esp32-devkitc". The identity and uplink ("the core") are checked apart
from the sensors, so a node whose sensors are misconfigured can still send
status frames that carry the error to the field team.

The node's key and its Wi-Fi and MQTT passwords are not in config.json: they live
in NVS (hal.secret_get), where a file listing or ``fs cat`` cannot reach them.
``load`` is given the getter, so this module stays pure and testable.
"""

import json

from micropython import const

from kinsight_wire import MTU_DEFAULT, U32_MAX

_KEY_MIN_BYTES = const(16)
_KEY_MAX_BYTES = const(64)
_MAX_ROLES = const(4)
_MAX_TEXT = const(32)
_MAX_PASSWORD = const(64)

# role: the sensors that can serve it
SENSORS = {
    "seat": ("fsr", "hx711"),
    "bed": ("fsr", "hx711"),
    "tap": ("flow",),
    "toilet": ("pir", "ld2410", "vl53l0x"),
    "stairs": ("pir", "ld2410", "vl53l0x"),
    "heart_rate": ("ble",),
}
UPLINKS = ("udp", "serial", "espnow", "mqtt")

# Tunables a role may set: name -> (lowest, highest). Defaults live with the extractors.
_TUNABLES = {
    "seat": {"on_delta": (20, 100000), "off_delta": (10, 100000), "too_long_min": (10, 1440)},
    "bed": {"on_delta": (20, 100000), "off_delta": (10, 100000), "too_long_min": (0, 1440)},
    "tap": {"pulses_per_l": (100, 2000), "leak_min": (5, 1440)},
    "toilet": {"prolonged_min": (1, 240), "range_mm": (100, 4000), "flush_pin": (0, 48)},
    "stairs": {"prolonged_min": (1, 240), "range_mm": (100, 4000)},
    "heart_rate": {"high_bpm": (100, 250), "low_bpm": (20, 90), "sustain_min": (1, 120)},
}


# The secrets' names in NVS (at most 15 characters, NVS's limit).
SECRETS = ("key", "wifi_password", "mqtt_password")


class ConfigError(ValueError):
    pass


def load(path, board_dir, secret_get=None, secret_set=None):
    """(config, error): the checked configuration (or None) and the first error (or None).

    secret_get(name) gives a secret's bytes from NVS, or None. When only the sensors are
    wrong, config holds the core with no roles and error says what is wrong with them.
    Given secret_set too (a boot), secrets an older tool left in config.json move to NVS.
    """
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError:
        return None, "%s: missing (provision the node first)" % path
    except ValueError as err:
        return None, "%s: not valid JSON (%s)" % (path, err)
    try:
        found = _take_old_secrets(raw)
        # What config.json still holds was written after anything in NVS (by an older
        # tool, over this firmware's provisioning): it is the node's current secret.
        core = check_core(raw, board_dir, lambda name: found[name] if name in found
                          else secret_get(name) if secret_get else None)
    except ConfigError as err:
        return None, str(err)
    if found and secret_set is not None:
        # Nodes provisioned before NVS held their secrets in config.json, readable by
        # anyone with a USB cable: at boot they move to NVS, and config.json is written
        # without them. NVS first: a power cut between leaves both copies, never neither,
        # and the next boot finishes the move; an NVS or flash that refuses leaves the
        # node running on what it read.
        import os

        try:
            for name in found:
                secret_set(name, found[name])
            with open(path + ".tmp", "w") as f:
                json.dump(raw, f)
            os.rename(path + ".tmp", path)
        except OSError:
            pass
    if core["gateway_channel"] and not raw.get("roles"):
        core["roles"] = []  # a gateway that only relays other nodes' frames
        return core, None
    try:
        core["roles"] = check_roles(raw.get("roles"), core["board"])
    except ConfigError as err:
        core["roles"] = []
        return core, str(err)
    return core, None


def _take_old_secrets(raw):
    # Removes from raw the secrets an older tool wrote into config.json: {NVS name: bytes}.
    found = {}
    up = raw.get("uplink") if isinstance(raw, dict) else None
    for name, holder, field in (("key", raw, "key"), ("wifi_password", up, "password"),
                                ("mqtt_password", up, "mqtt_password")):
        if isinstance(holder, dict) and field in holder:
            value = holder.pop(field)
            try:
                found[name] = bytes.fromhex(value) if holder is raw else value.encode()
            except (ValueError, AttributeError, TypeError):
                raise ConfigError("key: not hex digits" if holder is raw
                                  else "uplink.%s: not text" % field) from None
    return found


def load_board(name, board_dir):
    try:
        with open("%s/%s.json" % (board_dir, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        raise ConfigError("board: %r is not a known board (no %s/%s.json)"
                          % (name, board_dir, name)) from None


def check_core(raw, board_dir, secret):
    if not isinstance(raw, dict):
        raise ConfigError("config: must be a JSON object")
    cfg = {}
    cfg["node_id"] = _int(raw, "node_id", 0, U32_MAX)
    cfg["key"] = _key(secret("key"))
    cfg["board"] = load_board(_text(raw, "board"), board_dir)
    cfg["household"] = _text(raw, "household", "")
    cfg["resident"] = _text(raw, "resident", "")
    cfg["summary_s"] = _int(raw, "summary_s", 60, 3600, 900)
    cfg["summary_batch"] = _int(raw, "summary_batch", 1, 16, 8)
    cfg["event_wait_s"] = _int(raw, "event_wait_s", 0, 7200, 1800)
    cfg["status_s"] = _int(raw, "status_s", 300, 86400, 10800)
    cfg["safe_mode_after"] = _int(raw, "safe_mode_after", 1, 20, 3)
    cfg["mtu"] = _int(raw, "mtu", 80, MTU_DEFAULT, MTU_DEFAULT)
    cfg["uplink"] = _uplink(raw.get("uplink"), cfg["board"], secret)
    cfg["gateway_channel"] = 0
    gateway = raw.get("espnow_gateway")
    if gateway is not None:
        if not isinstance(gateway, dict):
            raise ConfigError("espnow_gateway: must be an object like {\"channel\": 1}")
        cfg["gateway_channel"] = _int(gateway, "channel", 1, 13, where="espnow_gateway")
        if cfg["uplink"]["type"] == "espnow":
            raise ConfigError("espnow_gateway: a gateway needs a udp, serial or mqtt uplink "
                              "to the host, not espnow")
    return cfg


def check_roles(raw, board):
    if not isinstance(raw, list) or not 1 <= len(raw) <= _MAX_ROLES:
        raise ConfigError("roles: must be a list of 1 to %d sensor roles" % _MAX_ROLES)
    used = {}
    out = []
    for i, item in enumerate(raw):
        where = "roles[%d]" % i
        if not isinstance(item, dict):
            raise ConfigError("%s: must be an object" % where)
        role = item.get("role")
        if role not in SENSORS:
            raise ConfigError("%s.role: %r is not one of %s" % (where, role, ", ".join(SENSORS)))
        sensor = item.get("sensor")
        if sensor not in SENSORS[role]:
            raise ConfigError("%s.sensor: %r cannot serve %s (use %s)"
                              % (where, sensor, role, " or ".join(SENSORS[role])))
        r = {"role": role, "sensor": sensor}
        if sensor == "fsr":
            r["pin"] = _pin(item, "pin", where, board, used, adc=True)
        elif sensor == "hx711":
            r["dout"] = _pin(item, "dout", where, board, used)
            r["sck"] = _pin(item, "sck", where, board, used, output=True)
        elif sensor in ("flow", "pir"):
            r["pin"] = _pin(item, "pin", where, board, used)
        elif sensor == "ld2410":
            r["uart"] = _bus(item, "uart", where, board, used, ("tx", "rx"), "uarts")
        elif sensor == "vl53l0x":
            r["i2c"] = _bus(item, "i2c", where, board, used, ("scl", "sda"), "i2c")
        elif sensor == "ble":
            _wearable(item, r, where)
        for name, (low, high) in _TUNABLES[role].items():
            if name in item:
                if name.endswith("_pin"):
                    r[name] = _pin(item, name, where, board, used)
                else:
                    r[name] = _int(item, name, low, high, where=where)
        unknown = [k for k in item if k not in r and k not in ("role", "sensor")]
        if unknown:
            raise ConfigError("%s: unknown setting %s" % (where, unknown[0]))
        out.append(r)
    return out


def _wearable(item, r, where):
    """The wearable to connect to: its address, or the name it advertises."""
    for name in ("address", "name"):
        if name in item:
            value = item[name]
            if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT:
                raise ConfigError("%s.%s: must be text of 1 to %d characters"
                                  % (where, name, _MAX_TEXT))
            r[name] = value
    if "address" in r and len(r["address"].split(":")) != 6:
        raise ConfigError("%s.address: %r is not aa:bb:cc:dd:ee:ff" % (where, r["address"]))
    if "address" not in r and "name" not in r:
        raise ConfigError("%s: a heart_rate wearable needs its address or name" % where)


def _where(where, name):
    return "%s.%s" % (where, name) if where else name


def _int(raw, name, low, high, default=None, where=""):
    value = raw.get(name, default)
    if value is None:
        raise ConfigError("%s: missing" % _where(where, name))
    if type(value) is not int or not low <= value <= high:
        raise ConfigError("%s: %r is not a whole number from %d to %d"
                          % (_where(where, name), value, low, high))
    return value


def _text(raw, name, default=None):
    value = raw.get(name, default)
    if value is None:
        raise ConfigError("%s: missing" % name)
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise ConfigError("%s: must be text of at most %d characters" % (name, _MAX_TEXT))
    return value


def _key(key):
    if key is None:
        raise ConfigError("key: not provisioned (no key in NVS): run kinsight-field provision")
    if not _KEY_MIN_BYTES <= len(key) <= _KEY_MAX_BYTES:
        raise ConfigError("key: %d bytes, must be %d to %d"
                          % (len(key), _KEY_MIN_BYTES, _KEY_MAX_BYTES))
    return key


def _password(secret, name, field):
    value = secret(name)
    try:
        text = "" if value is None else value.decode()
    except (UnicodeError, ValueError):
        text = None
    if text is None or len(text) > _MAX_PASSWORD:
        raise ConfigError("uplink.%s: must be text of at most %d characters"
                          % (field, _MAX_PASSWORD))
    return text


def _pin(raw, name, where, board, used, adc=False, output=False):
    pin = raw.get(name)
    field = _where(where, name)
    if type(pin) is not int or pin not in board["gpio"]:
        raise ConfigError("%s: %r is not a GPIO of %s" % (field, pin, board["name"]))
    if adc and pin not in board["adc_pins"]:
        raise ConfigError("%s: GPIO %d has no ADC1 channel on %s (use one of %s)"
                          % (field, pin, board["name"], board["adc_pins"]))
    if output and pin in board["input_only"]:
        raise ConfigError("%s: GPIO %d is input-only on %s" % (field, pin, board["name"]))
    if pin in used:
        raise ConfigError("%s: GPIO %d is already used by %s" % (field, pin, used[pin]))
    used[pin] = field
    return pin


def _bus(raw, name, where, board, used, pin_names, kind):
    value = raw.get(name, board["defaults"].get(name))
    field = _where(where, name)
    if not isinstance(value, dict):
        raise ConfigError("%s: must be an object with id, %s" % (field, " and ".join(pin_names)))
    bus_id = value.get("id")
    if bus_id not in board[kind]:
        raise ConfigError("%s.id: %r is not one of this board's %s %s"
                          % (field, bus_id, kind, board[kind]))
    out = {"id": bus_id}
    for p in pin_names:
        out[p] = _pin(value, p, field, board, used, output=p in ("tx", "scl"))
    return out


def _uplink(raw, board, secret):
    if not isinstance(raw, dict) or raw.get("type") not in UPLINKS:
        raise ConfigError("uplink.type: must be one of %s" % ", ".join(UPLINKS))
    kind = raw["type"]
    out = {"type": kind}
    if kind == "udp":
        out["host"] = _text(raw, "host")
        out["port"] = _int(raw, "port", 1, 65535, 5683, where="uplink")
        out["ssid"] = _text(raw, "ssid", "")
        out["password"] = _password(secret, "wifi_password", "password")
    elif kind == "mqtt":
        # Over Wi-Fi to a broker; the frames go on <prefix>/<household>/<node>/up.
        out["host"] = _text(raw, "host")
        out["port"] = _int(raw, "port", 1, 65535, 1883, where="uplink")
        out["ssid"] = _text(raw, "ssid", "")
        out["household"] = _text(raw, "household")
        out["password"] = _password(secret, "wifi_password", "password")
        out["user"] = raw.get("user", "")
        if not isinstance(out["user"], str) or len(out["user"]) > _MAX_PASSWORD:
            raise ConfigError("uplink.user: must be text of at most %d characters"
                              % _MAX_PASSWORD)
        out["mqtt_password"] = _password(secret, "mqtt_password", "mqtt_password")
        if "/" in out["household"] or "+" in out["household"] or "#" in out["household"]:
            raise ConfigError("uplink.household: %r may not hold '/', '+' or '#'"
                              % out["household"])
    elif kind == "serial":
        out["uart"] = _int(raw, "uart", 0, 2, 0, where="uplink")
        out["baud"] = _int(raw, "baud", 9600, 921600, 115200, where="uplink")
    else:
        mac = raw.get("gateway")
        try:
            out["gateway"] = bytes(int(x, 16) for x in str(mac).split(":"))
        except ValueError:
            out["gateway"] = b""
        if len(out["gateway"]) != 6:
            raise ConfigError("uplink.gateway: %r is not a MAC address like 24:6f:28:aa:bb:cc"
                              % (mac,))
        out["channel"] = _int(raw, "channel", 1, 13, 1, where="uplink")
    return out
