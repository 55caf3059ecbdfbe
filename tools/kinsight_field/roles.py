"""The sensor roles a node takes, as ``provision --role`` writes them."""

from __future__ import annotations

from typing import Any

from .link import CommandError

ROLE_SENSORS = {"seat": ("fsr", "hx711"), "bed": ("fsr", "hx711"), "tap": ("flow",),
                "toilet": ("pir", "ld2410", "vl53l0x"), "stairs": ("pir", "ld2410", "vl53l0x"),
                "heart_rate": ("ble",)}
# Settings given as text: the wearable's advertised name or its address.
TEXT_SETTINGS = ("name", "address")


def whole(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise CommandError(f"{what}: {text!r} is not a whole number") from None


def parse_role(spec: str) -> dict[str, Any]:
    """ROLE:SENSOR[:name=value,...], e.g. seat:fsr:pin=34, toilet:ld2410:uart=2/17/16 or
    heart_rate:ble:name=Polar H10 1A2B3C4D (a wearable's name or address is text; a
    name with a comma cannot be given here)."""
    parts = spec.split(":", 2)
    if len(parts) < 2:
        raise CommandError(f"--role {spec}: write it as ROLE:SENSOR[:setting=value,...], "
                           "e.g. seat:fsr:pin=34")
    role, sensor = parts[0], parts[1]
    if role not in ROLE_SENSORS:
        raise CommandError(f"--role {spec}: {role!r} is not one of {', '.join(ROLE_SENSORS)}")
    if sensor not in ROLE_SENSORS[role]:
        raise CommandError(f"--role {spec}: a {role} uses {' or '.join(ROLE_SENSORS[role])}, "
                           f"not {sensor!r}")
    out: dict[str, Any] = {"role": role, "sensor": sensor}
    for item in parts[2].split(",") if len(parts) == 3 and parts[2] else []:
        name, eq, value = item.partition("=")
        if not eq:
            raise CommandError(f"--role {spec}: {item!r} should be name=value")
        if name in TEXT_SETTINGS:
            if not value:
                raise CommandError(f"--role {spec}: {name}= needs the wearable's {name}")
            out[name] = value
        elif name in ("uart", "i2c"):
            pins = value.split("/")
            if len(pins) != 3:
                raise CommandError(f"--role {spec}: {name}={value} should be ID/"
                                   + ("TX/RX" if name == "uart" else "SCL/SDA"))
            keys = ("id", "tx", "rx") if name == "uart" else ("id", "scl", "sda")
            out[name] = {k: whole(v, f"--role {spec} {name}")
                         for k, v in zip(keys, pins, strict=True)}
        else:
            out[name] = whole(value, f"--role {spec} {name}")
    # Calibration defaults, until `kinsight-field calibrate` measures them.
    if sensor == "flow":
        out.setdefault("pulses_per_l", 450)
    if sensor == "vl53l0x":
        out.setdefault("range_mm", 800)
    return out
