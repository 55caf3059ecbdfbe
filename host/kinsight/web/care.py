"""The care team's pages (server-rendered, Jinja2 templates, no JavaScript):

* ``/login``: a form with ``username`` and ``password``; every other page sends a
  signed-out visitor there. Sign-in is rate-limited (``sessions.SignInLimiter``);
* ``/``: the triage board (``triage.board``), with a search;
* ``/equipment``: each home's nodes, as their last status says (``equipment``);
* ``/residents/{id}``: the last 60 days as charts with units and a sentence each
  (``charts``), the resident's alerts with their evidence (for family, only what the
  resident's consent shares with family), acknowledged with an outcome and a note, and
  the trail of what was done; 403 for a user who may not see that resident;
* ``POST /alerts/{id}/ack`` (an outcome and a note), ``POST /alerts/{id}/snooze``
  (for 1, 3 or 7 days), ``POST /residents/{id}/away`` and ``.../away/end`` (the
  resident away from home from one day to another: nothing is raised about those
  days), ``POST /logout``. Snoozing and away mode hold alerts for the whole care
  circle, so they are the care team's (coordinators, practitioners), not family's;
  every answer lands in the resident's trail.

Every form carries the session's CSRF token (the sign-in form a token of its own,
double-submitted in a cookie); a form without it is refused with 403. Every answer
has the security headers (``SECURITY_HEADERS``). Routes stay thin: what they show
and do is ``triage``, ``users``, ``sessions`` and the alert router's.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..alerts import AlertRouter, Policy, get_alert, list_alerts
from ..alerts.links import open_link
from ..alerts.records import away_periods
from ..errors import ConfigError
from ..learning import condition_words
from ..residents import placements, residents
from ..service.days import ensure_days, stored_days
from ..store import Store
from .charts import charts
from .equipment import equipment
from .sessions import COOKIE, SESSION_S, SignInLimiter, end_session, session_user, start_session
from .triage import board, last_heard, teams
from .users import User, authenticate, get_user

TEMPLATES = Path(__file__).parent / "templates"
PRE_COOKIE = "kinsight_signin"
CHART_DAYS = 60
SNOOZE_DAYS = ("1", "3", "7")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _wall_ms() -> int:
    return int(time.time() * 1000)


def add_filters(env: Environment) -> None:
    """What the templates say of a condition and of a day, live and in reports."""
    env.filters["condition"] = condition_words
    env.filters["day"] = lambda iso: f"{date.fromisoformat(iso):%a %d %b %Y}"


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%d %b %H:%M")


class CareApp:
    """The pages over the database at ``db``; ``secure_cookies`` for HTTPS."""

    def __init__(self, db: str, policy: Policy, *, clock: Callable[[], int] = _wall_ms,
                 secure_cookies: bool = False, limiter: SignInLimiter | None = None):
        self.store = Store(db)
        self.store.conn.execute("PRAGMA busy_timeout = 2000")
        self.policy = policy
        self.clock = clock
        self.secure = secure_cookies
        self.limiter = limiter or SignInLimiter()
        self.lock = threading.Lock()  # one request at a time on the connection
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self.templates.env.globals["when"] = _when
        self.templates.env.globals["link"] = lambda path: "/" + path
        add_filters(self.templates.env)

    def routes(self) -> list[Route]:
        return [Route("/login", self.login, methods=["GET", "POST"]),
                Route("/logout", self.logout, methods=["POST"]),
                Route("/", self.board_page),
                Route("/residents/{rid}", self.resident_page),
                Route("/equipment", self.equipment_page),
                Route("/alerts/{aid:int}/ack", self.acknowledge, methods=["POST"]),
                Route("/alerts/{aid:int}/snooze", self.snooze, methods=["POST"]),
                Route("/residents/{rid}/away", self.set_away, methods=["POST"]),
                Route("/residents/{rid}/away/end", self.end_away, methods=["POST"]),
                Route("/a/{token}", self.open_link),
                Route("/app.css", self.css)]

    # --- helpers

    def _page(self, request: Request, name: str, status: int = 200, **context: object
              ) -> Response:
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def _signed_in(self, request: Request) -> tuple[User, str] | None:
        found = session_user(self.store, request.cookies.get(COOKIE), self.clock())
        if found is None:
            return None
        user = get_user(self.store, found[0])
        return None if user is None else (user, found[1])

    def _to_login(self, request: Request) -> Response:
        return RedirectResponse("/login?next=" + quote(request.url.path), status_code=303)

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    # --- pages

    async def css(self, request: Request) -> Response:
        del request
        return Response((TEMPLATES / "app.css").read_text(), media_type="text/css")

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            pre = secrets.token_urlsafe(24)
            resp = self._page(request, "login.html", csrf=pre, user=None,
                              next=request.query_params.get("next", "/"), error=None)
            resp.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict",
                            secure=self.secure, max_age=3600)
            return resp
        form = await self._form(request)
        pre = request.cookies.get(PRE_COOKIE)
        if not pre or not secrets.compare_digest(form.get("csrf", ""), pre):
            return PlainTextResponse("the sign-in form has expired: open it again", 403)
        name, password = form.get("username", "").strip().lower(), form.get("password", "")
        address = request.client.host if request.client else "?"
        now = self.clock()
        nxt = form.get("next", "/")
        nxt = nxt if nxt.startswith("/") and not nxt.startswith("//") else "/"
        with self.lock:
            if not self.limiter.allowed(name, address, now):
                return self._page(request, "login.html", 429, csrf=pre, user=None, next=nxt,
                                  error="Too many wrong passwords: try again in 15 minutes.")
            user = authenticate(self.store, name, password)
            if user is None:
                self.limiter.failed(name, address, now)
                return self._page(request, "login.html", 401, csrf=pre, user=None, next=nxt,
                                  error="That name and password do not match.")
            token, _csrf = start_session(self.store, user.name, now)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=self.secure,
                        max_age=SESSION_S)
        resp.delete_cookie(PRE_COOKIE)
        return resp

    async def logout(self, request: Request) -> Response:
        form = await self._form(request)
        with self.lock:
            found = self._signed_in(request)
            if found is not None and secrets.compare_digest(form.get("csrf", ""), found[1]):
                end_session(self.store, request.cookies.get(COOKIE))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    async def board_page(self, request: Request) -> Response:
        with self.lock:
            found = self._signed_in(request)
            if found is None:
                return self._to_login(request)
            user, csrf = found
            q = request.query_params.get("q", "")[:100]
            team = request.query_params.get("team", "")[:100]
            rows = board(self.store, user, q, team, self.policy)
            all_teams = teams(self.policy, self.store, user)
        return self._page(request, "board.html", user=user, csrf=csrf, rows=rows, q=q,
                          team=team, teams=all_teams)

    async def equipment_page(self, request: Request) -> Response:
        with self.lock:
            found = self._signed_in(request)
            if found is None:
                return self._to_login(request)
            user, csrf = found
            homes = equipment(self.store, user, self.clock())
        return self._page(request, "equipment.html", user=user, csrf=csrf, homes=homes)

    async def resident_page(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        with self.lock:
            found = self._signed_in(request)
            if found is None:
                return self._to_login(request)
            user, csrf = found
            if not user.may_see(rid) or rid not in residents(self.store):
                return PlainTextResponse("not a resident you look after", 403)
            page = resident_context(self.store, self.policy, user, rid, self.clock())
        return self.templates.TemplateResponse(request, "resident.html",
                                               {"user": user, "csrf": csrf, **page})

    async def open_link(self, request: Request) -> Response:
        """A message's signed link: after sign-in, the alert on its resident's page."""
        with self.lock:
            aid, why = open_link(self.store, request.path_params["token"], self.clock())
            if why is not None or aid is None:
                return PlainTextResponse(f"This link cannot be opened: {why}. Sign in to "
                                         "see the alerts.", 410 if why == "expired" else 404)
            found = self._signed_in(request)
            if found is None:
                return self._to_login(request)
            alert = get_alert(self.store, aid)
            if alert is None or not found[0].may_see(alert.resident):
                return PlainTextResponse("not an alert you look after", 403)
        return RedirectResponse(f"/residents/{quote(alert.resident)}#alert-{aid}",
                                status_code=303)

    async def _answer(self, request: Request, resident_of: Callable[[], str | None],
                      act: Callable[[User, AlertRouter, dict[str, str]], None],
                      team_only: bool = False) -> Response:
        """A form's answer: signed in, its CSRF token, a resident the user may act for
        (``team_only``: not family), then ``act``; back to the resident's page."""
        form = await self._form(request)
        with self.lock:
            found = self._signed_in(request)
            if found is None:
                return self._to_login(request)
            user, csrf = found
            if not secrets.compare_digest(form.get("csrf", ""), csrf):
                return PlainTextResponse("this form has expired: open the page again", 403)
            rid = resident_of()
            if rid is None or not user.may_see(rid) or (team_only and user.role == "family"):
                return PlainTextResponse("not something you may answer", 403)
            try:
                act(user, AlertRouter(self.policy, self.store, clock=self.clock), form)
            except ConfigError as exc:
                return PlainTextResponse(str(exc), 400)
        return RedirectResponse("/residents/" + quote(rid), status_code=303)

    def _alert_resident(self, request: Request) -> Callable[[], str | None]:
        def resident() -> str | None:
            alert = get_alert(self.store, int(request.path_params["aid"]))
            return None if alert is None else alert.resident
        return resident

    def _resident(self, request: Request) -> Callable[[], str | None]:
        rid = str(request.path_params["rid"])
        return lambda: rid if rid in residents(self.store) else None

    async def acknowledge(self, request: Request) -> Response:
        aid = int(request.path_params["aid"])

        def act(user: User, router: AlertRouter, form: dict[str, str]) -> None:
            router.acknowledge(aid, user.name, form.get("outcome", ""),
                               form.get("note", "")[:500])
        return await self._answer(request, self._alert_resident(request), act)

    async def snooze(self, request: Request) -> Response:
        aid = int(request.path_params["aid"])

        def act(user: User, router: AlertRouter, form: dict[str, str]) -> None:
            days = form.get("days", "")
            if days not in SNOOZE_DAYS:
                raise ConfigError(f"snooze for {days!r} days: choose 1, 3 or 7")
            router.snooze(aid, self.clock() + int(days) * 86_400_000, user.name)
        return await self._answer(request, self._alert_resident(request), act, team_only=True)

    async def set_away(self, request: Request) -> Response:
        rid = str(request.path_params["rid"])
        return await self._answer(request, self._resident(request), lambda u, r, f: r.set_away(
            rid, f.get("from", ""), f.get("to", ""), u.name), team_only=True)

    async def end_away(self, request: Request) -> Response:
        rid = str(request.path_params["rid"])
        return await self._answer(request, self._resident(request), lambda u, r, f: r.end_away(
            rid, f.get("from", ""), u.name), team_only=True)


def resident_context(store: Store, policy: Policy, user: User, rid: str, now_ms: int
                     ) -> dict[str, object]:
    """What the resident page shows ``user`` of ``rid`` (see the module's docstring)."""
    alerts = sorted(list_alerts(store, rid), key=lambda a: (a.state != "open", -a.created_ms))
    if user.role == "family":  # only what the resident's consent shares with family
        rp = policy.for_resident(rid)
        alerts = [a for a in alerts if rp.consents("family", a.condition, a.severity)]
    # The 60 days up to the last one stored (today's, live; a history's own last day).
    ensure_days(store)
    newest = store.conn.execute("SELECT MAX(day) FROM day_features WHERE resident = ?",
                                (rid,)).fetchone()[0]
    end = date.fromisoformat(newest) if newest else datetime.fromtimestamp(now_ms / 1000).date()
    drawn = charts(stored_days(store, rid, end - timedelta(days=CHART_DAYS - 1)))
    nodes = [n for n, (r, _room) in placements(store).items() if r == rid]
    shown = {a.id for a in alerts}
    # The trail of what they may see: for family, of the alerts shown only.
    trail = [(ts, who, action, detail) for ts, aid, who, action, detail in store.conn.execute(
        "SELECT ts_ms, alert_id, who, action, detail FROM audit WHERE resident = ? "
        "ORDER BY ts_ms DESC LIMIT 200", (rid,)) if user.role != "family" or aid in shown][:50]
    rp = policy.for_resident(rid)
    # Who hears of what: family see the circle's names and roles, not their addresses.
    circle = [{"name": m.name, "role": m.role, "receives": ", ".join(m.receives),
               "channels": "" if user.role == "family" else ", ".join(
                   f"e-mail {t}" if c == "email" else "webhook" for c, t in m.channels())}
              for m in rp.circle]
    consent = {role: ", ".join(rp.consent.get(role, ())) or "nothing"
               for role in ("carer", "family", "practitioner")}
    today = datetime.fromtimestamp(now_ms / 1000).date().isoformat()
    away = [a for a in away_periods(store, rid) if a.to_day >= today]
    return {"resident": rid, "name": rp.name, "team": rp.team, "alerts": alerts[:100],
            "last_heard_ms": last_heard(store, rid, nodes), "trail": trail, "charts": drawn,
            "chart_days": CHART_DAYS, "circle": circle, "consent": consent, "away": away,
            "holidays": [(a.isoformat(), b.isoformat()) for a, b in rp.holidays
                         if b.isoformat() >= today],
            "may_hold": user.role != "family", "today": today}


class SecurityHeaders:
    """ASGI middleware: ``SECURITY_HEADERS`` on every answer."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    headers.setdefault(k, v)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def make_care_app(db: str, policy: Policy, **kw: object) -> Starlette:
    """The care team's pages alone (for tests and for ``kinsight report``'s kin)."""
    care = CareApp(db, policy, **kw)  # type: ignore[arg-type]
    app = Starlette(routes=care.routes(), middleware=[Middleware(SecurityHeaders)])
    app.state.care = care
    return app
