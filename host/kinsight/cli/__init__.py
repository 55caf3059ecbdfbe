"""The ``kinsight`` command: a table of commands over the library's layers.

``main`` parses the command line and runs one ``commands.do_<name>``; a
``CommandError`` or any ``KinsightError`` is printed as ``kinsight: message``
with exit status 1, never as a traceback. The CLI is the top layer: it may
import every other package, and nothing imports it.

May import: kinsight.errors, kinsight.wire, kinsight.store, kinsight.ingest,
kinsight.residents, kinsight.learning, kinsight.alerts, kinsight.reports,
kinsight.service, kinsight.web, kinsight.simulation, kinsight.evaluation,
kinsight.bench, kinsight.demo.
"""

from __future__ import annotations

from .commands import CommandError
from .main import main

__all__ = ["CommandError", "main"]
