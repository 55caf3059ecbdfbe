"""The one module that touches the ESP32: everything else is pure code.

Keeping ``machine`` (and later ``network``, ``esp32``, ``espnow``) here lets
the rest of the firmware run unchanged under the unix port in the tests.
"""

import gc
import time

import machine

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
