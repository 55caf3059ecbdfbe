"""``kinsight bench pages``: the care team's pages over many residents, as a browser
gets them from the production server.

A store of ``residents`` residents with ``days`` days each: five simulated
residents (the demonstration's, three of them going through their changes) lived
morning by morning through the analysis as a deployment would, raising their
alerts, then cloned (days, models, alerts) to ``residents``. The care app is served
by uvicorn on loopback; a coordinator signs in through the form, and each page is
fetched ``repeats`` times over HTTP with the session's cookie: the triage board
(every resident) and the page of the resident at the top of it (60 days of charts,
their alerts and trail). The medians and the 95th percentiles are printed.
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import socket
import statistics
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from ..alerts import AlertRouter, Policy
from ..residents import store_activities
from ..service.analysis import analyse
from ..simulation import simulate
from ..store import Store
from .analyse import TZ, _morning_ms, clone_residents

log = logging.getLogger(__name__)

_PASSWORD = "a benchmark's passphrase"
_START = date(2024, 3, 4)
_TEMPLATES = (("healthy", 11, "well", {}), ("mrs_s", 12, "mrs-s", {"onset_day": 30}),
              ("daphne", 13, "daphne", {"onset_day": 26}),
              ("john", 14, "john", {"onset_day": 14, "lead_days": 32}),
              ("healthy", 15, "well-2", {}))


def _lived(store: Store, days: int) -> None:
    """The templates' days stored, and analysed each morning from the 15th."""
    for persona, seed, rid, variant in _TEMPLATES:
        _scenario, acts = simulate(persona, seed, days, _START, resident=rid, outages=False,
                                   **variant)
        store_activities(store, acts, TZ)
    for day in range(15, days + 1):
        ms = _morning_ms(_START + timedelta(days=day))
        analyse(store, AlertRouter(Policy(), store, clock=lambda ms=ms: ms), ms,
                deliver=False)


def _serve(db: Path) -> tuple[str, object, threading.Thread]:
    import uvicorn

    from ..web.care import make_care_app

    sock = socket.create_server(("127.0.0.1", 0))
    app = make_care_app(str(db), Policy())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def bench_pages(residents: int = 500, days: int = 60, repeats: int = 20) -> dict[str, float]:
    from ..web.users import add_user

    with tempfile.TemporaryDirectory(prefix="kinsight-bench-") as tmp:
        db = Path(tmp) / "homes.db"
        with Store(db) as store:
            _lived(store, days)
            clone_residents(store, [r for _p, _s, r, _v in _TEMPLATES],
                            residents - len(_TEMPLATES), alerts=True)
            add_user(store, "coordinator", "coordinator", [], _PASSWORD, by="bench",
                     now_ms=int(time.time() * 1000))
            alerts = store.query("SELECT COUNT(*) FROM alerts WHERE state = 'open'")[0][0]
        url, server, thread = _serve(db)
        try:
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            form = opener.open(url + "/login").read().decode()
            found = re.search(r'name="csrf" value="([^"]+)"', form)
            if found is None:
                raise RuntimeError("the sign-in page has no CSRF token")
            body = urllib.parse.urlencode({"username": "coordinator", "password": _PASSWORD,
                                           "csrf": found.group(1), "next": "/"}).encode()
            board = opener.open(url + "/login", body).read().decode()
            rows = re.findall(r'href="/residents/([^"]+)"', board)
            if len(rows) != residents:
                raise RuntimeError(f"the board shows {len(rows)} of {residents} residents")

            def timed(path: str) -> list[float]:
                out = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    with opener.open(url + path) as answer:
                        answer.read()
                    out.append((time.perf_counter() - t0) * 1000)
                return out

            board_ms = timed("/")
            resident_ms = timed("/residents/" + rows[0])
        finally:
            server.should_exit = True  # type: ignore[attr-defined]
            thread.join(10)

    def p95(xs: list[float]) -> float:
        return sorted(xs)[max(0, int(round(0.95 * len(xs))) - 1)]

    return {"residents": residents, "days": days, "open_alerts": alerts,
            "board_ms": statistics.median(board_ms), "board_p95_ms": p95(board_ms),
            "resident_ms": statistics.median(resident_ms),
            "resident_p95_ms": p95(resident_ms)}


def run_pages(residents: int = 500) -> int:
    r = bench_pages(residents)
    print(f"the care team's pages over HTTP, {r['residents']:.0f} residents with "  # noqa: T201
          f"{r['days']:.0f} days each, {r['open_alerts']:.0f} open alerts: triage board "
          f"{r['board_ms']:.0f} ms (p95 {r['board_p95_ms']:.0f}), a resident's page "
          f"{r['resident_ms']:.0f} ms (p95 {r['resident_p95_ms']:.0f})")
    print(" ".join(f"{k}={v:.0f}" if k in ("residents", "days", "open_alerts")  # noqa: T201
                   else f"{k}={v:.1f}" for k, v in r.items()))
    return 0
