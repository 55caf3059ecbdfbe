"""The virtual node's hal: firmware/hal.py's functions, reading a simulated world.

kinsight_field.virtual_node stages this module with the frozen firmware, ahead of
any hal.py in /lib. Sensors read the "virtual world" the bridge keeps in the
file /.frozen/world (lines "name value"), rewritten whenever a trace or a
control command changes it:

- ``seat``: the FSR's ADC counts (300 empty), read by ``adc(pin).read()``;
  ``adc<pin>`` overrides it for one pin.
- ``presence``: 0 or 1, read by ``pin_in(pin).value()`` (a PIR); ``pin<pin>``
  overrides it for one pin. Pull-up inputs (flush contacts) read 1.
- ``pulses``: the flow meter's cumulative pulse count, read by
  ``pulse_counter(pin).value()`` (16 bits, wrapping); ``count<pin>`` overrides it.
- ``hr``: a wearable's heart rate in bpm, sent once a second by the fake BLE radio
  of ``heart_rate_link()`` (absent: no wearable in range, scans find nothing and a
  connected link is lost); ``hr_contact`` 0: the strap is off the skin (it says
  so, with rate 0).

Secrets (``secret_get``/``secret_set``/``secret_erase``, the ESP32's NVS on a board)
live in the host file KINSIGHT_VNODE_NVS, beside the flash folder and not in it: no
path on the node's filesystem reaches them, so ``fs cat`` and ``fs ls`` cannot show
them, and like NVS they outlast reboots and power cuts. Without it (a node measured
on its own, tools/boot_node.py) there are none, and none can be stored.
"""

# pyright: reportAttributeAccessIssue=false
# (MicroPython: os.mount, os.VfsPosix, sys.print_exception, gc.mem_free)

import gc
import os
import time

from kinsight_wire import RESET_HARD, RESET_POWER_ON, RESET_SOFT

_WORLD = "/.frozen/world"
_time_offset_s = 0


def _world():
    world = {}
    try:
        with open(_WORLD) as f:
            text = f.read()
    except OSError:
        return world
    for line in text.split("\n"):
        parts = line.split()
        if len(parts) == 2:
            world[parts[0]] = int(parts[1])
    return world


def _value(key, fallback, default):
    world = _world()
    if key in world:
        return world[key]
    return world.get(fallback, default)


def unix_time():
    return int(time.time()) + _time_offset_s


def set_time(unix_s):
    global _time_offset_s
    _time_offset_s = unix_s - int(time.time())


def reset_cause():
    boot = os.getenv("KINSIGHT_VNODE_BOOT")
    return RESET_SOFT if boot == "soft" else RESET_HARD if boot == "hard" else RESET_POWER_ON


def unique_id():
    uid = os.getenv("KINSIGHT_VNODE_UID") or "000000000000"
    return bytes(int(uid[i : i + 2], 16) for i in range(0, 12, 2))


def free_heap():
    return gc.mem_free()


_NVS = os.getenv("KINSIGHT_VNODE_NVS")


def _nvs(values=None):
    """The NVS file's {name: hex}; given values, writes them instead (a whole new file
    renamed over the old: a power cut leaves one or the other)."""
    import json

    host = os.VfsPosix()
    if values is None:
        try:
            with host.open(_NVS, "r") as f:
                return json.loads(f.read())
        except (OSError, ValueError, TypeError):
            return {}
    if not _NVS:
        raise OSError(30)  # EROFS: this node has no NVS
    with host.open(_NVS + ".tmp", "w") as f:
        f.write(json.dumps(values))
    host.rename(_NVS + ".tmp", _NVS)
    return values


def secret_get(name):
    value = _nvs().get(name)
    return None if value is None else bytes.fromhex(value)


def secret_set(name, value):
    values = _nvs()
    if value:
        values[name] = bytes(value).hex()
    else:
        values.pop(name, None)
    _nvs(values)


def secret_erase(name):
    values = _nvs()
    if values.pop(name, None) is None:
        return False
    _nvs(values)
    return True


class Adc:
    def __init__(self, pin):
        self.pin = pin

    def read(self):
        value = _value("adc%d" % self.pin, "seat", 300)
        return 0 if value < 0 else (4095 if value > 4095 else value)

    def read_u16(self):
        return self.read() * 65535 // 4095

    def width(self, _bits):
        pass

    def atten(self, _atten):
        pass


def adc(pin):
    return Adc(pin)


class Pin:
    def __init__(self, pin, out=False, value=0, pull_up=False):
        self.pin = pin
        self.out = out
        self.pull_up = pull_up
        self._value = value

    def value(self, v=None):
        if v is not None:
            self._value = 1 if v else 0
            return None
        if self.out:
            return self._value
        if self.pull_up:
            return _value("pin%d" % self.pin, "", 1)
        return _value("pin%d" % self.pin, "presence", 0)

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def irq(self, *args, **kwargs):
        pass


def pin_in(pin, pull_up=False):
    return Pin(pin, pull_up=pull_up)


def pin_out(pin, value=0):
    return Pin(pin, out=True, value=value)


class Counter:
    def __init__(self, pin):
        self.pin = pin

    def value(self):
        return _value("count%d" % self.pin, "pulses", 0) & 0xFFFF


def pulse_counter(pin, unit=0):
    return Counter(pin)


class Uart:
    """A UART nothing is wired to (no LD2410 radar frames yet)."""

    def any(self):
        return 0

    def read(self, n=-1):
        return None

    def readinto(self, buf, n=-1):
        return None

    def write(self, data):
        return len(data)


def uart(bus_id, tx, rx, baudrate):
    return Uart()


class I2c:
    """An I2C bus with no device on it: every transfer fails as with nothing wired."""

    def scan(self):
        return []

    def _nodev(self, *args, **kwargs):
        raise OSError(19)  # ENODEV

    readfrom_mem = writeto_mem = readfrom = writeto = readfrom_mem_into = _nodev


def i2c(bus_id, scl, sda, freq=400000):
    return I2c()


class Watchdog:
    def feed(self):
        pass


def watchdog(timeout_ms):
    return Watchdog()


def reset():
    """machine.reset(): a hard reset (the bridge restarts MicroPython, and runs main.py
    as a board does, whatever the REPL was in)."""
    raise SystemExit("hard reset")


class Wlan:
    def isconnected(self):
        return True

    def status(self, param=None):
        return -60 if param == "rssi" else 1010

    def active(self, *args):
        return True

    def config(self, *args, **kwargs):
        return None

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")


def wlan_connect(ssid, password):
    return Wlan()


def rssi_dbm(wlan):
    try:
        return wlan.status("rssi")
    except (OSError, ValueError):
        return None


class EspNow:
    """ESP-NOW with no peer in range: sends go nowhere, nothing arrives."""

    def active(self, *args):
        return True

    def add_peer(self, *args, **kwargs):
        pass

    def send(self, *args, **kwargs):
        return True

    def recv(self, timeout_ms=None):
        return (None, None)

    def irecv(self, timeout_ms=None):
        return (None, None)

    def any(self):
        return False


def espnow(channel):
    return EspNow()


def largest_free_block():
    return gc.mem_free()


class HeartRateLink:
    """firmware/hal.py's Heart Rate link, over a fake radio playing the world's ``hr``."""

    def __init__(self, address=None, name=None):
        self.address = address
        self.name = name

    async def session(self, push):
        import asyncio

        await asyncio.sleep_ms(1000)  # the scan
        if "hr" not in _world():
            raise OSError(116)  # ETIMEDOUT: nothing answered
        while True:
            world = _world()
            bpm = world.get("hr")
            if bpm is None:
                return  # out of range: the link is lost
            # 0x2A37: contact supported (bit 2) and detected (bit 1), uint8 rate,
            # one RR interval (bit 4) in 1/1024 s.
            if world.get("hr_contact", 1) and bpm > 0:
                rr = 61440 // bpm
                push(bytes((0x16, bpm & 0xFF, rr & 0xFF, rr >> 8)))
            else:
                push(b"\x04\x00")
            await asyncio.sleep_ms(1000)


def heart_rate_link(address=None, name=None):
    return HeartRateLink(address, name)
