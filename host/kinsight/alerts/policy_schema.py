"""The policy file's shape, as a JSON Schema, and what is wrong with a file that breaks it.

``check_policy`` validates a parsed policy with ``jsonschema`` and raises a
``ConfigError`` naming the first key that is wrong (``residents["flat-12"].circle[0]
.role``) and how. Numbers must be finite: JSON's grammar has no NaN or Infinity,
and a NaN throttle or sensitivity compares false with everything, so it would
silently hold back every alert it touches. ``parse_policy_json`` reads the text
refusing the ``NaN``/``Infinity`` literals and overflowing numbers that Python's
``json`` would otherwise let through.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any, cast

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.validators import extend

from ..errors import ConfigError

ROLES = ("carer", "family", "practitioner")
# Every condition an alert can be about (the learning engine's and the real-time rules');
# the router's BASE_SCORE has one score for each, and a test holds the two together.
CONDITIONS = ("dehydration", "uti", "mobility", "sleep", "inactivity", "prolonged_sitting",
              "bad_day", "device", "prolonged_toilet", "prolonged_stairs", "not_up",
              "silent_home", "out_overnight", "no_water", "night_wandering")
SEVERITIES = ("urgent", "digest")
SMTP_TLS = ("starttls", "implicit", "none")
MAX_HOURS = 366 * 24  # a throttle or follow-up of more than a year is a typo
MAX_SENSITIVITY = 100.0

_HHMM = {"type": "string", "pattern": r"^([01]?[0-9]|2[0-3]):[0-5]?[0-9]$",
         "description": "a time HH:MM (00:00 to 23:59)"}
_DATE = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
         "description": "a date YYYY-MM-DD"}
_HOURS = {"type": "number", "minimum": 0, "maximum": MAX_HOURS}
_CONDITION = {"enum": list(CONDITIONS)}
_SHARED = {"enum": [*CONDITIONS, *SEVERITIES, "all"]}
_SHARED_LIST = {"oneOf": [_SHARED, {"type": "array", "items": _SHARED}]}
_SECRET = {"type": "string", "minLength": 16, "maxLength": 256}
_NAME = {"type": "string", "minLength": 1, "maxLength": 100}

_MEMBER = {
    "type": "object",
    "required": ["name", "role"],
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "role": {"enum": list(ROLES)},
        "webhook": {"type": "string", "pattern": r"^https?://[^\s]+$",
                    "description": "an http:// or https:// URL", "maxLength": 2000},
        "webhook_secret": _SECRET,
        "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$",
                  "description": "an e-mail address", "maxLength": 254},
        "receives": _SHARED_LIST,
        "urgent_in_quiet_hours": {"type": "boolean"},
        "known_as": _NAME,
    },
}

_SMTP = {
    "type": "object",
    "required": ["host", "sender"],
    "additionalProperties": False,
    "properties": {
        "host": {"type": "string", "minLength": 1, "maxLength": 253},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "sender": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$",
                   "description": "an e-mail address", "maxLength": 254},
        "tls": {"enum": list(SMTP_TLS)},
        "ca_file": {"type": "string", "minLength": 1},
    },
}

# One resident's settings, or the organisation's defaults: the same keys.
_SETTINGS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "conditions": {"type": ["array", "null"], "items": _CONDITION},
        "sensitivity": {"type": "object", "propertyNames": _CONDITION,
                        "additionalProperties": {"type": "number", "exclusiveMinimum": 0,
                                                 "maximum": MAX_SENSITIVITY}},
        "quiet_hours": {"type": ["object", "null"], "additionalProperties": False,
                        "properties": {"start": _HHMM, "end": _HHMM},
                        "dependentRequired": {"start": ["end"], "end": ["start"]}},
        "throttle_hours": _HOURS,
        "follow_up_hours": {**_HOURS, "type": ["number", "null"]},
        "digest_time": _HHMM,
        "escalation_minutes": {"type": ["number", "null"], "minimum": 0,
                               "maximum": MAX_HOURS * 60},
        "circle": {"type": "array", "items": _MEMBER, "maxItems": 100},
        "consent": {"type": "object", "propertyNames": {"enum": list(ROLES)},
                    "additionalProperties": _SHARED_LIST},
        "holidays": {"type": "array", "maxItems": 1000, "items": {
            "type": "object", "required": ["from", "to"], "additionalProperties": False,
            "properties": {"from": _DATE, "to": _DATE}}},
        "snooze": {"type": "object", "propertyNames": _CONDITION,
                   "additionalProperties": _DATE},
        "smtp": _SMTP,
        "webhook_secret": _SECRET,
        # Where the care team's app is served: messages carry a signed link to the alert.
        "name": _NAME,
        "team": _NAME,
        "home_assistant": {"type": "boolean"},
        "app_url": {"type": "string", "pattern": r"^https?://[^\s/]+(/[^\s]*)?$",
                    "maxLength": 500},
    },
}

POLICY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "organisation": _SETTINGS,
        "residents": {"type": "object", "propertyNames": {"minLength": 1, "maxLength": 100},
                      "additionalProperties": _SETTINGS},
    },
}


def _finite_number(checker: Any, value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and (isinstance(value, int) or math.isfinite(value)))


_TYPES = Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number)
_VALIDATOR = extend(Draft202012Validator, type_checker=_TYPES)(POLICY_SCHEMA)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TYPE_WORDS = {"number": "a number", "integer": "a whole number", "string": "text",
               "object": "an object", "array": "a list", "boolean": "true or false",
               "null": "null"}


def where(path: Iterable[Any]) -> str:
    """A key's place in the file, as one would write it in Python or JavaScript."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "the policy"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    for name, types in (("a number", (int, float)), ("text", str), ("an object", dict),
                        ("a list", list), ("null", type(None))):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float)) else _json_type(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _what(e: ValidationError) -> str:
    v, inst, arg = str(e.validator), cast(Any, e.instance), cast(Any, e.validator_value)
    schema = cast(dict[str, Any], e.schema)
    if v == "type":
        if isinstance(inst, float) and not math.isfinite(inst):
            return "must be a finite number"
        wanted = " or ".join(_TYPE_WORDS[t] for t in ([arg] if isinstance(arg, str) else arg))
        return f"must be {wanted}, not {_json_type(inst)}"
    if v == "enum":
        return f"{_show(inst)} is not one of {', '.join(map(str, arg))}"
    if v == "oneOf":
        return f"{_show(inst)} must be one of {', '.join(schema['oneOf'][0]['enum'])} " \
               "or a list of them"
    if v == "additionalProperties":
        extra = sorted(set(inst) - set(schema.get("properties", {})))
        known = ", ".join(schema.get("properties", {}))
        return f"unknown key {_show(extra[0])} (known: {known})"
    if v == "required":
        return f"{e.message.split(' is a required')[0]} is missing"
    if v == "dependentRequired":
        return "needs both start and end"
    if v == "pattern":
        return f"{_show(inst)} is not {schema.get('description', 'in the right form')}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": "at least", "exclusiveMinimum": "more than", "maximum": "at most",
                "exclusiveMaximum": "less than"}[v]
        return f"must be {word} {arg:g}, not {_show(inst)}"
    if v in ("minLength", "maxLength"):
        return f"must be {'at least' if v == 'minLength' else 'at most'} {arg} characters"
    if v in ("maxItems", "minItems"):
        return f"must have {'at most' if v == 'maxItems' else 'at least'} {arg} items"
    return e.message  # pragma: no cover - every keyword the schema uses is worded above


def check_policy(raw: Any, source: str = "policy") -> None:
    """Refuse a policy that breaks the schema: ConfigError ``source: key: what``."""
    errors = sorted(_VALIDATOR.iter_errors(raw), key=lambda e: (list(map(str, e.path)),
                                                                 e.validator != "type"))
    if not errors:
        return
    first = errors[0]
    while first.validator == "oneOf" and isinstance(first.instance, list) and first.context:
        # A list that breaks "one name or a list of names": name the item that is wrong.
        deeper = [c for c in first.context if len(c.absolute_path) > len(first.absolute_path)]
        if not deeper:
            break
        first = deeper[0]
    raise ConfigError(f"{source}: {where(first.absolute_path)}: {_what(first)}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (write a finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def parse_policy_json(text: str) -> Any:
    """The policy file's JSON; ValueError for NaN, Infinity, overflowing numbers or
    nesting too deep to read."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None
