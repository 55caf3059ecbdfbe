"""Evaluation: how well a detector finds changes, and how often it cries wolf.

``scoring.evaluate`` runs scenarios with their ground truth through a detector and
gives the figures (detection, lead time, false alerts per resident-month,
precision); ``suites`` names the simulated suites; ``injection`` lengthens real
recordings and writes health changes into copies of them; ``real_homes`` scores a
detector on a database's imported histories that way (``kinsight eval --db``).

It scores real homes through the deployment's own path (``kinsight.service``), so it
sits above the service.

May import: kinsight.errors, kinsight.store, kinsight.residents, kinsight.learning,
kinsight.alerts, kinsight.service, kinsight.simulation.
"""

from __future__ import annotations

from .real_homes import HistoryReport, evaluate_db
from .scoring import DAYS_PER_MONTH, LEARNING_DAYS, Report, evaluate
from .suites import SUITES, Member, run_suite, suite_runs

__all__ = ["DAYS_PER_MONTH", "LEARNING_DAYS", "SUITES", "HistoryReport", "Member", "Report",
           "evaluate", "evaluate_db", "run_suite", "suite_runs"]
