"""The alert router: a finding raised once, what is due delivered, the answers taken.

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
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ConfigError
from ..learning import PersonalModel
from ..residents import resident_tz
from ..store import Store
from .links import alert_link
from .messages import compose
from .policy import Member, Policy
from .records import (
    AlertRecord,
    ensure_tables,
    get_alert,
    is_away,
    learned_sensitivity,
    list_alerts,
)
from .transports import DeliveryError, Transport, TransportFactory, default_transports

log = logging.getLogger(__name__)

OUTCOMES = ("useful", "not useful", "false alarm")
FALSE_ALARMS_PER_STEP = 2
SENSITIVITY_STEP = 0.8
SENSITIVITY_FLOOR = 0.25
RETRY_AFTER_MS = 5 * 60_000
MAX_AWAY_DAYS = 366
# Changes that go on over days: while an alert of one is open, it is not raised again.
# Everything else is an incident (a fall, a silent home, a stuck sensor): one left
# unacknowledged must not hide the next, so only the throttle window holds those.
PATTERNS = frozenset({"dehydration", "uti", "mobility", "sleep", "bad_day"})

_P = PersonalModel().params
# The score a finding of each condition needs to be raised at sensitivity 1.
BASE_SCORE: dict[str, float] = {
    "dehydration": _P["h"], "sleep": _P["h"], "uti": _P["uti_h"],
    "mobility": _P["mobility_h"], "inactivity": 4.0, "prolonged_sitting": 4.0,
    "bad_day": 1.5, "device": 0.0, "prolonged_toilet": 1.0, "prolonged_stairs": 1.0,
    "not_up": 1.0, "no_water": 1.0, "night_wandering": 1.0, "silent_home": 1.0,
    "out_overnight": 0.0}



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
        """Raise ``finding`` (a ``learning.Finding``) about ``day``; None when the policy,
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
        elif is_away(self.store, resident, day_s):
            reason = "away (set in the app)"
        elif cond in rp.snooze and date.fromisoformat(day_s) <= rp.snooze[cond]:
            reason = "snoozed by policy"
        elif getattr(finding, "follow_up", False):
            reason = self._follow_up_held(resident, cond, now, rp.follow_up_hours)
        else:
            need = BASE_SCORE.get(cond, 0.0) / max(1e-6, self.sensitivity(resident, cond))
            if finding.score < need:
                reason = f"score {finding.score} under {need:.2f} at this sensitivity"
            elif self._throttled(resident, cond, now, rp.throttle_hours,
                                 still_open_holds=cond in PATTERNS,
                                 subject=getattr(finding, "subject", "")):
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
                "text, series, subject, series_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (resident, cond, finding.severity, day_s, now, float(finding.score),
                 finding.text, json.dumps(series), getattr(finding, "subject", ""),
                 getattr(finding, "series_of", "")))
            alert_id = int(cur.lastrowid or 0)
            self._audit(now, alert_id, resident, "kinsight", "raised", finding.text)
        rec = get_alert(self.store, alert_id)
        assert rec is not None
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec.as_dict()) + "\n")
        return rec

    def _follow_up_held(self, resident: str, cond: str, now: int, hours: float | None
                        ) -> str | None:
        """Why a follow-up is not raised now (None: it is): it follows an alert of the
        same condition in the last fortnight, at most one every ``hours``."""
        if hours is None:
            return "no follow-ups in the policy"
        rows = self.store.conn.execute(
            "SELECT MAX(created_ms) FROM alerts WHERE resident = ? AND condition = ? AND "
            "state != 'replayed' AND created_ms > ?",
            (resident, cond, now - 14 * 86_400_000)).fetchone()
        if rows[0] is None:
            return "no alert of it to follow up"
        if now - int(rows[0]) < hours * 3_600_000:
            return f"followed up less than {hours:g} h ago"
        return None

    def _throttled(self, resident: str, cond: str, now: int, hours: float,
                   still_open_holds: bool = True, subject: str = "") -> bool:
        """Whether an alert of ``cond`` was raised within ``hours`` or is snoozed, or (with
        ``still_open_holds``) is still open. An incident is held only by one about the
        same ``subject``: a stuck fridge door must not hide a stuck toilet sensor."""
        open_clause = "state = 'open' OR " if still_open_holds else ""
        subject_clause = "" if still_open_holds else "subject = ? AND "
        row = self.store.conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE resident = ? AND condition = ? AND "
            f"{subject_clause}state != 'replayed' AND ({open_clause}(state = 'snoozed' AND "  # noqa: S608,E501
            "snoozed_until_ms > ?) OR created_ms > ?)",
            (resident, cond, *(() if still_open_holds else (subject,)), now,
             now - int(hours * 3_600_000))
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
        if rec.state == "replayed":
            raise ConfigError(f"alert {alert_id} is from a replay (what would have been "
                              "raised), not one anyone was sent: there is nothing to answer")
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
        if rec.state not in ("open", "snoozed"):
            raise ConfigError(f"alert {alert_id} is {rec.state}: there is nothing to snooze")
        now = self.clock()
        if until_ms <= now:
            raise ConfigError("a snooze must end later than now")
        with self.store.transaction():
            self.store.conn.execute("UPDATE alerts SET state = 'snoozed', snoozed_until_ms = ? "
                                    "WHERE id = ?", (until_ms, alert_id))
            self._audit(now, alert_id, rec.resident, who, "snoozed", str(until_ms))

    def set_away(self, resident: str, from_day: str, to_day: str, who: str) -> None:
        """The resident away from ``from_day`` to ``to_day`` (inclusive): nothing is
        raised about those days (a holiday, a stay in hospital)."""
        try:
            a, b = date.fromisoformat(from_day), date.fromisoformat(to_day)
        except ValueError:
            raise ConfigError(f"away: {from_day!r} to {to_day!r} are not dates YYYY-MM-DD"
                              ) from None
        if b < a:
            raise ConfigError(f"away: the last day {b} is before the first {a}")
        if (b - a).days > MAX_AWAY_DAYS:
            raise ConfigError(f"away: {(b - a).days + 1} days is longer than "
                              f"{MAX_AWAY_DAYS} (set a new period when they are longer away)")
        now = self.clock()
        with self.store.transaction():
            self.store.conn.execute(
                "INSERT INTO away VALUES (?, ?, ?, ?, ?) ON CONFLICT (resident, from_day) DO "
                "UPDATE SET to_day = excluded.to_day, set_by = excluded.set_by, "
                "set_ms = excluded.set_ms", (resident, a.isoformat(), b.isoformat(), who, now))
            self._audit(now, None, resident, who, "away set", f"{a} to {b}")

    def end_away(self, resident: str, from_day: str, who: str) -> None:
        """Take away the period that starts on ``from_day``."""
        now = self.clock()
        with self.store.transaction():
            cur = self.store.conn.execute("DELETE FROM away WHERE resident = ? AND "
                                          "from_day = ?", (resident, from_day))
            if cur.rowcount == 0:
                raise ConfigError(f"away: no period of {resident!r} starts on {from_day!r}")
            self._audit(now, None, resident, who, "away ended", f"from {from_day}")

    # --- delivery

    def deliver_due(self, now_ms: int) -> list[dict[str, Any]]:
        """Send what is due at ``now_ms``; one dict per delivery attempted."""
        done: list[dict[str, Any]] = []
        # The open ones only, by index: a round costs what is open, not the alert history.
        open_alerts = list_alerts(self.store, state="open")
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
            app_url = self.policy.app_url(resident)
            links = ({a.id: alert_link(self.store, app_url, a.id, now_ms) for a in pending}
                     if app_url else None)
            subject, body, payload = compose(resident, kind, pending,
                                             self.policy.for_resident(resident), m, links)
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
