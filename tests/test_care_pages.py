"""The care team's pages through HTTP (Starlette's test client on the real app):
signed out goes to /login, sign-in with CSRF and rate limits, the triage order,
acknowledging an alert with an outcome and seeing it in the trail, a family member
refused another resident (403), a form without its CSRF token refused, security
headers and a phone viewport on every page."""

from __future__ import annotations

import re
from datetime import date

import pytest
from starlette.testclient import TestClient

from kinsight.alerts import AlertRouter, Policy, get_alert
from kinsight.learning import Finding
from kinsight.residents import place
from kinsight.store import Store
from kinsight.web.care import SECURITY_HEADERS, make_care_app
from kinsight.web.sessions import SignInLimiter
from kinsight.web.users import add_user

DAY = date(2024, 6, 3)
NOW = 1_717_400_000_000


@pytest.fixture
def db(fresh_db):
    path = fresh_db("care")
    with Store(path) as store:
        for node, resident in enumerate(("ada", "ben", "cy", "dot"), start=1):
            place(store, node, resident, "hall")
        router = AlertRouter(Policy(), store, clock=lambda: NOW)
        router.raise_finding("ben", DAY, Finding("uti", "digest", 3.0,
                                                 "Toilet visits at night: 4; usually 1"))
        router.raise_finding("cy", DAY, Finding("not_up", "urgent", 2.0,
                                                "Not seen up and about yet at 11:00"))
        router.raise_finding("dot", DAY, Finding("device", "digest", 1.0,
                                                 "The tap sensor may be stuck", [],
                                                 subject="tap"))
        add_user(store, "ann", "coordinator", [], "ann's passphrase", by="t", now_ms=0)
        add_user(store, "fay", "family", ["ben"], "fay's passphrase", by="t", now_ms=0)
    return path


def client(db: str, **kw: object) -> TestClient:
    return TestClient(make_care_app(db, Policy(), clock=lambda: NOW, **kw),
                      follow_redirects=False)


def sign_in(c: TestClient, name: str, password: str) -> int:
    page = c.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return c.post("/login", data={"username": name, "password": password, "csrf": csrf,
                                  "next": "/"}).status_code


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_signed_out_every_page_goes_to_the_sign_in(db):
    c = client(db)
    for path in ("/", "/residents/ben"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    page = c.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    for k, v in SECURITY_HEADERS.items():
        assert page.headers[k] == v
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_the_board_puts_urgent_first_then_health_then_equipment(db):
    c = client(db)
    assert sign_in(c, "ann", "ann's passphrase") == 303
    r = c.get("/")
    assert r.status_code == 200
    order = re.findall(r'href="/residents/([^"]+)"', r.text)
    assert order == ["cy", "ben", "dot", "ada"]
    assert "Not seen up and about yet at 11:00" in r.text
    assert re.findall(r'class="rank">([^<]+)<', r.text) == [
        "urgent", "to look at", "equipment", "calm"]
    assert client_search(c, "do") == ["dot"]


def client_search(c: TestClient, q: str) -> list[str]:
    return re.findall(r'href="/residents/([^"]+)"', c.get("/", params={"q": q}).text)


def test_acknowledging_with_an_outcome_is_recorded_and_shown_in_the_trail(db):
    c = client(db)
    sign_in(c, "ann", "ann's passphrase")
    page = c.get("/residents/cy")
    assert page.status_code == 200 and "Acknowledge" in page.text
    aid = int(re.search(r'action="/alerts/(\d+)/ack"', page.text).group(1))
    r = c.post(f"/alerts/{aid}/ack", data={"csrf": csrf_of(page.text), "outcome": "useful",
                                           "note": "called her, she had overslept"})
    assert r.status_code == 303 and r.headers["location"] == "/residents/cy"
    with Store(db) as store:
        alert = get_alert(store, aid)
        assert alert is not None and alert.state == "acknowledged"
        assert (alert.acknowledged_by, alert.outcome) == ("ann", "useful")
    page = c.get("/residents/cy")
    assert "acknowledged by ann" in page.text and "ann" in page.text.split("What was done")[1]


def test_a_form_without_its_csrf_token_is_refused(db):
    c = client(db)
    sign_in(c, "ann", "ann's passphrase")
    page = c.get("/residents/cy")
    aid = int(re.search(r'action="/alerts/(\d+)/ack"', page.text).group(1))
    for data in ({"outcome": "useful"}, {"outcome": "useful", "csrf": "forged"}):
        assert c.post(f"/alerts/{aid}/ack", data=data).status_code == 403
    with Store(db) as store:
        assert get_alert(store, aid).state == "open"
    # ... and the sign-in form without the token of its own page
    fresh = client(db)
    assert fresh.post("/login", data={"username": "ann", "password": "ann's passphrase",
                                      "csrf": "x"}).status_code == 403


def test_a_family_member_sees_their_resident_and_no_other(db):
    c = client(db)
    assert sign_in(c, "fay", "fay's passphrase") == 303
    assert re.findall(r'href="/residents/([^"]+)"', c.get("/").text) == ["ben"]
    assert c.get("/residents/ben").status_code == 200
    assert c.get("/residents/cy").status_code == 403
    page = c.get("/residents/ben")
    with Store(db) as store:
        cy_alert = store.query("SELECT id FROM alerts WHERE resident = 'cy'")[0][0]
    r = c.post(f"/alerts/{cy_alert}/ack", data={"csrf": csrf_of(page.text),
                                                "outcome": "useful"})
    assert r.status_code == 403


def test_wrong_passwords_are_limited(db):
    c = client(db, limiter=SignInLimiter(max_failures=3, window_s=900))
    assert [sign_in(c, "ann", "wrong one!") for _ in range(3)] == [401] * 3
    assert sign_in(c, "ann", "ann's passphrase") == 429  # even the right one, for now
    assert sign_in(c, "nobody", "whatever it is") == 401


def test_signing_out_ends_the_session(db):
    c = client(db)
    sign_in(c, "ann", "ann's passphrase")
    page = c.get("/")
    assert c.post("/logout", data={"csrf": csrf_of(page.text)}).status_code == 303
    assert c.get("/").status_code == 303


def test_the_resident_page_draws_the_days_with_units_and_a_sentence_each(db):
    from datetime import datetime, timedelta

    from kinsight.service.days import keep_days

    today = datetime.fromtimestamp(NOW / 1000).date()
    days = [today - timedelta(days=i) for i in range(30, 0, -1)]
    feats = {d: {"water_ml": 1500.0 + 10 * i, "toilet_night": float(i % 3)}
             for i, d in enumerate(days)}
    with Store(db) as store:
        keep_days(store, "ben", feats, days)
    c = client(db)
    sign_in(c, "ann", "ann's passphrase")
    page = c.get("/residents/ben").text
    assert "The last 60 days" in page
    assert "<strong>Water drawn (L)</strong>" in page and "<polyline points=" in page
    last = days[-1]
    assert f"Water drawn: 1.8 L on {last:%d %b}; usually 1.5 to 1.8 L over these 30 days." in page
    assert 'role="img" aria-label="Toilet visits at night:' in page


def test_family_see_only_what_the_residents_consent_shares(db):
    policy = Policy.from_dict({"residents": {"ben": {"consent": {"family": ["urgent"]}}}})
    with Store(db) as store:
        AlertRouter(policy, store, clock=lambda: NOW).raise_finding(
            "ben", DAY, Finding("prolonged_toilet", "urgent", 2.0,
                                "Stayed in the bathroom for 80 min"))
    c = TestClient(make_care_app(db, policy, clock=lambda: NOW), follow_redirects=False)
    sign_in(c, "fay", "fay's passphrase")
    page = c.get("/residents/ben").text
    assert "Stayed in the bathroom for 80 min" in page
    assert "Toilet visits at night: 4" not in page  # a digest: not shared with family
    sign_in(c, "ann", "ann's passphrase")
    assert "Toilet visits at night: 4" in c.get("/residents/ben").text


def test_the_equipment_page_shows_each_homes_nodes_as_their_status_says(db):
    from kinsight.ingest import Ingestor
    from kinsight.wire import Header, encode_frame

    key = bytes(range(32))
    with Store(db) as store:
        store.set_node_key(2, key, now_ms=0)
        ingestor = Ingestor(store, clock_ms=lambda: NOW)
        status = encode_frame(key, "status", Header(node_id=2, boot=1, seq=1,
                                                    time_s=NOW // 1000 - 60),
                              {"firmware": "0.9.1", "uptime_s": 3600, "reset_cause": "soft",
                               "queue_depth": 3, "rssi_dbm": -67, "supply_mv": 3300})
        forged = encode_frame(bytes(32), "status", Header(node_id=2, boot=1, seq=2,
                                                          time_s=NOW // 1000),
                              {"firmware": "x", "uptime_s": 1, "reset_cause": "soft"})
        results = ingestor.ingest_batch([status, forged])
        assert [r.status for r in results] == ["accepted", "rejected"]
    c = client(db)
    sign_in(c, "ann", "ann's passphrase")
    page = c.get("/equipment").text
    ben = page.split('href="/residents/ben"')[1].split("</ol>")[0]
    assert "node 2" in ben and "firmware 0.9.1" in ben and "3 frames waiting" in ben
    assert "signal -67 dBm" in ben and "supply 3.30 V" in ben and "alive" in ben
    assert "refused: bad tag 1" in ben
    family = client(db)
    sign_in(family, "fay", "fay's passphrase")
    page = family.get("/equipment").text
    assert 'href="/residents/ben"' in page and 'href="/residents/cy"' not in page


def test_the_equipment_page_says_why_a_node_last_crashed_and_how_its_update_went(db):
    from kinsight.ingest import Ingestor
    from kinsight.store import updates
    from kinsight.wire import Header, encode_frame

    key = bytes(range(32))
    with Store(db) as store:
        store.set_node_key(3, key, now_ms=0)
        first = updates.stage(store, 3, b"KSB1" + bytes(900), "0.9.2", now_ms=NOW - 5000)
        ingestor = Ingestor(store, clock_ms=lambda: NOW)
        ask = encode_frame(key, "update_get", Header(node_id=3, boot=4, seq=0,
                                                     time_s=NOW // 1000 - 90),
                           {"bundle": first, "offset": 0, "pieces": 3})
        assert ingestor.ingest_batch([ask])[0].status == "accepted"
        pieces = [f for n, f in ingestor.acks if n == 3 and f[1] == 7]
        assert len(pieces) == 3  # kind 7: update pieces, with the ack
    c = client(db)
    sign_in(c, "ann", "ann's passphrase")
    cy = c.get("/equipment").text.split('href="/residents/cy"')[1].split("</ol>")[0]
    assert "firmware update 1 (0.9.2): waiting for the node, 63% fetched" in cy
    with Store(db) as store:
        status = encode_frame(key, "status", Header(node_id=3, boot=5, seq=0,
                                                    time_s=NOW // 1000 - 60), {
            "firmware": "0.9.2", "uptime_s": 30, "reset_cause": "hard", "crashes": 1,
            "crash_time_s": NOW // 1000 - 70, "crash_cause": "power_on",
            "crash_what": "ImportError: no module named 'sensors'", "bundle_failed": first})
        assert Ingestor(store, clock_ms=lambda: NOW).ingest_batch([status])[0].status == \
            "accepted"
        assert [u.state for u in updates.updates(store, 3)] == ["failed"]
    cy = c.get("/equipment").text.split('href="/residents/cy"')[1].split("</ol>")[0]
    assert "Last crash: ImportError: no module named &#39;sensors&#39;" in cy
    assert "failed to start, the node went back to its firmware before" in cy


def test_the_report_writes_the_same_pages_as_static_html(db, tmp_path, capsys):
    from datetime import datetime, timedelta

    from kinsight.cli import main
    from kinsight.service.days import keep_days

    last = datetime.fromtimestamp(NOW / 1000).date() - timedelta(days=400)  # a history
    days = [last - timedelta(days=i) for i in range(9, -1, -1)]
    with Store(db) as store:
        keep_days(store, "ben", {d: {"water_ml": 1200.0} for d in days}, days)
    out = tmp_path / "report"
    assert main(["report", "--db", db, "--out", str(out)]) == 0
    index = (out / "index.html").read_text()
    assert re.findall(r'href="residents/([^"]+)\.html"', index) == ["cy", "ben", "dot", "ada"]
    ben = (out / "residents" / "ben.html").read_text()
    assert 'href="../app.css"' in ben and "<form" not in ben and "<form" not in index
    assert "Toilet visits at night: 4; usually 1" in ben
    assert f"Water drawn: 1.2 L on {last:%d %b}" in ben  # the history's own last 60 days
    assert (out / "equipment.html").exists() and (out / "app.css").exists()
    assert main(["report", "--db", db, "--out", str(out), "--resident", "nobody"]) == 1
    assert "no resident nobody" in capsys.readouterr().err


def test_a_messages_signed_link_opens_the_alert_after_sign_in(db, hooks):
    from kinsight.alerts import WebhookTransport
    from kinsight.alerts.messages import compose

    policy = Policy.from_dict({
        "organisation": {"app_url": "https://care.example.org"},
        "residents": {"cy": {"consent": {"carer": "all"}, "circle": [
            {"name": "one", "role": "carer", "webhook": f"{hooks.url}/one"}]}}})
    with Store(db) as store:
        router = AlertRouter(policy, store, lambda ch, url: WebhookTransport(url, retries=1),
                             clock=lambda: NOW)
        router.deliver_due(NOW)
    (payload,) = hooks.to("one")
    link = payload["alerts"][0]["link"]
    assert link.startswith("https://care.example.org/a/")
    path = link.removeprefix("https://care.example.org")
    aid = payload["alerts"][0]["id"]
    c = client(db)
    r = c.get(path)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=" + path
    sign_in(c, "ann", "ann's passphrase")
    r = c.get(path)
    assert r.status_code == 303 and r.headers["location"] == f"/residents/cy#alert-{aid}"
    assert f'id="alert-{aid}"' in c.get("/residents/cy").text
    assert c.get(path[:-3] + "xyz").status_code == 404  # not ours
    later = TestClient(make_care_app(db, policy, clock=lambda: NOW + 8 * 86_400_000),
                       follow_redirects=False)
    assert later.get(path).status_code == 410  # a week old
    fay = client(db)
    sign_in(fay, "fay", "fay's passphrase")
    assert fay.get(path).status_code == 403  # not her resident
    # ... and an e-mail reads it as the way to answer
    with Store(db) as store:
        from kinsight.alerts import get_alert

        alert = get_alert(store, aid)
    _subject, body, _payload = compose("cy", "urgent", [alert], links={aid: link})
    assert f"Open it, and say what you found: {link}" in body and "kinsight ack" not in body


TEAM_POLICY = Policy.from_dict({"residents": {
    "ada": {"team": "North", "name": "Ada Lovell"},
    "ben": {"team": "South", "name": "Ben Ortiz", "consent": {"family": "digest"},
            "circle": [{"name": "Fay", "role": "family", "email": "fay@example.org"},
                       {"name": "Dr Shah", "role": "practitioner",
                        "webhook": "https://gp.example.org/hook"}]},
    "cy": {"team": "North"}, "dot": {"team": "South"}}})


def team_client(db: str) -> TestClient:
    return TestClient(make_care_app(db, TEAM_POLICY, clock=lambda: NOW),
                      follow_redirects=False)


def test_the_board_filters_by_team_and_finds_by_name(db):
    c = team_client(db)
    sign_in(c, "ann", "ann's passphrase")
    page = c.get("/")
    assert '<option value="North">North</option>' in page.text
    north = re.findall(r'href="/residents/([^"]+)"', c.get("/", params={"team": "North"}).text)
    assert north == ["cy", "ada"]  # still in the order of attention
    assert client_search(c, "ortiz") == ["ben"]
    assert "<strong>Ada Lovell</strong>" in page.text


def test_snooze_and_away_from_the_page_are_audited_and_hold_alerts(db):
    c = team_client(db)
    sign_in(c, "ann", "ann's passphrase")
    page = c.get("/residents/cy")
    aid = int(re.search(r'action="/alerts/(\d+)/snooze"', page.text).group(1))
    csrf = csrf_of(page.text)
    assert c.post(f"/alerts/{aid}/snooze", data={"csrf": csrf, "days": "30"}).status_code == 400
    assert c.post(f"/alerts/{aid}/snooze", data={"days": "3"}).status_code == 403  # no token
    assert c.post(f"/alerts/{aid}/snooze", data={"csrf": csrf, "days": "3"}).status_code == 303
    with Store(db) as store:
        alert = get_alert(store, aid)
        assert alert.state == "snoozed" and alert.snoozed_until_ms == NOW + 3 * 86_400_000
    assert "snoozed until" in c.get("/residents/cy").text
    # Away for a week: the days in it raise nothing, the day after does.
    r = c.post("/residents/ada/away", data={"csrf": csrf, "from": "2024-06-03",
                                            "to": "2024-06-09"})
    assert r.status_code == 303
    assert c.post("/residents/ada/away", data={"csrf": csrf, "from": "2024-06-09",
                                               "to": "2024-06-03"}).status_code == 400
    page = c.get("/residents/ada").text
    assert "Away from home 2024-06-03 to 2024-06-09 (set by ann)" in page
    with Store(db) as store:
        router = AlertRouter(TEAM_POLICY, store, clock=lambda: NOW)
        uti = Finding("uti", "digest", 3.0, "Toilet visits at night: 4; usually 1")
        assert router.raise_finding("ada", date(2024, 6, 5), uti) is None
        assert router.raise_finding("ada", date(2024, 6, 10), uti) is not None
        trail = store.query("SELECT who, action, detail FROM audit WHERE resident IN "
                            "('ada', 'cy') AND who = 'ann' ORDER BY action")
    assert [t[1] for t in trail] == ["away set", "snoozed"]
    assert c.post("/residents/ada/away/end", data={"csrf": csrf, "from": "2024-06-03"}
                  ).status_code == 303
    assert "Away from home 2024" not in c.get("/residents/ada").text
    assert "away ended" in c.get("/residents/ada").text


def test_family_see_the_circle_without_addresses_and_cannot_hold_alerts(db):
    ann = team_client(db)
    sign_in(ann, "ann", "ann's passphrase")
    page = ann.get("/residents/ben").text
    assert "Fay (family): hears of urgent, digest, by e-mail fay@example.org" in page
    assert "Dr Shah (practitioner): hears of urgent, digest, by webhook" in page
    assert "gp.example.org" not in page  # a webhook's URL may carry a secret
    assert "family: digest; practitioner: nothing" in page
    fay = team_client(db)
    sign_in(fay, "fay", "fay's passphrase")
    page = fay.get("/residents/ben").text
    assert "Fay (family): hears of urgent, digest</li>" in page
    assert "fay@example.org" not in page and "Snooze" not in page and "Set away" not in page
    aid = int(re.search(r'action="/alerts/(\d+)/ack"', page).group(1))
    assert fay.post(f"/alerts/{aid}/snooze", data={"csrf": csrf_of(page), "days": "1"}
                    ).status_code == 403
    assert fay.post("/residents/ben/away", data={"csrf": csrf_of(page), "from": "2024-06-03",
                                                 "to": "2024-06-04"}).status_code == 403


def test_family_see_on_the_board_only_what_consent_shares(db):
    shy = Policy.from_dict({"residents": {"ben": {"consent": {"family": "urgent"}}}})
    fay = TestClient(make_care_app(db, shy, clock=lambda: NOW), follow_redirects=False)
    sign_in(fay, "fay", "fay's passphrase")
    board = fay.get("/").text
    assert "Toilet visits at night" not in board and 'class="rank">calm<' in board
    assert "Toilet visits at night" not in fay.get("/residents/ben").text
    ann = TestClient(make_care_app(db, shy, clock=lambda: NOW), follow_redirects=False)
    sign_in(ann, "ann", "ann's passphrase")
    assert "Toilet visits at night" in ann.get("/").text
