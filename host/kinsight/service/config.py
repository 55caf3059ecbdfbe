"""The service's configuration file (TOML), checked whole before anything starts.

Every key is optional in the file (``--db`` and the others on the command line
override it); an unknown key, a wrong type or a value out of range is a
``ConfigError`` that names the key and says what it must be:

    db = "/var/lib/kinsight/kinsight.db"
    udp = "0.0.0.0:5683"
    serial = "/dev/ttyUSB0"
    baudrate = 115200
    mqtt = "mqtt://ingest:PASSWORD@127.0.0.1:1883"   # frames from a broker (mqtts:// for TLS)
    mqtt_ca_file = "/etc/kinsight/broker-ca.pem"       # with mqtts://, a private authority
    worker = "host-a"          # one of several serve sharing the store (leases)
    home_assistant = true      # with mqtt: opted-in residents' status as HA entities
    http = "127.0.0.1:8080"
    policy = "/etc/kinsight/policy.json"
    morning = "07:30"          # each resident's morning analysis, their local time
    tick_s = 60                # how often the real-time rules look at who is due
    alert_log = "/var/log/kinsight/alerts.jsonl"
    log_format = "json"        # or "text"
    stale_after_s = 14400      # no frame for this long: /healthz says degraded

>>> settings_from({"morning": "06:45"})["morning_min"]
405
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jsonschema

from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # pyright: ignore[reportMissingImports]

_HOSTPORT = r"^\[?[^\s\]]*\]?:[0-9]{1,5}$"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "db": {"type": "string", "minLength": 1},
        "udp": {"type": "string", "pattern": _HOSTPORT},
        "serial": {"type": "string", "minLength": 1},
        "baudrate": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "mqtt": {"type": "string", "pattern": r"^mqtts?://[^\s]+$",
                 "description": "mqtt://[USER[:PASSWORD]@]HOST[:PORT][?group=NAME]"},
        "mqtt_ca_file": {"type": "string", "minLength": 1},
        "worker": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
        "home_assistant": {"type": "boolean"},
        "http": {"type": "string", "pattern": _HOSTPORT},
        "policy": {"type": "string", "minLength": 1},
        "morning": {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"},
        "tick_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        "alert_log": {"type": "string", "minLength": 1},
        "log_format": {"enum": ["text", "json"]},
        "stale_after_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 30 * 86400},
    },
}


def load(path: str | Path) -> dict[str, Any]:
    """The file's settings, checked (see ``settings_from``)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {path}: "
                          f"{exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return settings_from(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def settings_from(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` checked against ``SCHEMA``; "morning" becomes "morning_min"."""
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(raw),
                    key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path)
        if e.validator == "additionalProperties":
            known = ", ".join(sorted(SCHEMA["properties"]))
            raise ConfigError(f"{e.message} (the keys are: {known})")
        raise ConfigError(f"{where}: {_said(e)}")
    out = dict(raw)
    if "morning" in out:
        hh, mm = str(out.pop("morning")).split(":")
        out["morning_min"] = int(hh) * 60 + int(mm)
    return out


def _said(e: jsonschema.ValidationError) -> str:
    if e.validator == "pattern":
        what = {"morning": "a local time as HH:MM, e.g. 07:30"}.get(
            str(e.absolute_path[-1]) if e.absolute_path else "", "HOST:PORT, e.g. 0.0.0.0:5683")
        return f"{e.instance!r} is not {what}"
    return e.message
