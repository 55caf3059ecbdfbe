"""fieldapi under MicroPython: what the field tools read from a node, with a stand-in hal.

hal is replaced in sys.modules before fieldapi or sensors import it, so the
sensors read values the test chooses; the node's files live under a scratch
folder that fieldapi.ROOT points at.
"""

import json
import os
import sys
import time

from runner import eq, mentions

_BOARD = "esp32-devkitc"
KEY = bytes(range(32))


class FakeAdc:
    value = 1200

    def read(self):
        return FakeAdc.value


class FakeCounter:
    count = 0

    def value(self):
        return FakeCounter.count & 0xFFFF


class FakePin:
    level = 0

    def value(self):
        return FakePin.level


class FakeHal:
    nvs = {}  # the secrets, as NVS would hold them

    @staticmethod
    def secret_get(name):
        return FakeHal.nvs.get(name)

    @staticmethod
    def secret_set(name, value):
        if value:
            FakeHal.nvs[name] = bytes(value)
        else:
            FakeHal.nvs.pop(name, None)

    @staticmethod
    def secret_erase(name):
        return FakeHal.nvs.pop(name, None) is not None

    @staticmethod
    def reset_cause():
        return 3  # RESET_WATCHDOG

    @staticmethod
    def free_heap():
        return 54321

    @staticmethod
    def adc(pin):
        return FakeAdc()

    @staticmethod
    def pulse_counter(pin, unit=0):
        return FakeCounter()

    @staticmethod
    def pin_in(pin, pull_up=False):
        return FakePin()

    @staticmethod
    def rssi_dbm(wlan):
        return -60


class FakeExtractor:
    """Stands in for the pressure and flow extractors (tested in their own modules, and
    end to end on the virtual node): compiling them from source as well would not fit
    the ESP32-sized heap beside fieldapi and sensors."""

    def __init__(self, sink, **options):
        self.sink = sink
        self.last = None

    def feed(self, t_ms, raw):
        self.last = raw

    def reading(self):
        return {"raw": self.last}


class FakePressure:
    PressureExtractor = FakeExtractor

    @staticmethod
    def defaults_for(role, sensor):
        return {}


class FakeFlow:
    FlowExtractor = FakeExtractor


sys.modules["hal"] = FakeHal
sys.modules["pressure"] = FakePressure
sys.modules["flow"] = FakeFlow

import fieldapi  # noqa: E402  (after the stand-in hal)

OUT = []
fieldapi._say = OUT.append


def _rm(path):
    try:
        if os.stat(path)[0] & 0x4000:
            for name in os.listdir(path):
                _rm(path + "/" + name)
            os.rmdir(path)
        else:
            os.remove(path)
    except OSError:
        pass


class Node:
    """A scratch node filesystem with boards, a version file and (optionally) a config."""

    def __init__(self, roles=None):
        self.roles = roles

    def __enter__(self):
        stamp = "".join("%02x" % b for b in os.urandom(6))
        root = "/tmp/kinsight-fieldapi-" + stamp
        for d in ("", "/boards", "/lib"):
            os.mkdir(root + d)
        with open("boards/%s.json" % _BOARD) as f:
            board = f.read()
        with open(root + "/boards/%s.json" % _BOARD, "w") as f:
            f.write(board)
        with open(root + "/lib/kinsight_version", "w") as f:
            f.write("9.9.9\n")
        FakeHal.nvs = {}
        if self.roles is not None:
            cfg = {"node_id": 7, "board": _BOARD, "household": "h-1",
                   "resident": "r-1", "uplink": {"type": "serial"}, "roles": self.roles}
            with open(root + "/config.json", "w") as f:
                json.dump(cfg, f)
            FakeHal.nvs["key"] = KEY
        self.root = root
        fieldapi.ROOT = root
        del OUT[:]
        return self

    def __exit__(self, *exc):
        _rm(self.root)
        return False

    def config(self):
        with open(self.root + "/config.json") as f:
            return json.load(f)


SEAT_TAP = [{"role": "seat", "sensor": "fsr", "pin": 34},
            {"role": "tap", "sensor": "flow", "pin": 27}]


def test_status_of_a_configured_node():
    FakeAdc.value = 1200
    FakeCounter.count = 0
    with Node(SEAT_TAP):
        fieldapi.log("first problem")
        fieldapi.status()
        s = OUT[-1]
        eq(s["firmware"], "9.9.9", "firmware")
        eq(s["node_id"], 7, "node_id")
        eq(s["config_error"], None, "config_error")
        eq(s["reset_cause"], "watchdog", "reset_cause")
        eq(s["free_heap"], 54321, "free_heap")
        eq(s["queue_depth"], 0, "queue_depth")
        eq(s["safe_mode"], False, "safe_mode")
        eq(s["errors"], ["first problem"], "errors")
        eq([(r["role"], r["value"]) for r in s["readings"]], [("seat", 1200), ("tap", 0)])


def test_status_of_an_unprovisioned_node_names_the_problem():
    with Node():
        fieldapi.status()
        s = OUT[-1]
        eq(s["node_id"], None, "node_id")
        mentions(type("E", (Exception,), {})(s["config_error"]), "missing", "provision")
        eq(s["readings"], [], "readings")


def test_log_keeps_the_last_50_lines():
    with Node():
        for i in range(60):
            fieldapi.log("line %d" % i)
        fieldapi.logs(100)
        lines = OUT[-1]["lines"]
        eq(len(lines), 50, "lines kept")
        eq(lines[0], "line 10")
        eq(lines[-1], "line 59")


def test_check_gives_the_nodes_own_error():
    with Node(SEAT_TAP) as node:
        bad = node.config()
        bad["roles"][0]["pin"] = 27
        with open(node.root + "/config.json.tmp", "w") as f:
            json.dump(bad, f)
        fieldapi.check()
        mentions(Exception(OUT[-1]["error"]), "roles[0].pin", "no ADC1 channel")
        fieldapi.check("/config.json")
        eq(OUT[-1]["error"], None, "good config")


def test_set_tunables_checks_and_keeps_the_old_config_on_error():
    with Node(SEAT_TAP) as node:
        fieldapi.set_tunables(0, {"on_delta": 600, "off_delta": 300})
        eq(OUT[-1]["error"], None)
        eq(node.config()["roles"][0]["on_delta"], 600, "on_delta stored")
        fieldapi.set_tunables(0, {"on_delta": 5})
        mentions(Exception(OUT[-1]["error"]), "roles[0].on_delta")
        eq(node.config()["roles"][0]["on_delta"], 600, "old value kept")


def test_safe_mode_enter_and_clear():
    with Node(SEAT_TAP) as node:
        fieldapi.set_safe_mode(True)
        fieldapi.status()
        eq(OUT[-1]["safe_mode"], True, "entered")
        from bootguard import BootGuard

        eq(BootGuard(node.root + "/kinsight/bootguard", 3).safe_mode, True, "next boot")
        fieldapi.set_safe_mode(False)
        fieldapi.status()
        eq(OUT[-1]["safe_mode"], False, "cleared")


def test_selftest_flags_a_stuck_adc():
    with Node(SEAT_TAP):
        FakeAdc.value = 0
        fieldapi.selftest(reads=2)
        results = OUT[-1]["results"]
        eq([r["ok"] for r in results], [False, True])
        mentions(Exception(results[0]["detail"]), "stuck at 0")
        FakeAdc.value = 1500
        fieldapi.selftest(reads=2)
        eq([r["ok"] for r in OUT[-1]["results"]], [True, True])


def test_measure_counts_pulses_and_levels():
    with Node(SEAT_TAP):
        FakeAdc.value = 900
        fieldapi.measure(0, 0.2)
        eq((OUT[-1]["kind"], OUT[-1]["mean"]), ("level", 900))
        FakeCounter.count = 0xFFF0  # wraps during the measurement
        steps = [0]

        class PulsingTime:
            ticks_ms = time.ticks_ms
            ticks_diff = time.ticks_diff
            ticks_add = time.ticks_add

            @staticmethod
            def sleep_ms(ms):
                FakeCounter.count += 100
                steps[0] += 1
                time.sleep_ms(ms)

        fieldapi.time = PulsingTime
        try:
            fieldapi.measure(1, 0.6)
        finally:
            fieldapi.time = time
        eq(steps[0] >= 2, True, "sampled more than once")
        eq(OUT[-1]["pulses"], 100 * steps[0], "pulses across the wrap")


def test_live_prints_readings_and_done():
    with Node(SEAT_TAP):
        FakeAdc.value = 1000
        fieldapi.live(1, every_ms=400)
        eq(OUT[-1]["done"], True)
        readings = [o for o in OUT if "readings" in o]
        eq(len(readings) >= 2, True, "readings reported")
        eq(readings[0]["readings"][0], {"raw": 1000, "role": "seat"})


def test_factory_reset_removes_config_state_and_secrets():
    with Node(SEAT_TAP) as node:
        FakeHal.nvs["wifi_password"] = b"secret"
        fieldapi.log("x")
        fieldapi.factory_reset()
        eq(OUT[-1]["removed"], ["/config.json", "/kinsight"])
        eq(OUT[-1]["secrets"], ["key", "wifi_password"], "erased from NVS")
        eq(FakeHal.nvs, {}, "NVS")
        eq(sorted(os.listdir(node.root)), ["boards", "lib"])
        fieldapi.factory_reset()
        eq((OUT[-1]["removed"], OUT[-1]["secrets"]), ([], []), "already blank")


def test_status_names_the_secrets_never_their_values():
    with Node(SEAT_TAP):
        FakeHal.nvs["wifi_password"] = b"wifi-secret"
        fieldapi.status()
        eq(OUT[-1]["secrets"], ["key", "wifi_password"])
        text = json.dumps(OUT[-1])
        for secret in (KEY.hex(), "wifi-secret"):
            if secret in text:
                raise AssertionError("status carries a secret: %s" % text)


def test_status_names_a_missing_key():
    with Node(SEAT_TAP):
        del FakeHal.nvs["key"]
        fieldapi.status()
        eq(OUT[-1]["config_error"],
           "key: not provisioned (no key in NVS): run kinsight-field provision")
        eq(OUT[-1]["secrets"], [])


def test_check_and_install_with_the_secrets_sent():
    with Node(SEAT_TAP) as node:
        FakeHal.nvs = {"mqtt_password": b"from an earlier provisioning"}
        cfg = node.config()
        cfg["node_id"] = 8
        cfg["uplink"] = {"type": "udp", "host": "10.0.0.1", "ssid": "home"}
        with open(node.root + "/config.json.tmp", "w") as f:
            json.dump(cfg, f)
        fieldapi.check("/config.json.tmp", {})
        mentions(Exception(OUT[-1]["error"]), "key: not provisioned")
        sent = {"key": KEY.hex(), "wifi_password": b"pass word".hex()}
        fieldapi.check("/config.json.tmp", {"key": "00" * 4})
        mentions(Exception(OUT[-1]["error"]), "key: 4 bytes")
        fieldapi.check("/config.json.tmp", sent)
        eq(OUT[-1]["error"], None)
        eq(FakeHal.nvs, {"mqtt_password": b"from an earlier provisioning"}, "checked only")
        fieldapi.install("/config.json.tmp", sent)
        eq((OUT[-1]["error"], OUT[-1]["secrets"]), (None, ["key", "wifi_password"]))
        eq(FakeHal.nvs, {"key": KEY, "wifi_password": b"pass word"}, "NVS, nothing stale")
        eq(node.config()["node_id"], 8, "config.json in place")
        eq(sorted(os.listdir(node.root)), ["boards", "config.json", "lib"])
        fieldapi.status()
        eq(OUT[-1]["config_error"], None)
