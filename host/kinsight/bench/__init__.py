"""Benchmarks on the real code paths: ``kinsight bench
ingest|firmware|learn|replay|analyse|realtime|import|pages|cluster``.

Each prints its figures, and its last line is ``key=value`` pairs, so a run can
be compared with the last. The benches sit above every product layer and may
import any of them; nothing imports the benches.

May import: kinsight.errors, kinsight.wire, kinsight.store, kinsight.ingest,
kinsight.residents, kinsight.learning, kinsight.alerts, kinsight.service,
kinsight.simulation, kinsight.evaluation, kinsight.web.
"""

from __future__ import annotations

from .analyse import bench_analyse, run_analyse
from .cluster import bench_cluster, run_bench_cluster
from .firmware import bench_firmware, run_firmware
from .history import bench_import, run_history
from .ingest import bench_ingest, run_ingest
from .learn import bench_learn, run_learn
from .pages import bench_pages, run_pages
from .realtime import bench_latency, bench_ticks, run_realtime
from .replay import bench_replay, run_replay

__all__ = ["bench_analyse", "bench_cluster", "bench_firmware", "bench_import", "bench_ingest",
           "bench_learn", "bench_latency", "bench_pages", "bench_replay", "bench_ticks", "run"]

BENCHES = ("ingest", "firmware", "learn", "replay", "analyse", "realtime", "import", "pages",
           "cluster")


def run(what: str, *, frames: int, db: str | None = None, lines: int = 1_000_000) -> int:
    """Run the benchmark ``what`` (one of BENCHES) and print its figures."""
    if what == "replay":
        return run_replay(db)
    if what == "firmware":
        return run_firmware()
    if what == "import":
        return run_history(lines)
    if what == "learn":
        return run_learn()
    if what == "analyse":
        return run_analyse()
    if what == "realtime":
        return run_realtime()
    if what == "pages":
        return run_pages()
    if what == "cluster":
        return run_bench_cluster()
    if what != "ingest":
        raise ValueError(f"no benchmark {what!r}")
    return run_ingest(frames)
