"""What ``kinsight serve`` counts, in Prometheus' text format (``prometheus_client``).

Counters live in a registry of their own per service (tests run several in one
process). Frames, records and refusals are the ingestors' own counts, read when
scraped, so nothing is counted twice; alerts, deliveries, acks and analysis times
are counted as they happen. Every name starts ``kinsight_``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ..ingest import IngestStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _IngestCollector(Collector):
    def __init__(self, stats: Callable[[], Iterable[IngestStats]], acks: Callable[[], int]):
        self._stats = stats
        self._acks = acks

    def collect(self) -> Iterator[Metric]:
        frames = CounterMetricFamily("kinsight_frames", "Frames received, by what became "
                                     "of them and why", labels=["outcome", "reason"])
        records = CounterMetricFamily("kinsight_records", "Records filed from frames")
        totals: dict[tuple[str, str], int] = {}
        stored = 0
        for s in self._stats():
            for key, n in ((("accepted", ""), s.accepted), (("duplicate", ""), s.duplicates),
                           (("unstored", "store_full"), s.unstored)):
                totals[key] = totals.get(key, 0) + n
            for outcome, by_reason in (("rejected", s.rejected), ("dropped", s.dropped),
                                       ("quarantined", s.quarantined)):
                for reason, n in by_reason.items():
                    totals[(outcome, reason)] = totals.get((outcome, reason), 0) + n
            stored += s.records
        for (outcome, reason), n in sorted(totals.items()):
            frames.add_metric([outcome, reason], n)
        records.add_metric([], stored)
        acks = CounterMetricFamily("kinsight_acks", "Acks sent to nodes after the commit")
        acks.add_metric([], self._acks())
        yield frames
        yield records
        yield acks


class ServiceMetrics:
    """The service's counters; ``text()`` is the scrape."""

    def __init__(self, ingest_stats: Callable[[], Iterable[IngestStats]] = tuple,
                 acks: Callable[[], int] = lambda: 0):
        disable_created_metrics()  # a _created series a counter is noise to a reader
        self.registry = CollectorRegistry()
        r = self.registry
        self.alerts = Counter("kinsight_alerts", "Alerts raised", ["condition", "urgency"],
                              registry=r)
        self.deliveries = Counter("kinsight_deliveries", "Messages tried, by result",
                                  ["result"], registry=r)
        self.analysis = Histogram("kinsight_analysis_seconds", "One resident's morning "
                                  "analysis", registry=r,
                                  buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2.0))
        self.checks = Counter("kinsight_realtime_checks", "Residents' real-time checks",
                              registry=r)
        self.last_frame_age = Gauge("kinsight_last_frame_age_seconds", "Since the last "
                                    "frame was stored (-1: none yet)", registry=r)
        self.backlog = Gauge("kinsight_delivery_backlog", "Messages overdue", registry=r)
        r.register(_IngestCollector(ingest_stats, acks))

    def text(self) -> bytes:
        return generate_latest(self.registry)
