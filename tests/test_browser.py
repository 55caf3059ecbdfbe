"""The care team's app in a real Chromium (Debian's ``chromium``, driven by Selenium
through Debian's ``chromedriver``), served by a real ``kinsight serve --http`` over a
store of simulated residents analysed by ``kinsight analyse``, with its e-mail going
to a real SMTP server on loopback:

sign-in; the triage order; acknowledging an alert with an outcome and a note and
seeing it in the trail; a family account refused another resident; a form whose
CSRF token was taken out refused; a 390 px phone viewport with no horizontal scroll,
readable text, large targets and nothing loaded from elsewhere; the signed link of
an e-mail the service sent opening the alert, acknowledged from there.

The screenshots in docs/screenshots are these pages: ``KINSIGHT_SCREENSHOTS=DIR``
saves them there as the tests run.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from kinsight.alerts import AlertRouter, Policy, get_alert, list_alerts
from kinsight.learning import Finding
from kinsight.residents import store_activities
from kinsight.service.analysis import analyse
from kinsight.simulation import simulate
from kinsight.store import Store
from kinsight.web.users import add_user
from support import Mailbox, free_port

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMEDRIVER = (shutil.which("chromedriver") or "/usr/lib/chromium-browser/chromedriver")
TZ = "Europe/London"
DAYS = 60
RANKS = ["urgent", "to look at", "equipment", "calm"]
PASSWORDS = {"ann": "ann's passphrase", "anna": "anna's passphrase"}


def _browser_or_skip() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    why = ("Chromium and ChromeDriver are not installed (./run test installs them: "
           "apt-get install chromium chromium-driver)")
    if os.environ.get("KINSIGHT_SYSTEM_PARTS") == "installed":
        pytest.fail(why)
    pytest.skip(why)


@dataclass
class Site:
    url: str
    db: Path
    box: Mailbox
    urgent_id: int
    shots: Path


def _policy(smtp_port: int, http_port: int) -> dict[str, Any]:
    return {
        "organisation": {"smtp": {"host": "127.0.0.1", "port": smtp_port, "tls": "none",
                                  "sender": "kinsight@example.org"},
                         "app_url": f"http://127.0.0.1:{http_port}"},
        "residents": {
            "margaret": {"name": "Margaret Hill", "team": "North",
                         "consent": {"family": "all", "practitioner": "all"},
                         "circle": [{"name": "Anna", "role": "family", "known_as": "Mum",
                                     "email": "anna@example.org", "receives": "urgent"}]},
            "bill": {"name": "Bill Evans", "team": "South"},
            "john": {"name": "John Parry", "team": "North"},
            "daphne": {"name": "Daphne Cole", "team": "South"}}}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _browser_or_skip()
    tmp = tmp_path_factory.mktemp("browser")
    db = tmp / "care.db"
    start = date.today() - timedelta(days=DAYS)
    with Store(db) as store:
        for persona, seed, rid, change in (
                ("mrs_s", 12, "margaret", {"onset_day": 30}), ("healthy", 11, "bill", {}),
                ("john", 14, "john", {"onset_day": 14, "lead_days": 32}),
                ("daphne", 13, "daphne", {"onset_day": 26})):
            _scenario, acts = simulate(persona, seed, DAYS, start, resident=rid,
                                       outages=False, **change)
            store_activities(store, acts, TZ)
        # The days learnt and their findings raised as a deployment's mornings would.
        for day in range(15, DAYS + 1):
            morning = datetime.combine(start + timedelta(days=day), dtime(8, 0),
                                       ZoneInfo(TZ))
            ms = int(morning.timestamp() * 1000)
            analyse(store, AlertRouter(Policy(), store, clock=lambda ms=ms: ms), ms,
                    deliver=False)
    box = Mailbox()
    smtp_port, http_port = free_port(), free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    policy_path = tmp / "policy.json"
    policy_path.write_text(json.dumps(_policy(smtp_port, http_port)))
    policy = Policy.load(policy_path)
    with Store(db) as store:
        router = AlertRouter(policy, store)
        urgent = router.raise_finding("margaret", date.today(), Finding(
            "not_up", "urgent", 2.0, "Not seen up and about yet at 10:30; usually up by "
            "08:15"))
        assert urgent is not None
        assert router.raise_finding("daphne", date.today(), Finding(
            "device", "digest", 2.0, "The tap sensor has reported nothing for 2 days; please "
            "check the equipment (this is not a health alert)", [], subject="tap")) is not None
        for name, role, whose in (("ann", "coordinator", []), ("anna", "family", ["margaret"])):
            add_user(store, name, role, whose, PASSWORDS[name], by="test",
                     now_ms=int(time.time() * 1000))
    err = (tmp / "serve.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinsight.cli", "serve", "--db", str(db), "--udp",
         "127.0.0.1:0", "--http", f"127.0.0.1:{http_port}", "--policy", str(policy_path)],
        stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline(), proc.stdout.readline()]
    assert lines[1].startswith("listening http"), lines + [(tmp / "serve.err").read_text()]
    shots = Path(os.environ.get("KINSIGHT_SCREENSHOTS") or tmp / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    yield Site(lines[1].split()[-1], db, box, urgent.id, shots)
    proc.terminate()
    assert proc.wait(20) == 0, (tmp / "serve.err").read_text()
    err.close()
    smtp.stop()


def _chrome(width: int = 1280, height: int = 900, phone: bool = False) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}"):
        opts.add_argument(flag)
    # An explicit driver: Selenium Manager never goes looking on the internet.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    if phone:  # an iPhone-sized screen, as the browser's device emulation sets it
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 3, "mobile": True})
    return driver


@pytest.fixture
def chrome() -> Iterator[Any]:
    driver = _chrome()
    yield driver
    driver.quit()


@pytest.fixture
def phone() -> Iterator[Any]:
    driver = _chrome(390, 844, phone=True)
    yield driver
    driver.quit()


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By
    return {"css": By.CSS_SELECTOR, "name": By.NAME, "id": By.ID}[kind]


def submit(driver: Any, button: Any) -> None:
    """Click a form's button and wait for the page it leads to."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(_by("css"), "html")
    button.click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(old))


def sign_in(driver: Any, site: Site, name: str, path: str = "/") -> None:
    driver.get(site.url + path)
    assert "/login" in driver.current_url
    driver.find_element(_by("name"), "username").send_keys(name)
    driver.find_element(_by("name"), "password").send_keys(PASSWORDS[name])
    submit(driver, driver.find_element(_by("css"), "form button"))


def ranks(driver: Any) -> list[tuple[str, str]]:
    """(rank, resident id) of each row of the board, top to bottom."""
    out = []
    for li in driver.find_elements(_by("css"), "ol.board li"):
        href = li.find_element(_by("css"), "a").get_attribute("href")
        out.append((li.find_element(_by("css"), ".rank").text.lower(),
                    href.rsplit("/", 1)[1]))
    return out


def test_sign_in_then_the_board_in_the_order_of_attention(site, chrome):
    chrome.get(site.url + "/residents/bill")
    assert chrome.current_url.startswith(site.url + "/login?next=")
    sign_in(chrome, site, "ann")
    assert chrome.current_url == site.url + "/"
    assert chrome.find_element(_by("css"), "h1").text == "Who needs attention"
    rows = ranks(chrome)
    assert {r for _rank, r in rows} == {"margaret", "bill", "john", "daphne"}
    order = [RANKS.index(rank) for rank, _r in rows]
    assert order == sorted(order), rows
    assert rows[0] == ("urgent", "margaret")  # the urgent alert of this morning
    assert ("equipment", "daphne") in rows or rows[-1][1] != "daphne"
    assert "Not seen up and about yet" in chrome.find_element(_by("css"), "ol.board li").text
    chrome.save_screenshot(str(site.shots / "board-desktop.png"))
    # A team narrows the board, in the same order.
    from selenium.webdriver.support.ui import Select
    Select(chrome.find_element(_by("id"), "team")).select_by_value("North")
    submit(chrome, chrome.find_element(_by("css"), "form[role=search] button"))
    assert [r for _rank, r in ranks(chrome)][0] == "margaret"
    assert {r for _rank, r in ranks(chrome)} == {"margaret", "john"}


def test_acknowledge_with_an_outcome_then_the_trail_says_so(site, chrome):
    with Store(site.db) as store:
        mine = [a for a in list_alerts(store, "john", "open")]
    assert mine, "the simulated crisis raised nothing for john"
    aid = mine[0].id
    sign_in(chrome, site, "ann", "/residents/john")
    assert chrome.find_element(_by("css"), "h1").text == "John Parry"
    chrome.set_window_size(1280, 1700)  # the charts and the first alerts
    chrome.save_screenshot(str(site.shots / "resident-desktop.png"))
    form = f"form[action='/alerts/{aid}/ack']"
    # No outcome chosen yet: the browser itself holds the form back.
    assert chrome.execute_script(f"return document.querySelector(\"{form}\").checkValidity()"
                                 ) is False
    from selenium.webdriver.support.ui import Select
    Select(chrome.find_element(_by("id"), f"outcome-{aid}")).select_by_value("useful")
    chrome.find_element(_by("id"), f"note-{aid}").send_keys("Visited; GP informed")
    submit(chrome, chrome.find_element(_by("css"), f"form[action='/alerts/{aid}/ack'] button"))
    assert chrome.current_url == site.url + "/residents/john"
    item = chrome.find_element(_by("id"), f"alert-{aid}").text
    assert "acknowledged by ann" in item and "useful" in item
    trail = chrome.find_element(_by("css"), "main").text.split("What was done")[1]
    assert "ann: acknowledged" in trail and "Visited; GP informed" in trail
    with Store(site.db) as store:
        alert = get_alert(store, aid)
    assert alert is not None and (alert.state, alert.outcome) == ("acknowledged", "useful")


def test_a_family_account_is_refused_another_resident(site, chrome):
    sign_in(chrome, site, "anna")
    assert [r for _rank, r in ranks(chrome)] == ["margaret"]
    chrome.get(site.url + "/residents/bill")
    assert "not a resident you look after" in chrome.find_element(_by("css"), "body").text
    status = chrome.execute_script(
        "return performance.getEntriesByType('navigation')[0].responseStatus")
    assert status == 403
    assert "Bill" not in chrome.page_source


def test_a_form_whose_csrf_token_was_taken_out_is_refused(site, chrome):
    with Store(site.db) as store:
        alert = next(a for a in list_alerts(store, "margaret", "open")
                     if a.id != site.urgent_id)
    sign_in(chrome, site, "ann", "/residents/margaret")
    from selenium.webdriver.support.ui import Select
    Select(chrome.find_element(_by("id"), f"outcome-{alert.id}")).select_by_value("useful")
    chrome.execute_script(
        f"document.querySelector(\"form[action='/alerts/{alert.id}/ack'] "
        "input[name=csrf]\").remove()")
    submit(chrome, chrome.find_element(_by("css"), f"form[action='/alerts/{alert.id}/ack'] button"))
    assert "this form has expired" in chrome.find_element(_by("css"), "body").text
    with Store(site.db) as store:
        after = get_alert(store, alert.id)
    assert after is not None and after.state == "open"


def _fits(driver: Any) -> None:
    width = driver.execute_script("return window.innerWidth")
    scroll = driver.execute_script("return document.documentElement.scrollWidth")
    assert width == 390 and scroll <= width, (driver.current_url, scroll)
    font = driver.execute_script(
        "return parseFloat(getComputedStyle(document.body).fontSize)")
    assert font >= 16
    for h in driver.execute_script("return [...document.querySelectorAll('button, select, "
                                   "input:not([type=hidden])')].map(e => "
                                   "e.getBoundingClientRect().height)"):
        assert h >= 44, driver.current_url  # a finger's target
    unlabelled = driver.execute_script(
        "return [...document.querySelectorAll('select, input:not([type=hidden])')]"
        ".filter(e => e.labels.length === 0).map(e => e.name)")
    assert unlabelled == [], driver.current_url
    # Everything the page loaded came from the app itself.
    origin = driver.execute_script("return location.origin")
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(origin + "/") for u in loaded), loaded


def test_on_a_phone_nothing_scrolls_sideways_and_targets_are_large(site, phone):
    phone.get(site.url + "/login")
    _fits(phone)
    sign_in(phone, site, "ann")
    _fits(phone)
    phone.save_screenshot(str(site.shots / "board-phone.png"))
    for rid in ("margaret", "john", "daphne"):
        phone.get(site.url + f"/residents/{rid}")
        _fits(phone)
        # Every chart has its words (a text summary, and the svg's label).
        for fig in phone.find_elements(_by("css"), "figure"):
            assert fig.find_element(_by("css"), "svg").get_attribute("aria-label")
            assert fig.find_element(_by("css"), "figcaption").text
        if rid == "john":
            phone.save_screenshot(str(site.shots / "resident-phone.png"))
    phone.get(site.url + "/equipment")
    _fits(phone)


def _mail_to(box: Mailbox, to: str, timeout_s: float = 30) -> EmailMessage:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for env in box.got:
            if to in env.rcpt_tos:
                msg = email.message_from_bytes(env.content, policy=email.policy.default)
                assert isinstance(msg, EmailMessage)
                return msg
        time.sleep(0.2)
    raise AssertionError(f"no e-mail to {to} within {timeout_s} s")


def test_the_signed_link_of_an_email_opens_the_alert_to_acknowledge(site, chrome):
    msg = _mail_to(site.box, "anna@example.org")
    body = msg.get_body()
    assert isinstance(body, EmailMessage)
    text = body.get_content()
    assert msg["Subject"] == "Urgent: Not up, Mum"
    assert text.startswith("Hello Anna,") and "Please call Mum now" in text
    assert "kinsight ack" not in text
    link = re.search(r"Open it, and say what you found: (\S+)", text)
    assert link is not None and link.group(1).startswith(site.url + "/a/")
    chrome.get(link.group(1))
    assert "/login" in chrome.current_url  # signed out: sign in first ...
    chrome.find_element(_by("name"), "username").send_keys("anna")
    chrome.find_element(_by("name"), "password").send_keys(PASSWORDS["anna"])
    submit(chrome, chrome.find_element(_by("css"), "form button"))
    # ... then the alert itself, on its resident's page, with its buttons
    assert chrome.current_url == f"{site.url}/residents/margaret#alert-{site.urgent_id}"
    item = chrome.find_element(_by("id"), f"alert-{site.urgent_id}")
    assert "Not seen up and about yet at 10:30" in item.text
    from selenium.webdriver.support.ui import Select
    Select(chrome.find_element(_by("id"), f"outcome-{site.urgent_id}")).select_by_value(
        "useful")
    chrome.find_element(_by("id"), f"note-{site.urgent_id}").send_keys("Rang her: overslept")
    submit(chrome, item.find_element(_by("css"), "form button"))
    with Store(site.db) as store:
        alert = get_alert(store, site.urgent_id)
    assert alert is not None and (alert.state, alert.acknowledged_by) == ("acknowledged",
                                                                         "anna")


def test_the_screenshots_are_pictures_of_the_pages(site):
    """After the others: each screenshot taken, a PNG of the size asked for."""
    sizes = {}
    for name in ("board-desktop", "resident-desktop", "board-phone", "resident-phone"):
        data = (site.shots / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        sizes[name] = int.from_bytes(data[16:20], "big")
    assert sizes["board-phone"] == 390 * 3 and sizes["board-desktop"] >= 1200
