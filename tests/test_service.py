"""The service's scheduler on a simulated clock through several days: frames in, the
real-time and morning alerts raised once each, a digest released at its hour, a
quiet-hours hold released, an escalation when nobody acknowledges, a restart mid-day
(nothing raised twice) and a downtime of two days (the missed mornings caught up)."""

from __future__ import annotations

import time as time_module
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kinsight.alerts import AlertRouter, Policy, WebhookTransport, list_alerts
from kinsight.evaluation.injection import inject
from kinsight.ingest import Ingestor
from kinsight.learning import Finding
from kinsight.residents import place, store_activities
from kinsight.service.mornings import Mornings
from kinsight.service.scheduler import Scheduler
from kinsight.simulation import simulate
from kinsight.store import Store
from kinsight.wire import Header, encode_frame
from support import Hooks

TZ = "Europe/London"
START = date(2024, 3, 4)
DAY = START + timedelta(days=20)  # the first day the service runs
KEY = bytes(range(32))
MIN_DS = 600


def at(day: date, hhmm: str) -> int:
    h, m = (int(x) for x in hhmm.split(":"))
    return int(datetime.combine(day, time(h, m), ZoneInfo(TZ)).timestamp() * 1000)


def kinds(hooks: Hooks, member: str, condition: str | None = None
          ) -> list[tuple[str, list[str]]]:
    """What ``member`` was sent (kind, conditions), of ``condition`` only if given."""
    return [(p["kind"], [a["condition"] for a in p["alerts"]]) for p in hooks.to(member)
            if condition is None or condition in [a["condition"] for a in p["alerts"]]]




class Home:
    """A store with a resident's 20 days of history and a toilet node placed; a clock;
    a scheduler that can be dropped (a kill) and made again (a restart)."""

    def __init__(self, db: str, hooks: Hooks):
        self.db = db
        self.now = at(DAY, "06:00")
        # Lived on through the days the service runs (it sees them as they happen), but
        # for the two long toilet visits, when nothing else moved at home.
        _scenario, acts = simulate("healthy", 7, 26, START, outages=False)
        # Two dry days before the service starts: the first morning finds them.
        acts = inject(acts, "dehydration", DAY - timedelta(days=2), TZ)
        still = [(at(DAY, "13:05"), at(DAY, "14:05")), (at(DAY, "22:30"), at(DAY, "23:35"))]
        acts = [a for a in acts if not any(a.end_ms >= lo and a.start_ms <= hi
                                           for lo, hi in still)]
        self.resident = acts[0].resident
        self.store = Store(self.db)
        store_activities(self.store, acts, TZ)
        place(self.store, 1, self.resident, "bathroom", TZ)
        self.store.set_node_key(1, KEY, now_ms=0)
        self.policy = Policy.from_dict({
            "organisation": {"throttle_hours": 24},
            "residents": {self.resident: {
                "consent": {"carer": "all", "family": "all", "practitioner": "all"},
                "quiet_hours": {"start": "22:00", "end": "07:00"}, "digest_time": "08:00",
                "escalation_minutes": 30,
                "circle": [{"name": "one", "role": "carer", "webhook": f"{hooks.url}/one"},
                           {"name": "two", "role": "family",
                            "webhook": f"{hooks.url}/two"}]}}})
        self.ingestor = Ingestor(Store(self.db), clock_ms=lambda: self.now)
        self.seq = 0
        self.scheduler = self.start()

    def start(self) -> Scheduler:
        store = Store(self.db)
        router = AlertRouter(self.policy, store,
                             lambda ch, url: WebhookTransport(url, retries=1, backoff_s=0.0),
                             clock=lambda: self.now)
        return Scheduler(store, router, lambda: self.now, deliver=True)

    def toilet_long(self, minutes: int = 50) -> frozenset[int]:
        self.seq += 1
        raw = encode_frame(KEY, "events", Header(node_id=1, boot=1, seq=self.seq,
                                                 time_s=self.now // 1000),
                           {"events": [{"type": "prolonged_presence", "role": "toilet",
                                        "ago_ds": minutes * MIN_DS,
                                        "duration_ds": minutes * MIN_DS}]})
        results = self.ingestor.ingest_batch([raw, raw])  # and a retransmission
        assert [r.status for r in results] == ["accepted", "duplicate"]
        return frozenset({1})

    def run_until(self, end_ms: int, step_s: int = 60) -> None:
        while self.now < end_ms:
            self.now = min(end_ms, self.now + step_s * 1000)
            self.scheduler.step()

    def alerts(self) -> list[tuple[str, str, str]]:
        return [(a.day, a.condition, a.subject) for a in list_alerts(self.store)]

    def last_day(self) -> str | None:
        row = self.store.conn.execute("SELECT last_day FROM models WHERE resident = ?",
                                      (self.resident,)).fetchone()
        return None if row is None else row[0]


def test_days_of_service_on_a_simulated_clock(fresh_db, hooks):
    home = Home(fresh_db(), hooks)
    # 07:30, the resident's morning: the days before today are analysed, once.
    home.run_until(at(DAY, "07:29"))
    assert home.last_day() is None
    home.run_until(at(DAY, "07:31"))
    assert home.last_day() == (DAY - timedelta(days=1)).isoformat()
    # ... and the morning finds the two dry days: a digest, sent at the digest hour.
    assert [c for _d, c, _s in home.alerts()] == ["dehydration"]
    assert kinds(hooks, "one", "dehydration") == []
    home.run_until(at(DAY, "08:02"))
    assert [k for k, _c in kinds(hooks, "one", "dehydration")] == ["digest"]

    # 14:00 a frame says the toilet visit has lasted 50 min: urgent, at once, once.
    home.run_until(at(DAY, "14:00"))
    home.scheduler.step(home.toilet_long())
    assert [c for _d, c, _s in home.alerts()].count("prolonged_toilet") == 1
    assert kinds(hooks, "one", "prolonged_toilet") == [("urgent", ["prolonged_toilet"])]
    assert kinds(hooks, "two", "prolonged_toilet") == []
    # Nobody acknowledges: 30 minutes later it goes to the next member of the circle.
    home.run_until(at(DAY, "14:29"))
    assert kinds(hooks, "two", "prolonged_toilet") == []
    home.run_until(at(DAY, "14:32"))
    assert kinds(hooks, "two", "prolonged_toilet") == [("escalation", ["prolonged_toilet"])]

    # 23:00 a digest finding; 23:30 another long visit: both held by the quiet hours.
    home.run_until(at(DAY, "23:00"))
    router = home.scheduler.router
    digest = router.raise_finding(home.resident, DAY, Finding(
        "device", "digest", 1.0, "The toilet sensor may be stuck", [], subject="toilet"))
    assert digest is not None
    home.run_until(at(DAY, "23:30"))
    home.scheduler.step(home.toilet_long(55))
    sent_at_night = len(hooks.got)
    home.run_until(at(DAY + timedelta(days=1), "06:59"))
    assert len(hooks.got) == sent_at_night  # nothing sent in the quiet hours
    home.run_until(at(DAY + timedelta(days=1), "07:02"))
    # the hold released
    assert kinds(hooks, "one", "prolonged_toilet") == [("urgent", ["prolonged_toilet"])] * 2
    assert kinds(hooks, "one", "device") == []
    home.run_until(at(DAY + timedelta(days=1), "08:02"))
    assert [k for k, _c in kinds(hooks, "one", "device")] == ["digest"]

    # A kill at noon (the scheduler dropped as it is) and a restart: nothing twice.
    home.run_until(at(DAY + timedelta(days=1), "12:00"))
    raised = home.alerts()
    home.scheduler = home.start()
    home.run_until(at(DAY + timedelta(days=1), "13:00"))
    assert home.alerts() == raised
    assert home.last_day() == DAY.isoformat()

    # Down for two days: at 09:00 the missed mornings are caught up at once.
    home.now = at(DAY + timedelta(days=3), "09:00")
    home.scheduler = home.start()
    home.scheduler.step()
    assert home.last_day() == (DAY + timedelta(days=2)).isoformat()
    home.run_until(at(DAY + timedelta(days=3), "12:00"))
    alerts = home.alerts()
    assert len(alerts) == len(set(alerts)), "an alert raised twice"
    conditions = [c for _d, c, _s in alerts]
    assert conditions.count("prolonged_toilet") == 2  # the two visits, each once
    assert conditions.count("dehydration") == 1  # the morning's, not again after the restarts


def test_the_mornings_are_each_residents_local_time(fresh_db):
    with Store(fresh_db("m")) as store:
        for resident, tz in (("london", "Europe/London"), ("madrid", "Europe/Madrid"),
                             ("new-york", "America/New_York")):
            place(store, len(resident), resident, None, tz)
        day = date(2024, 6, 3)
        start = int(datetime.combine(day, time(0), ZoneInfo("UTC")).timestamp() * 1000)
        mornings = Mornings(store, morning_min=7 * 60 + 30)
        mornings.add(["london", "madrid", "new-york"], start)
        seen: dict[str, list[str]] = {}
        for minute in range(1, 36 * 60):
            t = start + minute * 60_000
            for r in mornings.due(t):
                seen.setdefault(r, []).append(
                    datetime.fromtimestamp(t / 1000, ZoneInfo("UTC")).strftime("%d %H:%M"))
                mornings.done(r, t)
        # 07:30 local, each day: New York's morning of the 2nd had passed at the start
        # (its evening), so it is due at once, then at 07:30 each day.
        assert seen == {"madrid": ["03 05:30", "04 05:30"], "london": ["03 06:30", "04 06:30"],
                        "new-york": ["03 00:01", "03 11:30", "04 11:30"]}


def test_a_restart_before_the_morning_waits_for_it_and_one_after_a_gap_does_not(fresh_db):
    from kinsight.service.analysis import ensure_models

    with Store(fresh_db("m")) as store:
        place(store, 1, "r", None, TZ)
        ensure_models(store)
        day = date(2024, 6, 3)
        store.conn.execute("INSERT INTO models VALUES ('r', 'engine', '{}', ?)",
                           ((day - timedelta(days=2)).isoformat(),))  # yesterday's morning
        m = Mornings(store, morning_min=7 * 60 + 30)
        m.add(["r"], at(day, "03:00"))
        assert m.next_ms() == at(day, "07:30")  # nothing missed: wait for this morning
        store.conn.execute("UPDATE models SET last_day = ?",
                           ((day - timedelta(days=4)).isoformat(),))  # three days down
        m = Mornings(store, morning_min=7 * 60 + 30)
        m.add(["r"], at(day, "03:00"))
        assert m.next_ms() == at(day, "03:00")  # caught up at once


def test_a_failing_scheduler_step_is_retried_and_said_by_the_health(fresh_db, monkeypatch):
    from kinsight.service.serve import Service, ServiceSettings

    failing = [True]  # until the health has been seen saying so
    real_step = Scheduler.step

    def flaky(self, nodes=frozenset()):  # the store locked for a while, say
        if failing[0]:
            raise RuntimeError("database is locked")
        return real_step(self, nodes)

    monkeypatch.setattr(Scheduler, "step", flaky)
    db = fresh_db("s")
    service = Service(ServiceSettings(db=db, udp=("127.0.0.1", 0)), Policy())
    service.start()
    try:
        with Store(db) as store:
            deadline = time_module.monotonic() + 15
            seen_failure = False
            while time_module.monotonic() < deadline:
                health = service.health(store)
                seen_failure |= any("last step failed" in r for r in health["reasons"])
                failing[0] = not seen_failure
                if seen_failure and health["status"] == "ok":
                    break
                time_module.sleep(0.05)
            assert seen_failure, "the failed step was never said"
            assert health["status"] == "ok", health  # ... and the next steps went on
            assert health["threads"]["scheduler"] == "up"
    finally:
        service.stop()
