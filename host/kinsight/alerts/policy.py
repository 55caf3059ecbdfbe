"""The alert policy: a care circle, consent, quiet hours, throttle, snoozes and holidays.

``Policy.load`` reads the policy file (format in docs/alerts.md): organisation
defaults and per-resident overrides, checked when loaded so that a bad file is
refused with a ``ConfigError`` naming what is wrong. ``Policy.for_resident`` gives
the settings that apply to one resident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ..errors import ConfigError

ROLES = ("carer", "family", "practitioner")


@dataclass(frozen=True)
class Member:
    name: str
    role: str
    webhook: str | None = None
    email: str | None = None
    receives: tuple[str, ...] = ("urgent", "digest")
    urgent_in_quiet_hours: bool = False

    def channels(self) -> list[tuple[str, str]]:
        return [(c, t) for c, t in (("webhook", self.webhook), ("email", self.email)) if t]

    def wants(self, condition: str, severity: str) -> bool:
        r = self.receives
        return "all" in r or condition in r or severity in r


@dataclass(frozen=True)
class ResidentPolicy:
    """The organisation's settings with the resident's own over them."""

    conditions: tuple[str, ...] | None  # None: all
    sensitivity: dict[str, float]
    quiet_hours: tuple[int, int] | None  # minutes after midnight, start and end
    throttle_hours: float
    follow_up_hours: float | None  # None: no follow-ups
    digest_minute: int
    escalation_minutes: float | None
    circle: tuple[Member, ...]
    consent: dict[str, tuple[str, ...]]  # role -> conditions, "urgent", "digest" or "all"
    holidays: tuple[tuple[date, date], ...]
    snooze: dict[str, date]  # condition -> until (inclusive)

    def enabled(self, condition: str) -> bool:
        return self.conditions is None or condition in self.conditions

    def consents(self, role: str, condition: str, severity: str) -> bool:
        shared = self.consent.get(role, ())
        return "all" in shared or condition in shared or severity in shared

    def recipients(self, condition: str, severity: str) -> list[Member]:
        return [m for m in self.circle
                if m.wants(condition, severity) and self.consents(m.role, condition, severity)]

    def on_holiday(self, day: date) -> bool:
        return any(a <= day <= b for a, b in self.holidays)

    def quiet(self, minute: float) -> bool:
        if self.quiet_hours is None:
            return False
        a, b = self.quiet_hours
        return a <= minute < b if a <= b else minute >= a or minute < b


@dataclass
class Policy:
    """The policy file: ``organisation`` defaults and per-resident overrides."""

    organisation: dict[str, Any] = field(default_factory=dict)
    residents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the policy ({exc})") from None
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: Any, where: str = "policy") -> Policy:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: a policy is a JSON object")
        unknown = set(raw) - {"organisation", "residents"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        p = cls(dict(raw.get("organisation", {})), dict(raw.get("residents", {})))
        p.for_resident("\0check")  # organisation settings
        for r in p.residents:
            p.for_resident(r)
        return p

    def for_resident(self, resident: str) -> ResidentPolicy:
        d = {**self.organisation, **self.residents.get(resident, {})}
        where = f"policy for {resident!r}" if resident != "\0check" else "policy"
        try:
            return _resident_policy(d, self.organisation)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None


def _hhmm(text: str) -> int:
    h, m = str(text).split(":")
    if not (0 <= int(h) < 24 and 0 <= int(m) < 60):
        raise ValueError(f"{text!r} is not a time HH:MM")
    return int(h) * 60 + int(m)


def _resident_policy(d: dict[str, Any], org: dict[str, Any]) -> ResidentPolicy:
    known = {"conditions", "sensitivity", "quiet_hours", "throttle_hours", "follow_up_hours",
             "digest_time",
             "escalation_minutes", "circle", "consent", "holidays", "snooze", "smtp"}
    if set(d) - known:
        raise ValueError(f"unknown keys {sorted(set(d) - known)}")
    qh = d.get("quiet_hours")
    quiet = (_hhmm(qh["start"]), _hhmm(qh["end"])) if qh else None
    circle = []
    for m in d.get("circle", []):
        if m.get("role") not in ROLES:
            raise ValueError(f"circle member {m.get('name')!r}: role must be one of {ROLES}")
        rec = m.get("receives", ["urgent", "digest"])
        circle.append(Member(str(m["name"]), m["role"], m.get("webhook"), m.get("email"),
                             tuple([rec] if isinstance(rec, str) else rec),
                             bool(m.get("urgent_in_quiet_hours", False))))
    consent = {role: tuple([v] if isinstance(v, str) else v)
               for role, v in d.get("consent", {}).items()}
    sens = {**org.get("sensitivity", {}), **d.get("sensitivity", {})}
    conds = d.get("conditions")
    esc = d.get("escalation_minutes")
    return ResidentPolicy(
        conditions=None if conds is None else tuple(conds),
        sensitivity={k: float(v) for k, v in sens.items()},
        quiet_hours=quiet, throttle_hours=float(d.get("throttle_hours", 72)),
        follow_up_hours=None if d.get("follow_up_hours", 24) is None
        else float(d.get("follow_up_hours", 24)),
        digest_minute=_hhmm(d.get("digest_time", "09:00")),
        escalation_minutes=None if esc is None else float(esc), circle=tuple(circle),
        consent=consent,
        holidays=tuple((date.fromisoformat(h["from"]), date.fromisoformat(h["to"]))
                       for h in d.get("holidays", [])),
        snooze={c: date.fromisoformat(u) for c, u in d.get("snooze", {}).items()})


