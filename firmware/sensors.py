"""The sensors config.json names, built on this board's pins through hal.

Kept apart from the runtime loop so the field tools can build and read the
sensors without loading the uplink and the queue.
"""

from micropython import const

import hal
from kinsight_wire import (
    ROLE_BED,
    ROLE_HEART_RATE,
    ROLE_SEAT,
    ROLE_STAIRS,
    ROLE_TAP,
    ROLE_TOILET,
)
from node import Sensor

_PRESSURE_SAMPLE_MS = const(100)
_FLOW_SAMPLE_MS = const(250)
_PRESENCE_SAMPLE_MS = const(200)
_HEART_RATE_POLL_MS = const(250)  # notifications come once a second
_LD2410_BAUD = const(256000)
_ROLE_CODES = {"seat": ROLE_SEAT, "bed": ROLE_BED, "tap": ROLE_TAP, "toilet": ROLE_TOILET,
               "stairs": ROLE_STAIRS, "heart_rate": ROLE_HEART_RATE}


def build_sensors(roles, sink):
    """Sensor objects for the checked roles of config.json, on this board's pins."""
    sensors = []
    for r in roles:
        role = _ROLE_CODES[r["role"]]
        kind = r["sensor"]
        if kind == "ble":
            sensors.append(_wearable(r, role, sink))
        elif kind in ("fsr", "hx711"):
            from pressure import PressureExtractor, defaults_for

            if kind == "fsr":
                read = hal.adc(r["pin"]).read
            else:
                from hx711 import HX711

                read = HX711(hal.pin_out(r["sck"]), hal.pin_in(r["dout"])).read
            options = defaults_for(role, kind)
            if "on_delta" in r:
                options["on_delta"] = r["on_delta"]
            if "off_delta" in r:
                options["off_delta"] = r["off_delta"]
            if "too_long_min" in r:
                options["too_long_ms"] = r["too_long_min"] * 60000
            extractor = PressureExtractor(sink, role=role, sample_ms=_PRESSURE_SAMPLE_MS,
                                          **options)
            sensors.append(Sensor(role, extractor, read, _PRESSURE_SAMPLE_MS))
        elif kind == "flow":
            from flow import FlowExtractor

            counter = hal.pulse_counter(r["pin"])
            options = {"counter_bits": 16}
            if "pulses_per_l" in r:
                options["pulses_per_l"] = r["pulses_per_l"]
            if "leak_min" in r:
                options["leak_ms"] = r["leak_min"] * 60000
            extractor = FlowExtractor(sink, sample_ms=_FLOW_SAMPLE_MS, **options)
            sensors.append(Sensor(role, extractor, counter.value, _FLOW_SAMPLE_MS))
        else:
            from presence import PirSource, PresenceExtractor, RadarSource, TofSource

            options = {}
            if "prolonged_min" in r:
                options["prolonged_ms"] = r["prolonged_min"] * 60000
            extractor = PresenceExtractor(sink, role=role, **options)
            if kind == "pir":
                source = PirSource(hal.pin_in(r["pin"]))
            elif kind == "ld2410":
                from ld2410 import LD2410Parser

                u = r["uart"]
                source = RadarSource(hal.uart(u["id"], u["tx"], u["rx"], _LD2410_BAUD),
                                     LD2410Parser())
            else:
                from vl53l0x import VL53L0X

                b = r["i2c"]
                source = TofSource(VL53L0X(hal.i2c(b["id"], b["scl"], b["sda"])),
                                   near_mm=r.get("range_mm", 800))
            sensors.append(Sensor(role, extractor, source.read, _PRESENCE_SAMPLE_MS))
            if "flush_pin" in r:
                _watch_flush(hal.pin_in(r["flush_pin"], pull_up=True), extractor)
    _moving_from_stairs(sensors)
    return sensors


def _wearable(r, role, sink):
    from heartrate import HeartRateExtractor
    from wearable import WearableSource

    options = {}
    for name in ("high_bpm", "low_bpm"):
        if name in r:
            options[name] = r[name]
    if "sustain_min" in r:
        options["sustain_ms"] = r["sustain_min"] * 60000
    source = WearableSource(hal.heart_rate_link(r.get("address"), r.get("name")))
    extractor = HeartRateExtractor(sink, role=role, source=source, **options)
    return Sensor(role, extractor, source.read, _HEART_RATE_POLL_MS, task=source.run)


def _moving_from_stairs(sensors):
    """Someone on the stairs is no resting heart: the stairs tell the wearable's extractor."""
    stairs = [s.extractor for s in sensors if s.role == ROLE_STAIRS]
    if not stairs:
        return
    for s in sensors:
        if s.role == ROLE_HEART_RATE:
            s.extractor.mover = stairs[0].busy


def _watch_flush(pin, extractor):
    """A flush contact closing is noted from the loop, not in an interrupt handler."""
    state = {"last": pin.value()}

    def poll(now_ms):
        value = pin.value()
        if value != state["last"]:
            state["last"] = value
            if value == 0:
                extractor.flush(now_ms)

    extractor.poll_flush = poll


