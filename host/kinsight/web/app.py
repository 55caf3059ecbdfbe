"""The service's HTTP app (Starlette): ``GET /healthz``, ``GET /metrics`` and the care
team's pages (``care``).

``/healthz`` answers 200 with ``{"status": "ok", ...}`` when all is well and 503 with
``"degraded"`` and its ``reasons`` otherwise (see ``Service.health``), so a monitor or
a load balancer can read either the code or the body. ``/metrics`` is Prometheus' text
format.
"""

from __future__ import annotations

import threading

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..service.metrics import CONTENT_TYPE
from ..service.serve import Service
from ..store import Store
from .care import CareApp, SecurityHeaders


def make_app(service: Service) -> Starlette:
    """The app for ``service``; its health is read through a connection of its own."""
    store = Store(service.settings.db)
    # A store another process holds locked answers "not writable" in half a second, not
    # after the usual five: a monitor's request must not time out.
    store.conn.execute("PRAGMA busy_timeout = 500")
    lock = threading.Lock()  # one request at a time on that connection

    def healthz(request: Request) -> JSONResponse:
        del request
        with lock:
            health = service.health(store)
        return JSONResponse(health, status_code=200 if health["status"] == "ok" else 503)

    def metrics(request: Request) -> Response:
        del request
        with lock:
            service.health(store)  # the gauges it sets
        return Response(service.metrics.text(), media_type=CONTENT_TYPE)

    # Served behind HTTPS (as the policy's app_url says): cookies only over HTTPS.
    https = str(service.policy.organisation.get("app_url", "")).startswith("https://")
    care = CareApp(service.settings.db, service.policy, clock=service.clock,
                   secure_cookies=https)
    app = Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics),
                            *care.routes()], middleware=[Middleware(SecurityHeaders)])
    app.state.store = store  # closed by whoever stops the server
    app.state.care = care
    return app
