"""``kinsight analyse``: every resident's days through their model, then the alerts.

For each resident, one at a time (imported histories and placed nodes' events
together, with the resident's own night learnt from their first days), the complete
local days not analysed before (days before the day of ``now``) are scored and then
learnt, one at a time, by the resident's ``PersonalModel``, whose state is kept in
the ``models`` table so the next run continues where this one stopped. Only those
new days are read and computed, and kept (``service.days``): a morning costs what
the new day costs, not what the history does. Findings about the last
``recent_days`` days are raised through the router (older ones are counted but not
raised: nobody is helped by an alert about last month). The real-time rules then
look at the day of ``now``. Last, whatever is due is delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..alerts import AlertRecord, AlertRouter
from ..learning import (
    DIGEST_ONLY,
    BaselineDetector,
    Finding,
    PersonalModel,
    personal_features,
    realtime,
)
from ..residents import activities_of, as_seen_at, resident_tz, residents
from ..store import Migration, Store
from .days import (
    CHECK_WINDOW_MS,
    days_window_start,
    keep_days,
    new_days,
    realtime_activities,
    routine_for,
    seen_since,
)

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    resident TEXT NOT NULL,
    detector TEXT NOT NULL,
    state_json TEXT NOT NULL,
    last_day TEXT,
    PRIMARY KEY (resident, detector)
);
"""
MIGRATIONS = (Migration(1, "each resident's learnt model and last day analysed", _SCHEMA),)



def ensure_models(store: Store) -> None:
    """Create the table of each resident's learnt model if it is missing."""
    store.migrate('models', MIGRATIONS)


@dataclass
class Summary:
    residents: dict[str, dict[str, Any]] = field(default_factory=dict)
    raised: list[AlertRecord] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def _model_row(store: Store, resident: str, detector: str) -> tuple[str, str | None] | None:
    row = store.conn.execute("SELECT state_json, last_day FROM models WHERE resident = ? AND "
                             "detector = ?", (resident, detector)).fetchone()
    return None if row is None else (str(row[0]), row[1])


def _model(row: tuple[str, str | None] | None, detector: str, heartbeats: bool
           ) -> PersonalModel | None:
    if detector != "engine":
        return None
    if row is None:
        # Sensors that never say they are alive: a silent tap may be a dry day.
        return PersonalModel(silent_tap_means_dry=not heartbeats)
    return PersonalModel.from_dict(orjson.loads(row[0]))


def analyse(store: Store, router: AlertRouter, now_ms: int, detector: str = "engine",
            recent_days: int = 2, *, deliver: bool = True,
            only: Collection[str] | None = None) -> Summary:
    """The morning run at ``now_ms`` (see the module's docstring) for every resident, or
    for those in ``only``; ``deliver`` False raises and stores but sends nothing (a
    replay). Only what was known by ``now_ms`` is read."""
    ensure_models(store)
    out = Summary()
    for resident in residents(store):
        if only is not None and resident not in only:
            continue  # read nothing of those not asked for: a replay asks one at a time
        tz = resident_tz(store, resident)
        today = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).astimezone(
            ZoneInfo(tz)).date()
        row = _model_row(store, resident, detector)
        last_day = row[1] if row else None
        first_new = date.fromisoformat(last_day) + timedelta(days=1) if last_day else None
        if detector == "engine":
            # Only the new days, from what the store holds for them (see service.days).
            feats, acts = new_days(store, resident, tz, first_new, now_ms,
                                   now_ms - CHECK_WINDOW_MS)
        else:  # the baseline replays every day each time: a yardstick, not a deployment
            acts = as_seen_at(activities_of(store, resident), now_ms)
            feats, _night = personal_features(acts, tz)
        model = _model(row, detector, any(a.sensor == "heartbeat" for a in acts))
        start = first_new or min(feats, default=today)
        days = [start + timedelta(days=i) for i in range(max(0, (today - start).days))]
        findings: list[tuple[date, Finding]] = []
        if model is not None:
            keep_days(store, resident, feats, days)
            for d in days:
                x: dict[str, Any] = {**feats.get(d, {}), "day": d.isoformat(),
                                     "weekend": int(d.weekday() >= 5)}
                findings += [(d, f) for f in model.score_one(x)]
                model.learn_one(x)
        else:
            base = BaselineDetector()
            first = min(feats, default=today)
            for d in (first + timedelta(days=i) for i in range(max(0, (today - first).days))):
                for a in base.score_day(resident, d, feats.get(d, {})):
                    if d >= start:
                        findings.append((d, Finding(a.condition, a.severity, 4.0, a.text)))
        if detector == "engine":
            # The new days' window reaches back far enough for the days to summarise.
            since = 0 if first_new is None else min(days_window_start(first_new, tz),
                                                    now_ms - CHECK_WINDOW_MS)
            routine = routine_for(store, resident, tz, today, now_ms, acts, since)
            recent = [a for a in acts if a.end_ms >= now_ms - CHECK_WINDOW_MS]
            if not seen_since(recent, now_ms - CHECK_WINDOW_MS):
                recent = realtime_activities(store, resident, now_ms)
            findings += [(today, f) for f in realtime.check(recent, now_ms, tz, routine)]
        else:
            findings += [(today, f) for f in realtime.check(acts, now_ms, tz)]
        oldest = today - timedelta(days=recent_days)
        # Sleep and a bad day are for a weekly look, never a proactive alert.
        raised = [r for d, f in findings if d >= oldest and f.condition not in DIGEST_ONLY
                  and (r := router.raise_finding(resident, d, f)) is not None]
        out.raised += raised
        new_last = max([d.isoformat() for d in days], default=last_day)
        state = orjson.dumps(model.to_dict()).decode() if model is not None else "{}"
        with store.transaction():
            store.conn.execute(
                "INSERT INTO models VALUES (?, ?, ?, ?) ON CONFLICT (resident, detector) DO "
                "UPDATE SET state_json = excluded.state_json, last_day = excluded.last_day",
                (resident, detector, state, new_last))
        out.residents[resident] = {
            "activities": len(acts), "days_analysed": len(days),
            "findings": len(findings), "raised": len(raised),
            "model": model.state if model is not None else detector}
        log.info("%s: %d new days, %d findings, %d raised", resident, len(days),
                 len(findings), len(raised))
    if deliver:
        out.deliveries = router.deliver_due(now_ms)
    return out

