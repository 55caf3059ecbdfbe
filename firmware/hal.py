"""The one module that touches the ESP32: everything else is pure code.

Keeping ``machine`` (and ``network``, ``esp32``, ``espnow``) here lets
the rest of the firmware run unchanged under the unix port in the tests.
"""

import gc
import time

import machine
from micropython import const

from kinsight_wire import (
    RESET_DEEP_SLEEP,
    RESET_HARD,
    RESET_POWER_ON,
    RESET_SOFT,
    RESET_UNKNOWN,
    RESET_WATCHDOG,
)

# time.time() on the ESP32 port counts from 2000-01-01, the unix port's from
# 1970-01-01; the wire carries seconds since 1970.
_EPOCH_2000_S = 946684800
_EPOCH_OFFSET_S = _EPOCH_2000_S if time.gmtime(0)[0] == 2000 else 0

# machine.reset_cause() folds brownouts into PWRON_RESET and panics into
# SOFT_RESET on the ESP32, so RESET_BROWNOUT needs esp32-specific code later.
_RESET_CAUSES = (
    (machine.PWRON_RESET, RESET_POWER_ON),
    (machine.HARD_RESET, RESET_HARD),
    (machine.WDT_RESET, RESET_WATCHDOG),
    (machine.DEEPSLEEP_RESET, RESET_DEEP_SLEEP),
    (machine.SOFT_RESET, RESET_SOFT),
)


def unix_time():
    """Seconds since 1970-01-01 UTC by the node's clock."""
    return int(time.time()) + _EPOCH_OFFSET_S


def set_time(unix_s):
    """Sets the RTC from seconds since 1970-01-01 UTC (an ack's ACK_TIME_S)."""
    year, month, day, hour, minute, second, weekday, _yearday = time.gmtime(
        unix_s - _EPOCH_OFFSET_S
    )[:8]
    machine.RTC().datetime((year, month, day, weekday, hour, minute, second, 0))


def reset_cause():
    """Why the node last started, as a kinsight_wire RESET_* number."""
    cause = machine.reset_cause()
    for machine_cause, wire_cause in _RESET_CAUSES:
        if cause == machine_cause:
            return wire_cause
    return RESET_UNKNOWN


def unique_id():
    """The chip's factory id (the Wi-Fi MAC on the ESP32), as bytes."""
    return machine.unique_id()


def free_heap():
    return gc.mem_free()


# --- secrets: the node's key and passwords, in NVS rather than the filesystem ------------------

# NVS is its own flash partition: `mpremote fs cat` and file listings never reach it,
# and with flash encryption on, NVS encryption keeps it unreadable off the chip too.
_NVS_NAMESPACE = "kinsight"
# A 64-byte key, or a 64-character password in UTF-8 (up to 4 bytes a character).
_SECRET_MAX = const(256)


def _nvs():
    import esp32

    return esp32.NVS(_NVS_NAMESPACE)


def secret_get(name):
    """The secret's bytes, or None when NVS holds none by that name."""
    buf = bytearray(_SECRET_MAX)
    try:
        n = _nvs().get_blob(name, buf)
    except OSError:  # ESP_ERR_NVS_NOT_FOUND, or a blob too long to be one of ours
        return None
    return bytes(buf[:n])


def secret_set(name, value):
    """Stores the secret and commits it; an empty value erases it (nothing to keep)."""
    if not value:
        secret_erase(name)
        return
    nvs = _nvs()
    nvs.set_blob(name, value)
    nvs.commit()


def secret_erase(name):
    """Forgets the secret; True when there was one."""
    nvs = _nvs()
    try:
        nvs.erase_key(name)
    except OSError:  # ESP_ERR_NVS_NOT_FOUND: already gone
        return False
    nvs.commit()
    return True


# --- sensors and buses: objects the drivers and extractors are given ---------------------------


def adc(pin):
    """An ADC1 channel with the full 0..3.3 V range; ``read()`` gives 0..4095."""
    channel = machine.ADC(machine.Pin(pin), atten=machine.ADC.ATTN_11DB)
    channel.width(machine.ADC.WIDTH_12BIT)
    return channel


def pin_in(pin, pull_up=False):
    if pull_up:
        return machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
    return machine.Pin(pin, machine.Pin.IN)


def pin_out(pin, value=0):
    return machine.Pin(pin, machine.Pin.OUT, value=value)


class IrqCounter:
    """Counts rising edges in an interrupt handler, for boards without a pulse-counter unit.

    The handler only adds one to a small int that wraps at 2**16, so it never
    allocates (MicroPython forbids allocation in hard interrupt handlers).
    """

    def __init__(self, pin):
        self.count = 0
        self._pin = machine.Pin(pin, machine.Pin.IN)
        self._pin.irq(self._edge, machine.Pin.IRQ_RISING, hard=True)

    def _edge(self, _pin):
        self.count = (self.count + 1) & 0xFFFF

    def value(self):
        return self.count


def pulse_counter(pin, unit=0):
    """A counter of rising edges on pin, read with ``value()``: the ESP32's PCNT unit
    where the board has one, else an interrupt counter (16-bit, wrapping)."""
    if hasattr(machine, "Counter"):
        return machine.Counter(unit, machine.Pin(pin, machine.Pin.IN), edge=machine.Counter.RISING)
    return IrqCounter(pin)


def uart(bus_id, tx, rx, baudrate):
    return machine.UART(bus_id, baudrate=baudrate, tx=tx, rx=rx, rxbuf=512)


def i2c(bus_id, scl, sda, freq=400000):
    return machine.I2C(bus_id, scl=machine.Pin(scl), sda=machine.Pin(sda), freq=freq)


def watchdog(timeout_ms):
    """The hardware watchdog: once started it resets the node unless fed in time."""
    return machine.WDT(timeout=timeout_ms)


def reset():
    machine.reset()


# --- radio ------------------------------------------------------------------------------------


def wlan_connect(ssid, password):
    """Starts joining the Wi-Fi network; returns the station interface (check isconnected())."""
    import network

    wlan = network.WLAN(network.WLAN.IF_STA)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(ssid, password)
    return wlan


def rssi_dbm(wlan):
    try:
        return wlan.status("rssi")
    except (OSError, ValueError):
        return None


def espnow(channel):
    """ESP-NOW with the Wi-Fi station up on the gateway's channel, not joined to any network."""
    import espnow as espnow_module
    import network

    wlan = network.WLAN(network.WLAN.IF_STA)
    wlan.active(True)
    wlan.config(channel=channel)
    radio = espnow_module.ESPNow()
    radio.active(True)
    return radio


def largest_free_block():
    """The largest free block of the IDF data heap, where MicroPython grows its own heap."""
    import esp32

    blocks = esp32.idf_heap_info(esp32.HEAP_DATA)
    return max((b[2] for b in blocks), default=0)


# --- Bluetooth: a wearable's Heart Rate service, through micropython-lib's aioble -------------

_HR_SERVICE = const(0x180D)
_HR_MEASUREMENT = const(0x2A37)
_SCAN_MS = const(5000)
_CONNECT_MS = const(5000)
_SILENT_MS = const(10000)  # no notification for this long: the link is gone


class HeartRateLink:
    """The wearable named at provisioning: by address ("aa:bb:cc:dd:ee:ff", found
    without a scan) or by the name it advertises. ``session(push)`` connects,
    subscribes to the Heart Rate Measurement and calls push(data) per notification
    until the link is lost; wearable.WearableSource keeps sessions going."""

    def __init__(self, address=None, name=None):
        import aioble  # pyright: ignore[reportMissingImports]  # micropython-lib, with mip
        import bluetooth

        self._aioble = aioble
        self._service = bluetooth.UUID(_HR_SERVICE)
        self._measurement = bluetooth.UUID(_HR_MEASUREMENT)
        self._address = address
        self._name = name
        self.device = None

    async def _find(self):
        aioble = self._aioble
        if self._address:
            return aioble.Device(aioble.ADDR_PUBLIC, self._address)
        async with aioble.scan(_SCAN_MS, interval_us=30000, window_us=30000,
                               active=True) as scanner:
            async for result in scanner:
                if result.name() == self._name and self._service in result.services():
                    return result.device
        return None

    async def session(self, push):
        aioble = self._aioble
        device = await self._find()
        if device is None:
            raise OSError(116)  # ETIMEDOUT: nothing by that name answered
        self.device = device
        connection = None
        try:
            connection = await device.connect(timeout_ms=_CONNECT_MS)
        except aioble.DeviceDisconnectedError:
            pass
        if connection is None:
            raise OSError(104)  # ECONNRESET
        refused = False
        async with connection:
            try:
                service = await connection.service(self._service)
                if service is None:
                    raise OSError(2)  # ENOENT: no Heart Rate service on this device
                char = await service.characteristic(self._measurement)
                if char is None:
                    raise OSError(2)
                await char.subscribe(notify=True)
                while connection.is_connected():
                    push(await char.notified(timeout_ms=_SILENT_MS))
            except aioble.DeviceDisconnectedError:
                return
            except aioble.GattError:  # refused a read or the subscription
                refused = True
        if refused:
            raise OSError(5)  # EIO


def heart_rate_link(address=None, name=None):
    return HeartRateLink(address, name)
