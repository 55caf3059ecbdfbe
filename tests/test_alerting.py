"""The alert router: throttling, policy, quiet hours, consent, escalation, transports
(a real HTTP server and real SMTP servers on 127.0.0.1, plain, STARTTLS and implicit
TLS with a throwaway certificate), signed webhooks, acknowledgements."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from kinsight.alerts import (
    AlertRouter,
    DeliveryError,
    Policy,
    SmtpTransport,
    WebhookTransport,
    default_transports,
    learned_sensitivity,
    verify_signature,
)
from kinsight.alerts.router import BASE_SCORE
from kinsight.learning import Finding
from kinsight.residents import place
from kinsight.store import Store
from support import Hooks, Mailbox, free_port

ZI = ZoneInfo("Europe/London")
DAY = date(2024, 6, 20)
MIN = 60_000
UTI = 2 * BASE_SCORE["uti"]  # a uti finding well over what it needs at sensitivity 1


def at(hhmm: str, day: date = DAY) -> int:
    h, m = map(int, hhmm.split(":"))
    return int(datetime.combine(day, datetime.min.time(), ZI).replace(hour=h, minute=m)
               .timestamp() * 1000)


def finding(cond: str = "not_up", severity: str = "urgent", score: float = 2.0) -> Finding:
    return Finding(cond, severity, score, f"{cond} evidence in words", [1.0, 2.0, 3.0])




class Clock:
    def __init__(self, ms: int):
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "a.db") as s:
        place(s, 1, "r", "hall", "Europe/London")
        yield s


def member(hooks: Hooks, name: str, role: str = "carer", **kw: Any) -> dict[str, Any]:
    return {"name": name, "role": role, "webhook": f"{hooks.url}/{name}", **kw}


def router(store: Store, resident: dict[str, Any], clock: Clock, **kw: Any) -> AlertRouter:
    policy = Policy.from_dict({"organisation": {"throttle_hours": 24},
                               "residents": {"r": resident}})
    return AlertRouter(policy, store,
                       lambda ch, url: WebhookTransport(url, retries=1, backoff_s=0.01),
                       clock, **kw)


ALL = {"carer": "all", "family": "all", "practitioner": "all"}


def test_fire_once_then_throttle(store, hooks, tmp_path):
    clock = Clock(at("10:00"))
    log = tmp_path / "alerts.jsonl"
    r = router(store, {}, clock, log_path=log)
    first = r.raise_finding("r", DAY, finding())
    assert first is not None and first.state == "open" and first.series[-1] == [
        DAY.isoformat(), 3.0]
    assert r.raise_finding("r", DAY, finding()) is None  # open
    assert r.raise_finding("r", DAY, finding("no_water")) is not None  # another condition
    r.acknowledge(first.id, "nurse", "useful")
    clock.ms += 23 * 60 * MIN
    assert r.raise_finding("r", DAY, finding()) is None  # within the 24 h window
    clock.ms += 2 * 60 * MIN
    again = r.raise_finding("r", DAY, finding())
    assert again is not None and again.id != first.id
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["id"] for x in lines] == [first.id, first.id + 1, again.id]


def test_holiday_snooze_and_enabled_conditions(store, hooks):
    clock = Clock(at("10:00"))
    r = router(store, {"holidays": [{"from": "2024-06-18", "to": "2024-06-21"}],
                       "snooze": {"uti": "2024-06-30"}, "conditions": ["uti", "not_up"]},
               clock)
    assert r.raise_finding("r", DAY, finding()) is None  # holiday
    assert r.raise_finding("r", date(2024, 6, 22), finding("uti", score=UTI)) is None  # snoozed
    assert r.raise_finding("r", date(2024, 6, 22), finding("no_water")) is None  # disabled
    rec = r.raise_finding("r", date(2024, 6, 22), finding())
    assert rec is not None
    r.snooze(rec.id, clock.ms + 60 * MIN, "nurse")
    clock.ms += 25 * 60 * MIN  # past the throttle, but snoozed...
    r.snooze(rec.id, clock.ms + 60 * MIN, "nurse")
    assert r.raise_finding("r", date(2024, 6, 23), finding()) is None
    clock.ms += 61 * MIN  # ... until the snooze ends
    assert r.raise_finding("r", date(2024, 6, 23), finding()) is not None
    assert r.raise_finding("r", date(2024, 7, 1), finding("uti", score=UTI)) is not None


def test_quiet_hours_hold_digests_and_urgent_alerts_unless_opted_in(store, hooks):
    clock = Clock(at("23:00"))
    r = router(store, {"quiet_hours": {"start": "22:00", "end": "07:00"}, "consent": ALL,
                       "digest_time": "08:00",
                       "circle": [member(hooks, "one", urgent_in_quiet_hours=True),
                                  member(hooks, "two", "family")]}, clock)
    urgent = r.raise_finding("r", DAY, finding())
    digest = r.raise_finding("r", DAY, finding("uti", "digest", UTI))
    assert urgent and digest
    r.deliver_due(at("23:00"))
    assert [p["alerts"][0]["id"] for p in hooks.to("one")] == [urgent.id]
    assert hooks.to("two") == []
    r.deliver_due(at("07:30", date(2024, 6, 21)))  # quiet over, digest time not yet
    assert [p["kind"] for p in hooks.to("two")] == ["urgent"]
    r.deliver_due(at("08:05", date(2024, 6, 21)))
    r.deliver_due(at("09:00", date(2024, 6, 21)))  # once a day
    for name in ("one", "two"):
        digests = [p for p in hooks.to(name) if p["kind"] == "digest"]
        assert [[a["id"] for a in p["alerts"]] for p in digests] == [[digest.id]]
    assert len(hooks.to("one")) == 2  # the urgent one was not sent twice


def test_consent_filters_recipients(store, hooks):
    clock = Clock(at("10:00"))
    r = router(store, {"consent": {"carer": "all", "family": ["urgent"]},
                       "circle": [member(hooks, "one"), member(hooks, "two", "family"),
                                  member(hooks, "three", "practitioner"),
                                  member(hooks, "four", receives=["uti"])]}, clock)
    r.raise_finding("r", DAY, finding("uti", "digest", UTI))
    r.raise_finding("r", DAY, finding("not_up", "urgent"))
    r.deliver_due(at("10:00"))
    kinds = {n: sorted(a["condition"] for p in hooks.to(n) for a in p["alerts"])
             for n in ("one", "two", "three", "four")}
    assert kinds == {"one": ["not_up", "uti"], "two": ["not_up"], "three": [], "four": ["uti"]}


def test_escalation_to_the_next_member_after_the_deadline(store, hooks):
    clock = Clock(at("10:00"))
    r = router(store, {"consent": ALL, "escalation_minutes": 30,
                       "circle": [member(hooks, "one"), member(hooks, "two")]}, clock)
    a = r.raise_finding("r", DAY, finding("not_up"))
    b = r.raise_finding("r", DAY, finding("no_water"))
    assert a and b
    r.deliver_due(at("10:00"))
    r.deliver_due(at("10:29"))
    assert len(hooks.to("one")) == 2 and hooks.to("two") == []
    r.acknowledge(b.id, "one", "useful")
    r.deliver_due(at("10:31"))
    got = hooks.to("two")
    assert [(p["kind"], p["alerts"][0]["id"]) for p in got] == [("escalation", a.id)]


def test_webhook_retries_and_failures_are_recorded_not_raised(store, hooks):
    hooks.fail["/one"] = 2
    t = WebhookTransport(f"{hooks.url}/one", retries=3, backoff_s=0.01)
    assert t.send("", "s", "b", {"x": 1}) == 3
    assert hooks.to("one") == [{"x": 1}] and hooks.attempts["/one"] == 3

    hooks.fail["/two"] = 5
    clock = Clock(at("10:00"))
    policy = Policy.from_dict({"residents": {"r": {"consent": ALL,
                                                   "circle": [member(hooks, "two")]}}})
    r = AlertRouter(policy, store, lambda ch, url: WebhookTransport(url, 3, 0.01), clock)
    rec = r.raise_finding("r", DAY, finding())
    assert rec is not None
    (d,) = r.deliver_due(at("10:00"))
    assert d["state"] == "failed" and d["attempts"] == 3
    assert r.deliver_due(at("10:01")) == []  # not before the retry time
    (d,) = r.deliver_due(at("10:10"))
    assert d["state"] == "sent"
    row = store.query("SELECT state, attempts FROM deliveries WHERE alert_id = ?", (rec.id,))
    assert row == [("sent", 6)]
    assert hooks.to("two")[0]["alerts"][0]["text"] == "not_up evidence in words"


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """Start an SMTP server: ``smtp_server(**controller_kwargs)`` -> (port, Mailbox)."""
    started: list[Controller] = []

    def start(**kw: Any) -> tuple[int, Mailbox]:
        box, port = Mailbox(), free_port()
        ctl = Controller(box, hostname="127.0.0.1", port=port, **kw)
        ctl.start()
        started.append(ctl)
        return port, box

    yield start
    for ctl in started:
        ctl.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (and no other name):
    (certificate, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on the PATH")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=kinsight test", "-addext",
                    "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    return ctx


def gp_policy(smtp: dict[str, Any] | None = None) -> Policy:
    org = {"smtp": {"host": "127.0.0.1", "sender": "kinsight@example.org", **smtp}} \
        if smtp is not None else {}
    return Policy.from_dict({"organisation": org, "residents": {"r": {
        "consent": ALL, "circle": [{"name": "gp", "role": "practitioner",
                                    "email": "gp@example.org"}]}}})


def test_email_reaches_a_real_smtp_server_in_plaintext_only_when_the_policy_says_so(
        store, smtp_server):
    port, box = smtp_server()
    policy = gp_policy({"port": port, "tls": "none"})
    transport = default_transports(policy)("email", "gp@example.org")
    assert isinstance(transport, SmtpTransport) and transport.tls == "none"
    transport.retries = 1
    r = AlertRouter(policy, store, {"email": transport}, Clock(at("10:00")))
    rec = r.raise_finding("r", DAY, finding())
    assert rec is not None
    (d,) = r.deliver_due(at("10:00"))
    assert d["state"] == "sent"
    (env,) = box.got
    assert env.rcpt_tos == ["gp@example.org"]
    text = env.content.decode()
    assert "not_up evidence in words" in text and f"Alert {rec.id}" in text
    assert "Subject: Urgent: Not up, r" in text


def test_a_family_email_reads_as_a_person_wrote_it(store, smtp_server):
    """The member by name, the resident as they call her, the values with units, what
    to do, and no command to type."""
    port, box = smtp_server()
    policy = Policy.from_dict({
        "organisation": {"smtp": {"host": "127.0.0.1", "sender": "kinsight@example.org",
                                  "port": port, "tls": "none"},
                         "app_url": "https://care.example.org"},
        "residents": {"r": {"name": "Margaret Hill", "consent": ALL, "circle": [
            {"name": "Anna", "role": "family", "email": "anna@example.org",
             "known_as": "Mum"},
            {"name": "Dr Shah", "role": "practitioner", "email": "gp@example.org"}]}}})
    r = AlertRouter(policy, store, None, Clock(at("10:00")))
    water = Finding("dehydration", "digest", 3 * BASE_SCORE["dehydration"],
                    "Drinking less: water drawn today 0.4 L; usually 1.1 to 1.6 L",
                    [1200.0, 1350.0, 900.0, 400.0], series_of="water_ml")
    assert r.raise_finding("r", DAY, water) is not None
    sent = r.deliver_due(at("10:00"))
    assert {d["member"] for d in sent} == {"Anna", "Dr Shah"}
    by_to = {}
    for env in box.got:
        msg = email.message_from_bytes(env.content, policy=email.policy.default)
        body = msg.get_body()
        assert isinstance(msg, EmailMessage) and isinstance(body, EmailMessage)
        by_to[env.rcpt_tos[0]] = f"Subject: {msg['Subject']}\n{body.get_content()}"
    anna, gp = by_to["anna@example.org"], by_to["gp@example.org"]
    assert "Subject: Kinsight: 1 change to look at for Mum" in anna
    assert "Hello Anna," in anna and "in Mum's days" in anna
    assert "Mon 17 Jun 1.2 L, Tue 18 Jun 1.4 L, Wed 19 Jun 0.9 L, Thu 20 Jun 0.4 L" in anna
    assert "Please make sure Mum drinks enough" in anna
    assert "https://care.example.org/a/" in anna and "kinsight ack" not in anna
    assert "Hello Dr Shah," in gp and "for Margaret Hill" in gp


def test_acknowledgements_are_audited_and_false_alarms_lower_sensitivity(store):
    clock = Clock(at("10:00"))
    r = AlertRouter(Policy.from_dict({"organisation": {"throttle_hours": 0}}), store, {},
                    clock)
    base = BASE_SCORE["uti"]  # what a uti finding needs at sensitivity 1
    ids = []
    for _ in range(3):
        rec = r.raise_finding("r", DAY, finding("uti", "digest", 1.3 * base))
        assert rec is not None
        ids.append(rec.id)
        clock.ms += MIN
        if len(ids) < 3:
            r.acknowledge(rec.id, "nurse", "false-alarm", "was fine")
    assert learned_sensitivity(store, "r", "uti") == pytest.approx(0.8)
    assert learned_sensitivity(store, "r", "not_up") == 1.0
    r.acknowledge(ids[2], "gp", "useful")
    # at 0.8 a uti finding needs 1.25 times the base: 1.1 is held back, 1.3 raised
    assert r.raise_finding("r", DAY, finding("uti", "digest", 1.1 * base)) is None
    assert r.raise_finding("r", DAY, finding("uti", "digest", 1.3 * base)) is not None
    audit = store.query("SELECT alert_id, who, action, detail FROM audit WHERE action != "
                        "'raised' ORDER BY rowid")
    assert [(a, w, act) for a, w, act, _ in audit] == [
        (ids[0], "nurse", "acknowledged"), (ids[1], "nurse", "acknowledged"),
        (ids[1], "kinsight", "sensitivity"), (ids[2], "gp", "acknowledged")]
    assert json.loads(audit[0][3]) == {"outcome": "false alarm", "note": "was fine"}
    with pytest.raises(ValueError):
        r.acknowledge(ids[0], "x", "maybe")


def test_an_unanswered_incident_does_not_hide_the_next(store, hooks):
    clock = Clock(at("10:00"))
    r = router(store, {}, clock)
    assert r.raise_finding("r", DAY, finding("silent_home")) is not None
    assert r.raise_finding("r", DAY, finding("uti", "digest")) is not None
    clock.ms += 4 * 24 * 60 * MIN  # days later, nobody has acknowledged either
    later = DAY + timedelta(days=4)
    assert r.raise_finding("r", later, finding("silent_home")) is not None  # a new incident
    assert r.raise_finding("r", later, finding("uti", "digest")) is None  # the same change


def test_a_new_incident_is_raised_within_the_throttle_the_same_one_is_not(store, hooks):
    clock = Clock(at("10:00"))
    r = router(store, {}, clock)  # throttle 24 h

    def stay(start: str) -> Finding:
        return Finding("prolonged_toilet", "urgent", 2.0, "stayed long", [50.0],
                       subject=f"toilet/bathroom 2024-06-20T{start}")

    first = r.raise_finding("r", DAY, stay("09:00"))
    assert first is not None and first.subject == "toilet/bathroom 2024-06-20T09:00"
    clock.ms += 60 * MIN
    assert r.raise_finding("r", DAY, stay("09:00")) is None  # the same stay, found again
    clock.ms += 5 * 60 * MIN
    assert r.raise_finding("r", DAY, stay("15:10")) is not None  # another one: maybe a fall

    def stuck(sensor: str) -> Finding:
        return Finding("device", "digest", 1.5, f"{sensor} may be stuck", [], subject=sensor)

    assert r.raise_finding("r", DAY, stuck("fridge/kitchen")) is not None
    assert r.raise_finding("r", DAY, stuck("toilet/bathroom")) is not None  # not hidden
    assert r.raise_finding("r", DAY, stuck("fridge/kitchen")) is None  # told already


def test_a_store_from_before_alerts_had_a_subject_is_upgraded(tmp_path):
    import sqlite3

    from kinsight.alerts import list_alerts

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE alerts (id INTEGER PRIMARY KEY, resident TEXT NOT NULL,
            condition TEXT NOT NULL, severity TEXT NOT NULL, day TEXT NOT NULL,
            created_ms INTEGER NOT NULL, score REAL NOT NULL, text TEXT NOT NULL,
            series TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'open', outcome TEXT,
            acknowledged_by TEXT, acknowledged_ms INTEGER, snoozed_until_ms INTEGER);
        INSERT INTO alerts (resident, condition, severity, day, created_ms, score, text,
            series) VALUES ('r', 'not_up', 'urgent', '2024-06-20', 1, 2.0, 'old', '[]');
    """)
    con.commit()
    con.close()
    with Store(path) as s:
        (old,) = list_alerts(s)
        assert (old.text, old.subject) == ("old", "")
        r = AlertRouter(Policy(), s, {}, Clock(at("10:00")))
        new = r.raise_finding("r", DAY, Finding("device", "digest", 1.0, "x", [], subject="tap"))
        assert new is not None and new.subject == "tap"


def test_email_defaults_to_starttls_and_never_falls_back_to_plaintext(store, smtp_server):
    port, box = smtp_server()  # a server that offers no STARTTLS
    transport = default_transports(gp_policy({"port": port}))("email", "gp@example.org")
    assert isinstance(transport, SmtpTransport) and transport.tls == "starttls"
    assert default_transports(gp_policy({}))("email", "x").port == 587  # type: ignore[union-attr]
    with pytest.raises(DeliveryError, match="SMTPNotSupportedError") as refused:
        transport.send("gp@example.org", "s", "private words", {})
    assert refused.value.attempts == 1  # not retried: the server will not change its mind
    assert box.got == []


def test_a_self_signed_certificate_is_refused_by_default(store, smtp_server, certificate):
    ctx = server_context(certificate)
    port, box = smtp_server(tls_context=ctx)
    sport, sbox = smtp_server(ssl_context=ctx)
    for tls, p in (("starttls", port), ("implicit", sport)):
        t = SmtpTransport("127.0.0.1", p, "kinsight@example.org", retries=3, backoff_s=0.01,
                          tls=tls)
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED") as refused:
            t.send("gp@example.org", "s", "private words", {})
        assert refused.value.attempts == 1
    assert box.got == [] and sbox.got == []
    # Through the router, the refusal is a failed delivery, kept to be tried again.
    r = AlertRouter(gp_policy({"port": port}), store, clock=Clock(at("10:00")))
    assert r.raise_finding("r", DAY, finding()) is not None
    (d,) = r.deliver_due(at("10:00"))
    assert d["state"] == "failed" and box.got == []


def test_email_over_starttls_and_implicit_tls_with_a_trusted_certificate(
        smtp_server, certificate):
    ctx = server_context(certificate)
    port, box = smtp_server(tls_context=ctx)
    sport, sbox = smtp_server(ssl_context=ctx)
    for p, tls in ((port, "starttls"), (sport, "implicit")):
        t = default_transports(gp_policy({"port": p, "tls": tls,
                                          "ca_file": str(certificate[0])}))("email", "x")
        assert t is not None
        assert t.send("gp@example.org", f"over {tls}", "private words", {}) == 1
    assert [e.rcpt_tos for e in box.got + sbox.got] == [["gp@example.org"]] * 2
    assert "private words" in box.got[0].content.decode()
    # The certificate names 127.0.0.1 only: the same server called localhost is refused.
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED.*mismatch"):
        SmtpTransport("localhost", port, "k@example.org", retries=1,
                      ca_file=str(certificate[0])).send("gp@example.org", "s", "b", {})


def test_webhooks_are_signed_over_the_timestamp_and_the_body(store, hooks):
    secret = "a long shared secret"
    policy = Policy.from_dict({"organisation": {"webhook_secret": "the organisation's"},
                               "residents": {"r": {"consent": ALL, "circle": [
                                   member(hooks, "one", webhook_secret=secret),
                                   member(hooks, "two")]}}})
    r = AlertRouter(policy, store, clock=Clock(at("10:00")))
    assert r.raise_finding("r", DAY, finding()) is not None
    before = time.time()
    assert [d["state"] for d in r.deliver_due(at("10:00"))] == ["sent", "sent"]
    (one_headers, one_body), (two_headers, two_body) = [
        (h, b) for path, h, b in sorted(hooks.requests, key=lambda x: x[0])]
    stamp, signature = one_headers["X-Kinsight-Timestamp"], one_headers["X-Kinsight-Signature"]
    assert before - 1 <= int(stamp) <= time.time() + 1
    # What a receiver in any language does: HMAC-SHA256 over "<timestamp>.<body>".
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + one_body, hashlib.sha256)
    assert signature == "sha256=" + expected.hexdigest()
    assert verify_signature(secret, stamp, one_body, signature)
    assert not verify_signature(secret, stamp, one_body.replace(b"not_up", b"not_uq"),
                                signature)
    assert not verify_signature("another secret!!", stamp, one_body, signature)
    assert not verify_signature(secret, str(int(stamp) + 1), one_body, signature)
    assert not verify_signature(secret, stamp, one_body, signature, now_s=int(stamp) + 301)
    # Member "two" has no secret of its own: the organisation's signs it.
    assert verify_signature("the organisation's", two_headers["X-Kinsight-Timestamp"],
                            two_body, two_headers["X-Kinsight-Signature"])


def test_a_webhook_without_a_secret_is_sent_unsigned_and_each_retry_is_signed_afresh(hooks):
    WebhookTransport(f"{hooks.url}/plain", retries=1).send("", "s", "b", {"x": 1})
    assert "X-Kinsight-Signature" not in hooks.requests[-1][1]
    stamps = iter([1_800_000_000, 1_800_000_042])
    hooks.fail["/again"] = 1
    t = WebhookTransport(f"{hooks.url}/again", retries=2, backoff_s=0.01, secret="s" * 16,
                         clock_s=lambda: next(stamps))
    assert t.send("", "s", "b", {"x": 1}) == 2
    sent = [(h["X-Kinsight-Timestamp"], h["X-Kinsight-Signature"], b)
            for p, h, b in hooks.requests if p == "/again"]
    assert [s for s, _, _ in sent] == ["1800000000", "1800000042"]
    assert all(verify_signature("s" * 16, s, b, sig, now_s=int(s)) for s, sig, b in sent)
