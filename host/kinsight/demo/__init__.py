"""``kinsight demo``, the main job: four simulated residents end to end, to a report.

``four_residents.run`` simulates the residents, sends their last days through the
real firmware under MicroPython over a lossy UDP link to the host, imports the
earlier days, lives the days through the service's scheduler and writes the care team's
report (and ``kinsight report``'s pages of the same database).

May import: kinsight.errors, kinsight.wire, kinsight.store, kinsight.ingest,
kinsight.residents, kinsight.learning, kinsight.alerts, kinsight.reports,
kinsight.service, kinsight.web, kinsight.simulation.
"""

from __future__ import annotations

from .four_residents import RESIDENTS, analyse_days, run

__all__ = ["RESIDENTS", "analyse_days", "run"]
