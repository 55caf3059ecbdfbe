"""``kinsight replay``: a history played as a deployment would have, stored, never sent;
and follow-ups of a change that goes on, at the rate the policy sets."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kinsight.alerts import AlertRouter, Policy, list_alerts
from kinsight.cli import main
from kinsight.learning import Finding
from kinsight.residents import Activity, store_activities
from kinsight.store import Store

TZ = "Europe/London"
ZI = ZoneInfo(TZ)
FIRST = date(2024, 3, 4)
MIN = 60_000


def at(day: date, minutes: float) -> int:
    return int((datetime.combine(day, datetime.min.time(), ZI) + timedelta(minutes=minutes))
               .timestamp() * 1000)


def ordinary_day(d: date, *, late: bool = False) -> list[Activity]:
    """A resident of pressure mats and a presence node: in bed 23:00 to 07:00 (11:30 on a
    ``late`` morning, nothing else before it), tea, the chair, the toilet."""
    getup = 11 * 60 + 30 if late else 7 * 60
    out = [Activity("r", "bed", at(d - timedelta(days=1), 23 * 60), at(d, getup))]
    for m in (getup + 15, 12 * 60, 15 * 60, 18 * 60):
        out.append(Activity("r", "tap", at(d, m), at(d, m + 1), 250.0, "kitchen"))
    for m in (getup + 5, 13 * 60, 17 * 60, 21 * 60):
        out.append(Activity("r", "toilet", at(d, m), at(d, m + 4), None, "bathroom"))
    for m in (9 * 60, 14 * 60, 19 * 60):
        if m > getup:
            out.append(Activity("r", "seat", at(d, m), at(d, m + 50), 2.0, "lounge"))
    return out


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "home.db")
    late = FIRST + timedelta(days=20)
    acts = [a for i in range(24) for a in ordinary_day(FIRST + timedelta(days=i),
                                                        late=FIRST + timedelta(days=i) == late)]
    with Store(path) as store:
        store_activities(store, acts, TZ)
    return path


def test_replay_stores_what_a_deployment_would_have_raised(db, capsys):
    assert main(["replay", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "would have raised" in out and "never sent" in out
    with Store(db) as store:
        alerts = list_alerts(store)
    assert alerts and all(a.state == "replayed" for a in alerts)
    late = (FIRST + timedelta(days=20)).isoformat()
    not_up = [a for a in alerts if a.condition == "not_up"]
    assert [a.day for a in not_up] == [late] and not_up[0].severity == "urgent"
    # a deployment heard of it that morning, from the hourly rules, not the next day
    created = datetime.fromtimestamp(not_up[0].created_ms / 1000, ZI)
    assert created.date().isoformat() == late and 9 <= created.hour <= 11
    # replaying again replaces the replayed alerts instead of adding to them
    assert main(["replay", "--db", db, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    with Store(db) as store:
        assert len(list_alerts(store)) == len(alerts) == len(again)


def test_replayed_alerts_are_never_sent_and_never_hold_a_live_one(db, capsys):
    assert main(["replay", "--db", db]) == 0
    capsys.readouterr()
    sent: list[str] = []

    class Hook:
        def send(self, to: str, subject: str, body: str, payload: dict) -> int:
            sent.append(subject)
            return 1

    policy = Policy.from_dict({"organisation": {"circle": [
        {"name": "carer", "role": "carer", "webhook": "http://127.0.0.1:9/x",
         "receives": "all"}], "consent": {"carer": "all"}}})
    late = FIRST + timedelta(days=20)
    with Store(db) as store:
        now = at(late, 11 * 60)
        router = AlertRouter(policy, store, {"webhook": Hook()}, clock=lambda: now)
        assert router.deliver_due(now + 10 * 3_600_000) == [] and sent == []
        live = router.raise_finding("r", late, Finding("not_up", "urgent", 2.0, "late"))
        assert live is not None and live.state == "open"
        replayed = next(a for a in list_alerts(store) if a.state == "replayed")
    # nobody was sent a replayed alert: it cannot be answered (nor teach sensitivity)
    assert main(["ack", "--db", db, str(replayed.id), "--outcome", "false-alarm"]) == 1
    assert "is from a replay" in capsys.readouterr().err


def test_replay_refuses_bad_days(db, capsys):
    assert main(["replay", "--db", db, "--from", "2024-13-01"]) == 1
    assert "--from '2024-13-01' is not a date" in capsys.readouterr().err
    assert main(["replay", "--db", db, "--from", "2024-03-10", "--to", "2024-03-05"]) == 1
    assert "is before --from" in capsys.readouterr().err


def test_a_change_that_goes_on_is_followed_up_at_the_policys_rate(tmp_path):
    day = date(2024, 6, 20)
    clock = [at(day, 8 * 60)]
    with Store(tmp_path / "k.db") as store:
        router = AlertRouter(Policy(), store, clock=lambda: clock[0])
        first = router.raise_finding("r", day, Finding("dehydration", "digest", 5.0,
                                                       "Drinking less: ..."))
        assert first is not None
        still = Finding("dehydration", "digest", 1.8, "Still drinking less: water drawn "
                        "today 0.6 L (usually 1.4 to 2.0 L), the second day running",
                        follow_up=True)
        # the first alert is open: a new finding of it is held, a follow-up is not
        assert router.raise_finding("r", day, Finding("dehydration", "digest", 5.0, "x")) is None
        clock[0] += 25 * 3_600_000
        up = router.raise_finding("r", day + timedelta(days=1), still)
        assert up is not None and up.text.startswith("Still drinking less")
        clock[0] += 3 * 3_600_000  # at most one a day by default
        assert router.raise_finding("r", day + timedelta(days=1), still) is None
        clock[0] += 22 * 3_600_000
        assert router.raise_finding("r", day + timedelta(days=2), still) is not None
    # a policy without follow-ups; and nothing to follow up without an alert of it
    with Store(tmp_path / "k2.db") as store:
        quiet = AlertRouter(Policy.from_dict({"organisation": {"follow_up_hours": None}}),
                            store, clock=lambda: clock[0])
        assert quiet.raise_finding("r", day, still) is None
        assert quiet.raise_finding("r", day, Finding("dehydration", "digest", 5.0, "x"))
        clock[0] += 48 * 3_600_000
        assert quiet.raise_finding("r", day, still) is None
