"""Several ``kinsight serve`` workers sharing one store: residents split by leases,
taken over when a worker stops or dies; and the cluster run of ``kinsight bench
cluster`` (PostgreSQL and Mosquitto started here, two workers SIGKILLed, the broker
restarted) losing and duplicating nothing."""

from __future__ import annotations

import os
import time

import pytest

from kinsight.alerts import Policy
from kinsight.bench.cluster import run_cluster
from kinsight.residents import place, residents
from kinsight.service.leases import Leases
from kinsight.service.serve import Service, ServiceSettings
from kinsight.store import Store


def test_leases_split_the_residents_and_a_dead_workers_are_taken_over(store):
    names = [f"r-{i}" for i in range(10)]
    a, b, c = (Leases(store, w, ttl_s=30) for w in "abc")
    for now in (0, 1000, 2000, 3000, 4000, 5000):  # a few rounds: they settle
        mine = [x.refresh(names, now) for x in (a, b, c)]
    assert max(len(m) for m in mine) <= 4  # none over its fair share (10 / 3, up)
    assert set().union(*mine) == set(names) and sum(map(len, mine)) == 10  # each once
    c_had = len(mine[2])
    # c dies (no refresh, no release): after its lease runs out, a and b share all
    for now in range(10_000, 45_000, 5000):
        mine = [x.refresh(names, now) for x in (a, b)]
    assert sorted(len(m) for m in mine) == [5, 5] and set().union(*mine) == set(names)
    assert a.taken + b.taken == c_had  # c's, taken over once each
    b.release()  # a clean stop: a takes everything at its next refresh
    assert a.refresh(names, 43_000) == frozenset(names)


def test_two_serve_workers_on_one_store_split_the_residents_and_hand_over(tmp_path):
    db = tmp_path / "shared.db"
    with Store(db) as store:
        for n in range(1, 7):
            place(store, n, f"r-{n}", "hall")
    services = [Service(ServiceSettings(db=str(db), udp=("127.0.0.1", 0), worker=w),
                        Policy()) for w in ("w1", "w2")]
    for s in services:
        s.start()
    try:
        deadline = time.monotonic() + 30
        while sorted(len(s.leases.mine) if s.leases else 0 for s in services) != [3, 3]:
            assert time.monotonic() < deadline, [s.leases and s.leases.mine for s in services]
            time.sleep(0.2)
        with Store(db) as store:
            assert sorted(residents(store)) == sorted(
                services[0].leases.mine | services[1].leases.mine)
        services[0].stop()  # hands its residents back
        deadline = time.monotonic() + 30
        while services[1].leases is None or len(services[1].leases.mine) != 6:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        for s in services:
            if not s.stopping:
                s.stop()


@pytest.mark.slow
def test_a_cluster_run_with_kills_and_a_broker_restart_loses_and_duplicates_nothing():
    if os.environ.get("KINSIGHT_SYSTEM_PARTS") != "installed":
        from kinsight.bench.engines import _pg_bin

        if _pg_bin() is None:
            pytest.skip("PostgreSQL is not installed (./run test installs it)")
    figures = run_cluster(nodes=20, frames_per_node=40, workers=3, timeout_s=240)
    assert figures["frames"] == 800 and figures["stored"] == 800
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert figures["kills"] == 2 and figures["broker_restarts"] == 1
