"""What runs the layers together: learning's findings through the alerts layer.

``analysis.analyse`` is the morning run (``kinsight analyse``): each resident's new
days through their model, then the real-time rules, then delivery.
``watcher.RealtimeWatcher`` runs the real-time rules as frames arrive and on a
tick (``kinsight listen --alerts``). This is the only layer that sees both
learning and alerts; the always-on service belongs here.

May import: kinsight.errors, kinsight.store, kinsight.ingest, kinsight.residents,
kinsight.learning, kinsight.alerts.
"""

from __future__ import annotations

from .analysis import Summary, analyse
from .watcher import RealtimeWatcher

__all__ = ["RealtimeWatcher", "Summary", "analyse"]
