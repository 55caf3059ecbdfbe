"""config.json checking under MicroPython: every bad value is named, the node stays up."""

import json

from bootguard import BootGuard
from config import ConfigError, check_roles, load, load_board
from runner import eq, mentions, raises
from tempdir import TempDir

BOARDS = "boards"
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


class Nvs:
    """The node's secrets as hal keeps them in NVS: name -> bytes."""

    def __init__(self, **values):
        self.values = dict(values)

    def get(self, name):
        return self.values.get(name)

    def set(self, name, value):
        if value:
            self.values[name] = bytes(value)
        else:
            self.values.pop(name, None)


def provisioned():
    return Nvs(key=bytes.fromhex(KEY), wifi_password=b"secret")


def good():
    return {
        "node_id": 101,
        "board": "esp32-devkitc",
        "household": "h-1",
        "resident": "r-1",
        "uplink": {"type": "udp", "host": "192.168.1.10", "port": 5683, "ssid": "home"},
        "roles": [
            {"role": "seat", "sensor": "fsr", "pin": 34, "too_long_min": 240},
            {"role": "tap", "sensor": "flow", "pin": 27, "pulses_per_l": 450},
            {"role": "toilet", "sensor": "ld2410", "uart": {"id": 2, "tx": 17, "rx": 16},
             "prolonged_min": 45, "flush_pin": 25},
        ],
    }


def load_dict(d, nvs=None):
    nvs = provisioned() if nvs is None else nvs
    with TempDir() as folder:
        path = folder + "/config.json"
        with open(path, "w") as f:
            f.write(d if isinstance(d, str) else json.dumps(d))
        return load(path, BOARDS, nvs.get)


def broken(change, *words, nvs=None):
    cfg = good()
    change(cfg)
    result, error = load_dict(cfg, nvs)
    if error is None:
        raise AssertionError("accepted: %r" % (cfg,))
    for word in words:
        if word not in error:
            raise AssertionError("error %r does not mention %r" % (error, word))
    return result


def test_good_config_is_filled_in():
    cfg, error = load_dict(good())
    eq(error, None)
    eq(cfg["node_id"], 101)
    eq(cfg["key"], bytes.fromhex(KEY), "the key, from NVS")
    eq(cfg["uplink"]["password"], "secret", "the Wi-Fi password, from NVS")
    eq(cfg["board"]["name"], "esp32-devkitc")
    eq((cfg["summary_s"], cfg["summary_batch"], cfg["event_wait_s"], cfg["status_s"],
        cfg["safe_mode_after"], cfg["mtu"]), (900, 8, 1800, 10800, 3, 250))
    eq([r["role"] for r in cfg["roles"]], ["seat", "tap", "toilet"])
    eq(cfg["roles"][2]["uart"], {"id": 2, "tx": 17, "rx": 16})
    eq(cfg["roles"][2]["flush_pin"], 25)


def test_missing_and_unreadable_files_are_named():
    with TempDir() as folder:
        cfg, error = load(folder + "/config.json", BOARDS)
    eq(cfg, None)
    mentions(ValueError(error), "config.json", "missing", "provision")
    cfg, error = load_dict("{not json")
    eq(cfg, None)
    mentions(ValueError(error), "not valid JSON")


def test_core_errors_name_the_field():
    def set_(key, value):
        def change(cfg):
            cfg[key] = value
        return change

    eq(broken(set_("node_id", -1), "node_id", "-1"), None)
    eq(broken(set_("node_id", "7"), "node_id"), None)
    eq(broken(set_("key", "zz"), "key", "hex"), None)  # an older tool's config.json
    eq(broken(set_("key", "00" * 8), "key", "8 bytes"), None)
    eq(broken(set_("node_id", 101), "key", "8 bytes", nvs=Nvs(key=b"\0" * 8)), None)
    eq(broken(set_("board", "arduino-uno"), "board", "arduino-uno"), None)
    eq(broken(set_("summary_s", 5), "summary_s", "60 to 3600"), None)
    eq(broken(set_("uplink", {"type": "carrier-pigeon"}), "uplink.type"), None)
    eq(broken(set_("uplink", {"type": "udp"}), "host", "missing"), None)
    eq(broken(set_("uplink", {"type": "espnow", "gateway": "24:6f:28"}),
              "uplink.gateway", "MAC"), None)


def test_sensor_errors_keep_the_core_so_status_can_report_them():
    def role(i, **changes):
        def change(cfg):
            cfg["roles"][i].update(changes)
        return change

    cfg = broken(role(0, pin=99), "roles[0].pin", "99", "esp32-devkitc")
    eq((cfg["node_id"], cfg["roles"]), (101, []))
    broken(role(0, pin=27), "roles[0].pin", "ADC1")  # GPIO 27 has no ADC1 channel
    broken(role(1, pin=34, role="tap"), "roles[1].pin", "already used by roles[0].pin")
    broken(role(0, sensor="pir"), "roles[0].sensor", "cannot serve seat")
    broken(role(0, role="garden"), "roles[0].role", "garden")
    broken(role(0, too_long_min=0), "roles[0].too_long_min", "10 to 1440")
    broken(role(0, colour="red"), "roles[0]", "unknown setting colour")
    broken(role(2, uart={"id": 0, "tx": 17, "rx": 16}), "roles[2].uart.id")
    broken(role(2, uart={"id": 2, "tx": 34, "rx": 16}), "roles[2].uart.tx", "input-only")

    def no_roles(cfg):
        cfg["roles"] = []
    broken(no_roles, "roles", "1 to 4")


def test_each_board_file_is_usable():
    for name in ("esp32-devkitc", "esp32-c3-devkitm", "esp32-s3-devkitc"):
        board = load_board(name, BOARDS)
        eq(board["name"], name)
        for pin in board["adc_pins"] + board["input_only"]:
            if pin not in board["gpio"]:
                raise AssertionError("%s: pin %d is not in gpio" % (name, pin))
        roles = check_roles([{"role": "seat", "sensor": "fsr", "pin": board["adc_pins"][0]},
                             {"role": "stairs", "sensor": "vl53l0x"}], board)
        eq(roles[1]["i2c"]["id"], board["defaults"]["i2c"]["id"])
    err = raises(ConfigError, load_board, "nope", BOARDS)
    mentions(err, "nope")


def test_safe_mode_after_failed_boots_in_a_row():
    with TempDir() as folder:
        path = folder + "/bootguard"
        eq([BootGuard(path, limit=3).safe_mode for _ in range(5)],
           [False, False, False, True, True])
        guard = BootGuard(path, limit=3)
        eq(guard.safe_mode, True)
        guard.clear()
        eq(BootGuard(path, limit=3).safe_mode, False)
        guard = BootGuard(path, limit=3)
        guard.healthy()  # a good run resets the count
        eq([BootGuard(path, limit=3).safe_mode for _ in range(3)], [False, False, False])
        with open(path, "w") as f:
            f.write("garbage")
        eq(BootGuard(path, limit=1).attempts, 1)
        raises(ValueError, BootGuard, path, 0)


def test_a_gateway_needs_no_sensors_but_an_uplink_to_the_host():
    cfg = good()
    del cfg["roles"]
    cfg["espnow_gateway"] = {"channel": 6}
    result, error = load_dict(cfg)
    eq(error, None)
    eq((result["gateway_channel"], result["roles"]), (6, []))
    cfg["espnow_gateway"] = {"channel": 14}
    mentions(ValueError(load_dict(cfg)[1]), "espnow_gateway.channel", "1 to 13")
    cfg["espnow_gateway"] = {"channel": 1}
    cfg["uplink"] = {"type": "espnow", "gateway": "24:6f:28:aa:bb:cc"}
    mentions(ValueError(load_dict(cfg)[1]), "espnow_gateway", "udp, serial or mqtt")
    eq(load_dict(good())[0]["gateway_channel"], 0)


def test_an_mqtt_uplink_names_its_broker_and_household():
    cfg = good()
    cfg["uplink"] = {"type": "mqtt", "host": "192.168.1.10", "ssid": "home",
                     "household": "h-1", "user": "n101"}
    result, error = load_dict(cfg)
    eq(error, None)
    up = result["uplink"]
    eq((up["type"], up["port"], up["household"], up["user"]), ("mqtt", 1883, "h-1", "n101"))
    cfg["uplink"]["household"] = "h/1"
    mentions(ValueError(load_dict(cfg)[1]), "uplink.household", "'/'")
    cfg["uplink"]["household"] = "h-1"
    cfg["uplink"]["port"] = 0
    mentions(ValueError(load_dict(cfg)[1]), "uplink.port")


def test_a_missing_key_is_named_with_what_to_do():
    nvs = provisioned()
    del nvs.values["key"]
    cfg, error = load_dict(good(), nvs)
    eq(cfg, None)
    eq(error, "key: not provisioned (no key in NVS): run kinsight-field provision")
    cfg, error = load_dict(good(), Nvs())
    eq(cfg, None, "no secrets at all")
    mentions(ValueError(error), "key: not provisioned")


def test_passwords_come_from_nvs_and_are_checked():
    cfg, error = load_dict(good(), Nvs(key=bytes.fromhex(KEY)))
    eq((error, cfg["uplink"]["password"]), (None, ""), "an open network")
    cfg, error = load_dict(good(), Nvs(key=bytes.fromhex(KEY), wifi_password=b"x" * 65))
    eq(cfg, None)
    mentions(ValueError(error), "uplink.password", "64 characters")
    mqtt = good()
    mqtt["uplink"] = {"type": "mqtt", "host": "192.168.1.10", "ssid": "home",
                      "household": "h-1", "user": "n101"}
    nvs = Nvs(key=bytes.fromhex(KEY), wifi_password=b"wifi", mqtt_password=b"broker")
    cfg, error = load_dict(mqtt, nvs)
    eq(error, None)
    eq((cfg["uplink"]["password"], cfg["uplink"]["mqtt_password"]), ("wifi", "broker"))


def _write(path, cfg):
    with open(path, "w") as f:
        json.dump(cfg, f)


def _read(path):
    with open(path) as f:
        return json.load(f)


def test_secrets_an_older_tool_left_in_config_json_move_to_nvs_at_boot():
    old = good()
    old["key"] = KEY
    old["uplink"]["password"] = "old wifi"
    nvs = Nvs(wifi_password=b"stale")
    with TempDir() as folder:
        path = folder + "/config.json"
        _write(path, old)
        cfg, error = load(path, BOARDS, nvs.get, nvs.set)
        eq(error, None)
        eq((cfg["key"], cfg["uplink"]["password"]), (bytes.fromhex(KEY), "old wifi"))
        eq(nvs.values, {"key": bytes.fromhex(KEY), "wifi_password": b"old wifi"},
           "NVS, config.json's values winning over what NVS held")
        text = open(path).read()
        if KEY in text or "old wifi" in text or "password" in text:
            raise AssertionError("config.json still holds a secret: %s" % text)
        eq(_read(path), good(), "config.json, all else kept")
        again, error = load(path, BOARDS, nvs.get, nvs.set)
        eq((error, again), (None, cfg), "the next boot, from NVS alone")
        eq(sorted(open_names(folder)), ["config.json"], "no temporary file left")


def test_mqtt_secrets_move_too_and_an_empty_password_erases():
    old = good()
    old["key"] = KEY
    old["uplink"] = {"type": "mqtt", "host": "192.168.1.10", "ssid": "home", "password": "",
                     "household": "h-1", "user": "n101", "mqtt_password": "broker"}
    nvs = Nvs(wifi_password=b"stale")
    with TempDir() as folder:
        path = folder + "/config.json"
        _write(path, old)
        cfg, error = load(path, BOARDS, nvs.get, nvs.set)
        eq(error, None)
        eq(nvs.values, {"key": bytes.fromhex(KEY), "mqtt_password": b"broker"})
        eq(sorted(_read(path)["uplink"]), ["host", "household", "ssid", "type", "user"])
        eq((cfg["uplink"]["password"], cfg["uplink"]["mqtt_password"]), ("", "broker"))


def test_no_move_without_a_setter_nor_from_a_broken_core():
    old = good()
    old["key"] = KEY
    with TempDir() as folder:
        path = folder + "/config.json"
        _write(path, old)
        nvs = Nvs()
        cfg, error = load(path, BOARDS, nvs.get)  # the field tools look, they change nothing
        eq((error, cfg["key"]), (None, bytes.fromhex(KEY)))
        eq((nvs.values, _read(path)), ({}, old), "left as it was")
        old["node_id"] = -1
        _write(path, old)
        cfg, error = load(path, BOARDS, nvs.get, nvs.set)
        eq(cfg, None)
        mentions(ValueError(error), "node_id")
        eq((nvs.values, _read(path)["key"]), ({}, KEY), "a broken config.json stays whole")


def test_a_move_nvs_refuses_leaves_config_json_whole():
    old = good()
    old["key"] = KEY

    def full(name, value):
        raise OSError(28)  # ENOSPC: NVS is full

    with TempDir() as folder:
        path = folder + "/config.json"
        _write(path, old)
        cfg, error = load(path, BOARDS, Nvs().get, full)
        eq((error, cfg["key"]), (None, bytes.fromhex(KEY)), "the node runs on what it read")
        eq(_read(path), old, "config.json kept its secrets for the next boot to move")


def open_names(folder):
    import os

    return os.listdir(folder)


def test_a_wearable_is_named_by_address_or_name():
    board = load_board("esp32-devkitc", BOARDS)
    roles = check_roles([{"role": "heart_rate", "sensor": "ble", "name": "Polar H10 1A2B3C4D",
                          "high_bpm": 150, "sustain_min": 5},
                         {"role": "heart_rate", "sensor": "ble",
                          "address": "a0:9e:1a:12:34:56"}], board)
    eq(roles, [{"role": "heart_rate", "sensor": "ble", "name": "Polar H10 1A2B3C4D",
                "high_bpm": 150, "sustain_min": 5},
               {"role": "heart_rate", "sensor": "ble", "address": "a0:9e:1a:12:34:56"}])
    for item, words in (({}, ("roles[0]", "address or name")),
                        ({"name": ""}, ("roles[0].name", "1 to 32")),
                        ({"name": 7}, ("roles[0].name",)),
                        ({"address": "a0:9e"}, ("roles[0].address", "aa:bb")),
                        ({"name": "x", "low_bpm": 10}, ("roles[0].low_bpm", "20 to 90")),
                        ({"name": "x", "pin": 4}, ("unknown setting pin",))):
        item.update(role="heart_rate", sensor="ble")
        mentions(raises(ConfigError, check_roles, [item], board), *words)
    mentions(raises(ConfigError, check_roles, [{"role": "heart_rate", "sensor": "pir"}], board),
             "cannot serve heart_rate", "ble")
