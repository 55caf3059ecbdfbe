"""What runs the layers together: learning's findings through the alerts layer.

``analysis.analyse`` is the morning run (``kinsight analyse``): each resident's new
days through their model, then the real-time rules, then delivery.
``watcher.RealtimeWatcher`` runs the real-time rules as frames arrive and on a
tick (``kinsight listen --alerts``). ``replay.play`` runs both on a simulated
clock over a store's history (``kinsight replay``, and the evaluation on real
homes). This is the only layer that sees both
learning and alerts; the always-on service belongs here.

May import: kinsight.errors, kinsight.store, kinsight.ingest, kinsight.residents,
kinsight.learning, kinsight.alerts.
"""

from __future__ import annotations

from .analysis import Summary, analyse
from .replay import Played, play, replay
from .watcher import RealtimeWatcher

__all__ = ["Played", "RealtimeWatcher", "Summary", "analyse", "play", "replay"]
