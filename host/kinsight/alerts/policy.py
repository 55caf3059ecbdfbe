"""The alert policy: a care circle, consent, quiet hours, throttle, snoozes and holidays.

``Policy.load`` reads the policy file (format in docs/alerts.md): organisation
defaults and per-resident overrides, checked against ``policy_schema`` when loaded
so that a bad file is refused whole with a ``ConfigError`` naming the key and what
is wrong with it. ``Policy.for_resident`` gives the settings that apply to one
resident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .policy_schema import ROLES, check_policy, parse_policy_json, where

__all__ = ["ROLES", "Member", "Policy", "ResidentPolicy"]


@dataclass(frozen=True)
class Member:
    name: str
    role: str
    webhook: str | None = None
    email: str | None = None
    receives: tuple[str, ...] = ("urgent", "digest")
    urgent_in_quiet_hours: bool = False
    webhook_secret: str | None = None  # signs what goes to ``webhook`` (transports)
    known_as: str | None = None  # what this member calls the resident ("Mum")

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
    name: str | None = None  # the resident's name, as the care team writes it
    team: str | None = None  # the care team that looks after the resident
    home_assistant: bool = False  # status and open alerts to the household's Home Assistant

    def called(self, m: Member | None, fallback: str) -> str:
        """What ``m`` calls the resident: their own word, else the name, else ``fallback``."""
        return (m.known_as if m is not None and m.known_as else None) or self.name or fallback

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
            raw = parse_policy_json(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the policy ({exc.strerror or exc})"
                              ) from None
        except ValueError as exc:  # JSONDecodeError, NaN, overflow, nesting, not UTF-8
            raise ConfigError(f"{path}: not a JSON policy ({exc})") from None
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "policy") -> Policy:
        """A checked policy; ConfigError ``source: key: what is wrong`` otherwise."""
        check_policy(raw, source)
        p = cls(dict(raw.get("organisation", {})), dict(raw.get("residents", {})))
        secrets: dict[str, tuple[str | None, str]] = {}
        for resident in (_ORGANISATION, *p.residents):
            place = ("organisation",) if resident is _ORGANISATION else ("residents", resident)
            try:
                rp = _resident_policy(p._settings(resident), p.organisation)
            except ValueError as exc:  # what the schema cannot say: real dates, order
                raise ConfigError(f"{source}: {where(place)}.{exc}") from None
            for m in rp.circle:
                if m.webhook is None:
                    continue
                seen = secrets.setdefault(m.webhook, (m.webhook_secret, m.name))
                if seen[0] != m.webhook_secret:
                    raise ConfigError(f"{source}: {where(place)}.circle: the webhook of "
                                      f"{m.name!r} has another secret than {seen[1]!r}'s "
                                      "(one URL, one secret)")
        return p

    def _settings(self, resident: str) -> dict[str, Any]:
        if resident is _ORGANISATION:
            return dict(self.organisation)
        return {**self.organisation, **self.residents.get(resident, {})}

    def app_url(self, resident: str) -> str | None:
        """Where the care team's app is served, for the resident's messages' links."""
        url = self._settings(resident).get("app_url")
        return str(url) if url else None

    def for_resident(self, resident: str) -> ResidentPolicy:
        try:
            return _resident_policy(self._settings(resident), self.organisation)
        except (KeyError, TypeError, ValueError) as exc:  # a Policy made without from_dict
            raise ConfigError(f"policy for {resident!r}: {exc}") from None

    def webhook_secrets(self) -> dict[str, str]:
        """Each webhook URL's signing secret (URLs without one are sent unsigned)."""
        out: dict[str, str] = {}
        for resident in (_ORGANISATION, *self.residents):
            for m in _resident_policy(self._settings(resident), self.organisation).circle:
                if m.webhook and m.webhook_secret:
                    out[m.webhook] = m.webhook_secret
        return out


_ORGANISATION = "\0organisation"  # the organisation's own settings, as a resident key


def _hhmm(text: str) -> int:
    h, m = str(text).split(":")
    if not (0 <= int(h) < 24 and 0 <= int(m) < 60):
        raise ValueError(f"{text!r} is not a time HH:MM")
    return int(h) * 60 + int(m)


def _day(text: str, key: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{key}: {text!r} is not a date") from None


def _holidays(raw: list[dict[str, str]]) -> tuple[tuple[date, date], ...]:
    out = []
    for i, h in enumerate(raw):
        a, b = _day(h["from"], f"holidays[{i}].from"), _day(h["to"], f"holidays[{i}].to")
        if b < a:
            raise ValueError(f"holidays[{i}]: 'to' {b} is before 'from' {a}")
        out.append((a, b))
    return tuple(out)


def _resident_policy(d: dict[str, Any], org: dict[str, Any]) -> ResidentPolicy:
    known = {"conditions", "sensitivity", "quiet_hours", "throttle_hours", "follow_up_hours",
             "digest_time",
             "escalation_minutes", "circle", "consent", "holidays", "snooze", "smtp",
             "webhook_secret", "app_url", "name", "team", "home_assistant"}
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
                             bool(m.get("urgent_in_quiet_hours", False)),
                             m.get("webhook_secret", d.get("webhook_secret")),
                             m.get("known_as")))
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
        holidays=_holidays(d.get("holidays", [])),
        snooze={c: _day(u, f"snooze.{c}") for c, u in d.get("snooze", {}).items()},
        name=d.get("name"), team=d.get("team"),
        home_assistant=bool(d.get("home_assistant", False)))


