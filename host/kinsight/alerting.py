"""Alerts: who hears about a finding, when, how; and what they said back.

``AlertRouter.raise_finding`` turns a Finding into an ``AlertRecord`` (stored in
the ``alerts`` table and appended to the JSON Lines log), once: the same
condition for the same resident is not raised again while an alert of it is open
or snoozed, nor within the throttle window. ``deliver_due`` sends what is due to
the resident's care circle through the transports (urgent alerts at once, digests
once a day, escalation of unacknowledged urgent ones); every attempt is recorded
in ``deliveries``, and a failed one is retried on a later call. ``acknowledge``
closes an alert with an outcome; every action lands in ``audit``, and false alarms
lower that resident's sensitivity to that condition. The policy file's format is
in docs/alerts.md.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from .errors import ConfigError
from .learn import PersonalModel
from .residents import resident_tz
from .store import Store

log = logging.getLogger(__name__)

ROLES = ("carer", "family", "practitioner")
OUTCOMES = ("useful", "not useful", "false alarm")
FALSE_ALARMS_PER_STEP = 2
SENSITIVITY_STEP = 0.8
SENSITIVITY_FLOOR = 0.25
RETRY_AFTER_MS = 5 * 60_000

_P = PersonalModel().params
# The score a finding of each condition needs to be raised at sensitivity 1.
BASE_SCORE: dict[str, float] = {
    "dehydration": _P["h"], "sleep": _P["h"], "uti": _P["uti_h"],
    "mobility": _P["mobility_h"], "inactivity": 4.0, "prolonged_sitting": 4.0,
    "bad_day": 1.5, "device": 0.0, "prolonged_toilet": 1.0, "prolonged_stairs": 1.0,
    "not_up": 1.0, "no_water": 1.0, "night_wandering": 1.0}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    resident TEXT NOT NULL,
    condition TEXT NOT NULL,
    severity TEXT NOT NULL,
    day TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    score REAL NOT NULL,
    text TEXT NOT NULL,
    series TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    outcome TEXT,
    acknowledged_by TEXT,
    acknowledged_ms INTEGER,
    snoozed_until_ms INTEGER
);
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    member TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_ms INTEGER NOT NULL DEFAULT 0,
    sent_ms INTEGER,
    error TEXT,
    UNIQUE (alert_id, member, channel)
);
CREATE TABLE IF NOT EXISTS audit (
    ts_ms INTEGER NOT NULL,
    alert_id INTEGER,
    resident TEXT,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sensitivity (
    resident TEXT NOT NULL,
    condition TEXT NOT NULL,
    multiplier REAL NOT NULL,
    PRIMARY KEY (resident, condition)
);
"""


def ensure_tables(store: Store) -> None:
    if not store.conn.in_transaction:  # executescript would commit an open transaction
        store.conn.executescript(_SCHEMA)


# --- policy ----------------------------------------------------------------------------------


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
    known = {"conditions", "sensitivity", "quiet_hours", "throttle_hours", "digest_time",
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
        digest_minute=_hhmm(d.get("digest_time", "09:00")),
        escalation_minutes=None if esc is None else float(esc), circle=tuple(circle),
        consent=consent,
        holidays=tuple((date.fromisoformat(h["from"]), date.fromisoformat(h["to"]))
                       for h in d.get("holidays", [])),
        snooze={c: date.fromisoformat(u) for c, u in d.get("snooze", {}).items()})


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRecord:
    id: int
    resident: str
    condition: str
    severity: str  # "urgent" | "digest"
    day: str  # ISO date the finding is about
    created_ms: int
    text: str  # plain English with the evidence
    series: list[list[Any]]  # [[ISO date, value], ...], oldest first
    state: str  # "open" | "acknowledged" | "snoozed"
    score: float = 0.0
    outcome: str | None = None
    acknowledged_by: str | None = None
    acknowledged_ms: int | None = None
    snoozed_until_ms: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLS = ("id, resident, condition, severity, day, created_ms, text, series, state, score, "
         "outcome, acknowledged_by, acknowledged_ms, snoozed_until_ms")


def _record(row: tuple[Any, ...]) -> AlertRecord:
    (i, r, c, sev, day, created, text, series, state, score, outcome, by, ack_ms,
     snz) = row
    return AlertRecord(i, r, c, sev, day, created, text, json.loads(series), state, score,
                       outcome, by, ack_ms, snz)


def list_alerts(store: Store, resident: str | None = None) -> list[AlertRecord]:
    ensure_tables(store)
    sql = f"SELECT {_COLS} FROM alerts"
    params: tuple[Any, ...] = ()
    if resident is not None:
        sql += " WHERE resident = ?"
        params = (resident,)
    return [_record(r) for r in store.conn.execute(sql + " ORDER BY created_ms, id", params)]


def get_alert(store: Store, alert_id: int) -> AlertRecord | None:
    ensure_tables(store)
    row = store.conn.execute(f"SELECT {_COLS} FROM alerts WHERE id = ?",
                             (alert_id,)).fetchone()
    return None if row is None else _record(row)


def learned_sensitivity(store: Store, resident: str, condition: str) -> float:
    ensure_tables(store)
    row = store.conn.execute("SELECT multiplier FROM sensitivity WHERE resident = ? AND "
                             "condition = ?", (resident, condition)).fetchone()
    return float(row[0]) if row else 1.0


# --- transports ------------------------------------------------------------------------------


class DeliveryError(Exception):
    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


class Transport(Protocol):
    def send(self, to: str, subject: str, body: str, payload: dict[str, Any]) -> int:
        """Deliver; the number of attempts it took. Raises DeliveryError."""
        ...


def _retry(what: str, retries: int, backoff_s: float, attempt: Callable[[], None]) -> int:
    last = ""
    for n in range(1, retries + 1):
        try:
            attempt()
            return n
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            log.warning("%s: attempt %d of %d failed: %s", what, n, retries, last)
            if n < retries:
                time.sleep(backoff_s * 2 ** (n - 1))
    raise DeliveryError(f"{what}: {last}", retries)


@dataclass
class WebhookTransport:
    """POSTs the payload as JSON to ``url``; a non-2xx answer or no answer is a failed
    attempt, retried with exponential backoff."""

    url: str
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0

    def send(self, to: str, subject: str, body: str, payload: dict[str, Any]) -> int:
        data = json.dumps(payload).encode()

        def attempt() -> None:
            req = urllib.request.Request(self.url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                resp.read()

        return _retry(f"webhook {self.url}", self.retries, self.backoff_s, attempt)


@dataclass
class SmtpTransport:
    """Plain-text e-mail through an SMTP server (no authentication, no TLS: a local
    relay)."""

    host: str
    port: int
    sender: str
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0

    def send(self, to: str, subject: str, body: str, payload: dict[str, Any]) -> int:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg.set_content(body)

        def attempt() -> None:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.send_message(msg)

        return _retry(f"e-mail to {to}", self.retries, self.backoff_s, attempt)


TransportFactory = Callable[[str, str], "Transport | None"]  # (channel, target)


def default_transports(policy: Policy) -> TransportFactory:
    """Webhooks by URL; e-mail through the organisation's ``smtp`` {host, port, sender}."""
    smtp = policy.organisation.get("smtp")

    def make(channel: str, target: str) -> Transport | None:
        if channel == "webhook":
            return WebhookTransport(target)
        if channel == "email" and smtp:
            return SmtpTransport(smtp["host"], int(smtp.get("port", 25)), smtp["sender"])
        return None

    return make


# --- the router ------------------------------------------------------------------------------


def _message(resident: str, kind: str, alerts: list[AlertRecord]) -> tuple[str, str,
                                                                              dict[str, Any]]:
    if kind == "digest":
        subject = f"Kinsight daily digest for {resident}: {len(alerts)} item(s)"
    else:
        a = alerts[0]
        subject = (f"Kinsight {'ESCALATED ' if kind == 'escalation' else ''}urgent: "
                   f"{a.condition.replace('_', ' ')} for {resident}")
    lines = []
    for a in alerts:
        lines.append(f"{a.day} {a.condition.replace('_', ' ')} ({a.severity}), alert {a.id}")
        lines.append(f"  {a.text}")
        if a.series:
            lines.append("  Recent values: " + ", ".join(
                f"{d}: {'-' if v is None else v}" for d, v in a.series))
    lines.append("")
    lines.append("Kinsight supports your judgement; it does not replace it. Acknowledge with "
                 "kinsight ack ALERT_ID --outcome useful|not-useful|false-alarm.")
    payload = {"kind": kind, "resident": resident, "alerts": [a.as_dict() for a in alerts]}
    return subject, "\n".join(lines) + "\n", payload


class AlertRouter:
    """See the module's docstring. ``clock`` gives the time in ms (for created_ms and
    the audit trail); ``log_path`` is the JSON Lines alert log (None: none)."""

    def __init__(self, policy: Policy, store: Store,
                 transports: TransportFactory | Mapping[str, Transport] | None = None,
                 clock: Callable[[], int] | None = None, log_path: str | Path | None = None):
        self.policy = policy
        self.store = store
        if transports is None:
            self._transport: TransportFactory = default_transports(policy)
        elif isinstance(transports, Mapping):
            table = dict(transports)
            self._transport = lambda channel, target: table.get(channel)
        else:
            self._transport = transports
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.log_path = Path(log_path) if log_path is not None else None
        ensure_tables(store)

    # --- raising

    def sensitivity(self, resident: str, condition: str) -> float:
        """The policy's multiplier times what acknowledgements taught."""
        rp = self.policy.for_resident(resident)
        return rp.sensitivity.get(condition, 1.0) * learned_sensitivity(
            self.store, resident, condition)

    def raise_finding(self, resident: str, day: date | str, finding: Any) -> AlertRecord | None:
        """Raise ``finding`` (a learn.Finding) about ``day``, or None when the policy,
        the sensitivity or the throttle holds it back."""
        day_s = day if isinstance(day, str) else day.isoformat()
        now = self.clock()
        rp = self.policy.for_resident(resident)
        cond = finding.condition
        reason = None
        if not rp.enabled(cond):
            reason = "condition not enabled"
        elif rp.on_holiday(date.fromisoformat(day_s)):
            reason = "holiday mode"
        elif cond in rp.snooze and date.fromisoformat(day_s) <= rp.snooze[cond]:
            reason = "snoozed by policy"
        else:
            need = BASE_SCORE.get(cond, 0.0) / max(1e-6, self.sensitivity(resident, cond))
            if finding.score < need:
                reason = f"score {finding.score} under {need:.2f} at this sensitivity"
            elif self._throttled(resident, cond, now, rp.throttle_hours):
                reason = "throttled"
        if reason is not None:
            log.info("%s %s on %s not raised: %s", resident, cond, day_s, reason)
            return None
        d0 = date.fromisoformat(day_s)
        vals = list(finding.series)
        series = [[(d0 - timedelta(days=len(vals) - 1 - i)).isoformat(), v]
                  for i, v in enumerate(vals)]
        with self.store.transaction():
            cur = self.store.conn.execute(
                "INSERT INTO alerts (resident, condition, severity, day, created_ms, score, "
                "text, series) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (resident, cond, finding.severity, day_s, now, float(finding.score),
                 finding.text, json.dumps(series)))
            alert_id = int(cur.lastrowid or 0)
            self._audit(now, alert_id, resident, "kinsight", "raised", finding.text)
        rec = get_alert(self.store, alert_id)
        assert rec is not None
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec.as_dict()) + "\n")
        return rec

    def _throttled(self, resident: str, cond: str, now: int, hours: float) -> bool:
        row = self.store.conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE resident = ? AND condition = ? AND "
            "(state = 'open' OR (state = 'snoozed' AND snoozed_until_ms > ?) "
            "OR created_ms > ?)", (resident, cond, now, now - int(hours * 3_600_000))
        ).fetchone()
        return bool(row[0])

    def _audit(self, now: int, alert_id: int | None, resident: str | None, who: str,
               action: str, detail: str) -> None:
        self.store.conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)",
                                (now, alert_id, resident, who, action, detail))

    # --- answers

    def acknowledge(self, alert_id: int, who: str, outcome: str, note: str = "") -> AlertRecord:
        outcome = outcome.replace("-", " ")
        if outcome not in OUTCOMES:
            raise ConfigError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        rec = get_alert(self.store, alert_id)
        if rec is None:
            raise ConfigError(f"no alert {alert_id}")
        now = self.clock()
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE alerts SET state = 'acknowledged', outcome = ?, acknowledged_by = ?, "
                "acknowledged_ms = ? WHERE id = ?", (outcome, who, now, alert_id))
            self._audit(now, alert_id, rec.resident, who, "acknowledged",
                        json.dumps({"outcome": outcome, "note": note}))
            if outcome == "false alarm":
                n = self.store.conn.execute(
                    "SELECT COUNT(*) FROM alerts WHERE resident = ? AND condition = ? AND "
                    "outcome = 'false alarm'", (rec.resident, rec.condition)).fetchone()[0]
                if n % FALSE_ALARMS_PER_STEP == 0:
                    old = learned_sensitivity(self.store, rec.resident, rec.condition)
                    new = max(SENSITIVITY_FLOOR, round(old * SENSITIVITY_STEP, 4))
                    self.store.conn.execute(
                        "INSERT INTO sensitivity VALUES (?, ?, ?) ON CONFLICT (resident, "
                        "condition) DO UPDATE SET multiplier = excluded.multiplier",
                        (rec.resident, rec.condition, new))
                    self._audit(now, alert_id, rec.resident, "kinsight", "sensitivity",
                                f"{rec.condition}: {old:g} -> {new:g} after {n} false alarms")
        out = get_alert(self.store, alert_id)
        assert out is not None
        return out

    def snooze(self, alert_id: int, until_ms: int, who: str) -> None:
        """Hold the alert (and its condition for the resident) until ``until_ms``."""
        rec = get_alert(self.store, alert_id)
        if rec is None:
            raise ConfigError(f"no alert {alert_id}")
        now = self.clock()
        with self.store.transaction():
            self.store.conn.execute("UPDATE alerts SET state = 'snoozed', snoozed_until_ms = ? "
                                    "WHERE id = ?", (until_ms, alert_id))
            self._audit(now, alert_id, rec.resident, who, "snoozed", str(until_ms))

    # --- delivery

    def deliver_due(self, now_ms: int) -> list[dict[str, Any]]:
        """Send what is due at ``now_ms``; one dict per delivery attempted."""
        done: list[dict[str, Any]] = []
        open_alerts = [a for a in list_alerts(self.store) if a.state == "open"]
        by_resident: dict[str, list[AlertRecord]] = {}
        for a in open_alerts:
            by_resident.setdefault(a.resident, []).append(a)
        for resident, alerts in by_resident.items():
            rp = self.policy.for_resident(resident)
            t = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).astimezone(
                ZoneInfo(resident_tz(self.store, resident)))
            minute = t.hour * 60 + t.minute
            quiet = rp.quiet(minute)
            for a in alerts:
                if a.severity != "urgent":
                    continue
                chain = rp.recipients(a.condition, a.severity)
                step_ms = (rp.escalation_minutes or 0) * 60_000
                for i, m in enumerate(chain):
                    due = a.created_ms + int(i * step_ms)
                    if now_ms < due:
                        break
                    if quiet and not m.urgent_in_quiet_hours:
                        continue
                    kind = "urgent" if i == 0 or not step_ms else "escalation"
                    done += self._send(resident, m, [a], kind, now_ms)
            if quiet or minute < rp.digest_minute:
                continue
            digests = [a for a in alerts if a.severity != "urgent"]
            for m in rp.circle:
                mine = [a for a in digests if m in rp.recipients(a.condition, a.severity)]
                if mine and not self._digest_sent_today(m, resident, t.date(), now_ms):
                    done += self._send(resident, m, mine, "digest", now_ms)
        return done

    def _digest_sent_today(self, m: Member, resident: str, day: date, now_ms: int) -> bool:
        tz = ZoneInfo(resident_tz(self.store, resident))
        midnight = int(datetime.combine(day, datetime.min.time(), tz).timestamp() * 1000)
        row = self.store.conn.execute(
            "SELECT COUNT(*) FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE "
            "a.resident = ? AND d.member = ? AND d.kind = 'digest' AND d.state = 'sent' AND "
            "d.sent_ms >= ?", (resident, m.name, midnight)).fetchone()
        return bool(row[0])

    def _send(self, resident: str, m: Member, alerts: list[AlertRecord], kind: str,
              now_ms: int) -> list[dict[str, Any]]:
        out = []
        for channel, target in m.channels():
            pending = []
            for a in alerts:
                row = self.store.conn.execute(
                    "SELECT state, next_try_ms FROM deliveries WHERE alert_id = ? AND "
                    "member = ? AND channel = ?", (a.id, m.name, channel)).fetchone()
                if row is None or (row[0] == "failed" and row[1] <= now_ms):
                    pending.append(a)
            if not pending:
                continue
            transport = self._transport(channel, target)
            subject, body, payload = _message(resident, kind, pending)
            payload["member"] = m.name
            if transport is None:
                state, attempts, error = "failed", 0, f"no transport for {channel}"
            else:
                try:
                    attempts = transport.send(target, subject, body, payload)
                    state, error = "sent", None
                except DeliveryError as exc:
                    state, attempts, error = "failed", exc.attempts, str(exc)
                except Exception as exc:  # a transport must never bring the router down
                    state, attempts, error = "failed", 1, f"{type(exc).__name__}: {exc}"
            with self.store.transaction():
                for a in pending:
                    self.store.conn.execute(
                        "INSERT INTO deliveries (alert_id, member, channel, target, kind, "
                        "state, attempts, next_try_ms, sent_ms, error) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id, member, channel) "
                        "DO UPDATE SET state = excluded.state, attempts = attempts + "
                        "excluded.attempts, next_try_ms = excluded.next_try_ms, sent_ms = "
                        "excluded.sent_ms, error = excluded.error, kind = excluded.kind",
                        (a.id, m.name, channel, target, kind, state, attempts,
                         now_ms + RETRY_AFTER_MS, now_ms if state == "sent" else None, error))
                    self._audit(now_ms, a.id, resident, "kinsight", f"delivery {state}",
                                f"{kind} to {m.name} by {channel} ({attempts} attempts)"
                                + (f": {error}" if error else ""))
            if error:
                log.warning("%s alert(s) %s to %s by %s failed: %s", resident,
                            [a.id for a in pending], m.name, channel, error)
            out.append({"resident": resident, "member": m.name, "channel": channel,
                        "kind": kind, "alerts": [a.id for a in pending], "state": state,
                        "attempts": attempts})
        return out
