"""How ``kinsight-field`` says what a node reports: readings with what they count in,
crash records with when and why, the secrets it holds by name only."""

from __future__ import annotations

import time
from typing import Any

# What each sensor's raw reading is, said with it.
_READING_UNITS = {
    "fsr": "ADC counts of 4095 (higher: more weight)",
    "hx711": "load cell counts (signed 24-bit, until calibrated to the bed)",
    "flow": "pulses counted (16-bit, wrapping; pulses_per_l makes litres)",
}


def reading_text(r: dict[str, Any]) -> str:
    if r.get("error"):
        return f"error {r['error']}"
    value, sensor = r.get("value"), r.get("sensor")
    if sensor in ("pir", "ld2410", "vl53l0x"):
        return "someone there" if value else "no one there"
    if sensor == "ble":  # the wearable's link is the running node's, not a one-shot read
        return "a wearable over BLE, read by the running node (see its summaries)"
    unit = _READING_UNITS.get(str(sensor))
    return f"{value} {unit}" if unit else str(value)


def crash_text(c: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(c.get("time_s") or 0)))
    trace = f" (at {c['trace']})" if c.get("trace") else ""
    return f"{when} UTC after a {c.get('reset_cause')} reset: {c.get('what')}{trace}"


_SECRET_NAMES = {"key": "key", "wifi_password": "Wi-Fi password",
                 "mqtt_password": "MQTT password"}


def secrets_text(names: object, where: str) -> str:
    """Which secrets the node holds (or lost), e.g. "key, Wi-Fi password in NVS"."""
    if not isinstance(names, list):
        return "-"
    if not names:
        return f"none {where}"
    return ", ".join(_SECRET_NAMES.get(str(n), str(n)) for n in names) + f" {where}"
