"""What the service serves over HTTP (``app``): ``/healthz``, ``/metrics``, and the care
team's pages (``care``: sign-in, the triage board, a resident's alerts acknowledged
with an outcome), for the people of ``users``.

Routes stay thin: what they say comes from the service and the layers below.

May import: kinsight.errors, kinsight.store, kinsight.ingest, kinsight.residents,
kinsight.learning, kinsight.alerts, kinsight.service.
"""

from __future__ import annotations

from .app import make_app

__all__ = ["make_app"]
