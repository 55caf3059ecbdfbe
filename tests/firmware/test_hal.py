"""hal under MicroPython, with stand-ins for the ESP32's machine and time modules.

The unix port has neither the ESP32's reset causes nor its 2000-01-01 epoch,
so hal is imported afresh with fakes in sys.modules, as the ESP32 would show
them. Expected dates come from CPython's datetime, not from hal.
"""

import sys
import time

from kinsight_wire import (
    RESET_DEEP_SLEEP,
    RESET_HARD,
    RESET_POWER_ON,
    RESET_SOFT,
    RESET_UNKNOWN,
    RESET_WATCHDOG,
)
from runner import eq

_EPOCH_2000_S = 946684800  # 2000-01-01T00:00:00Z in unix seconds
_REAL_GMTIME = time.gmtime


class FakeRTC:
    calls = []

    def datetime(self, value):
        FakeRTC.calls.append(value)


class FakePin:
    IN = 1
    IRQ_RISING = 1

    def __init__(self, pin, mode=None):
        self.pin = pin
        self.handler = None

    def irq(self, handler, trigger, hard=False):
        if not hard:
            raise AssertionError("the pulse handler must be a hard interrupt handler")
        self.handler = handler


class FakeMachine:
    Pin = FakePin
    # Numbers unlike the wire's RESET_* (the ESP32's happen to be 1..5 too),
    # so that passing machine's number through unchanged would fail.
    PWRON_RESET = 11
    HARD_RESET = 12
    WDT_RESET = 13
    DEEPSLEEP_RESET = 14
    SOFT_RESET = 15
    cause = 11
    RTC = FakeRTC

    @staticmethod
    def reset_cause():
        return FakeMachine.cause

    @staticmethod
    def unique_id():
        return b"\x24\x0a\xc4\x12\x34\x56"


class Esp32Time:
    """time as the ESP32 port has it: seconds since 2000-01-01."""

    now_s = 0

    @staticmethod
    def time():
        return Esp32Time.now_s

    @staticmethod
    def gmtime(secs=None):
        return _REAL_GMTIME(_EPOCH_2000_S + (secs or 0))


def load_hal(clock):
    saved = {name: sys.modules.get(name) for name in ("machine", "time")}
    sys.modules["machine"] = FakeMachine
    sys.modules["time"] = clock
    sys.modules.pop("hal", None)
    try:
        import hal

        return hal
    finally:
        sys.modules.pop("hal", None)
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def test_unix_time_on_the_esp32_epoch():
    hal = load_hal(Esp32Time)
    Esp32Time.now_s = 1790000000 - _EPOCH_2000_S
    eq(hal.unix_time(), 1790000000, "unix seconds from an ESP32 clock")


def test_unix_time_on_the_unix_port():
    hal = load_hal(time)
    now = int(time.time())
    got = hal.unix_time()
    if not now <= got <= now + 2:
        raise AssertionError("unix_time() %d, time.time() %d" % (got, now))


def test_set_time_writes_the_utc_date():
    hal = load_hal(Esp32Time)
    FakeRTC.calls = []
    hal.set_time(1790000000)
    # 2026-09-21 14:13:20 UTC, a Monday (weekday 0), by CPython's datetime.
    eq(FakeRTC.calls, [(2026, 9, 21, 0, 14, 13, 20, 0)], "RTC.datetime")


def test_reset_cause_maps_to_the_wire():
    hal = load_hal(Esp32Time)
    for cause, want in (
        (11, RESET_POWER_ON),
        (12, RESET_HARD),
        (13, RESET_WATCHDOG),
        (14, RESET_DEEP_SLEEP),
        (15, RESET_SOFT),
        (0, RESET_UNKNOWN),
        (1, RESET_UNKNOWN),
    ):
        FakeMachine.cause = cause
        eq(hal.reset_cause(), want, "machine cause %d" % cause)


def test_unique_id_and_free_heap():
    hal = load_hal(Esp32Time)
    eq(hal.unique_id(), b"\x24\x0a\xc4\x12\x34\x56", "unique_id")
    free = hal.free_heap()
    import gc

    heap = gc.mem_free() + gc.mem_alloc()  # the whole heap this run was given
    if not 0 < free < heap:
        raise AssertionError("free_heap() = %r of a %d-byte heap" % (free, heap))


def test_the_pulse_interrupt_handler_never_allocates():
    """MicroPython raises MemoryError on any allocation while the heap is locked, as it is
    inside a hard interrupt handler on the device."""
    import micropython

    hal = load_hal(Esp32Time)
    counter = hal.IrqCounter(27)
    edge = counter._pin.handler
    micropython.heap_lock()
    try:
        for _ in range(70000):  # past the 16-bit wrap
            edge(counter._pin)
    finally:
        micropython.heap_unlock()
    eq(counter.value(), 70000 & 0xFFFF, "pulses counted, wrapping at 16 bits")


_ESP_ERR_NVS_NOT_FOUND = -4354  # what the ESP32 port's OSError carries
_ESP_ERR_NVS_INVALID_LENGTH = -4364


class FakeNvs:
    """esp32.NVS as ESP-IDF defines it: a handle's writes last only once committed (a
    reset may lose the rest); a missing key and a buffer too small are OSErrors; keys
    have at most 15 characters."""

    flash = {}  # namespace -> {key: bytes}, what survives a reset

    def __init__(self, namespace):
        self.namespace = namespace
        self.pending = dict(FakeNvs.flash.get(namespace, {}))

    @staticmethod
    def _key(key):
        if not isinstance(key, str) or not 0 < len(key) <= 15:
            raise OSError(-4361)  # ESP_ERR_NVS_KEY_TOO_LONG

    def set_blob(self, key, value):
        self._key(key)
        self.pending[key] = bytes(value)

    def get_blob(self, key, buffer):
        self._key(key)
        if key not in self.pending:
            raise OSError(_ESP_ERR_NVS_NOT_FOUND)
        value = self.pending[key]
        if len(value) > len(buffer):
            raise OSError(_ESP_ERR_NVS_INVALID_LENGTH)
        buffer[: len(value)] = value
        return len(value)

    def erase_key(self, key):
        self._key(key)
        if key not in self.pending:
            raise OSError(_ESP_ERR_NVS_NOT_FOUND)
        del self.pending[key]

    def commit(self):
        FakeNvs.flash[self.namespace] = dict(self.pending)


class FakeEsp32:
    NVS = FakeNvs


def with_esp32(fn):
    saved = sys.modules.get("esp32")
    sys.modules["esp32"] = FakeEsp32
    try:
        return fn(load_hal(Esp32Time))
    finally:
        if saved is None:
            sys.modules.pop("esp32", None)
        else:
            sys.modules["esp32"] = saved


def test_secrets_are_committed_to_nvs_and_outlast_a_reset():
    FakeNvs.flash = {}

    def check(hal):
        eq(hal.secret_get("key"), None, "nothing provisioned")
        hal.secret_set("key", bytes(range(32)))
        hal.secret_set("wifi_password", "pässwörd".encode() * 8)  # 80 bytes of UTF-8
        eq(sorted(FakeNvs.flash["kinsight"]), ["key", "wifi_password"], "committed")
        after_reset = load_hal(Esp32Time)
        eq(after_reset.secret_get("key"), bytes(range(32)), "the key")
        eq(after_reset.secret_get("wifi_password"), "pässwörd".encode() * 8, "the password")
        eq(after_reset.secret_get("mqtt_password"), None, "never set")

    with_esp32(check)


def test_erasing_a_secret_and_an_empty_one():
    FakeNvs.flash = {"kinsight": {"key": b"k" * 32, "wifi_password": b"old"}}

    def check(hal):
        eq(hal.secret_erase("key"), True, "erased")
        eq(hal.secret_erase("key"), False, "already gone, no error")
        hal.secret_set("wifi_password", b"")  # an open network: nothing to keep
        eq(FakeNvs.flash["kinsight"], {}, "committed")
        eq((hal.secret_get("key"), hal.secret_get("wifi_password")), (None, None))

    with_esp32(check)
