"""Nothing lost at a reset: the real firmware (Node, Outbox, Journal, SequenceCounter)
under MicroPython, killed with SIGKILL at random moments and started again on the
same flash, as a power cut does. Every event and interval that a node step had
taken before the cut is in the outbox afterwards, exactly once."""

from __future__ import annotations

import random
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from support import REPO, cut_after, micropython_command

SCRIPT = REPO / "tests" / "firmware" / "powercut_node.py"


def start(flash: Path, first_id: int, count: int, period_ms: int) -> subprocess.Popen[str]:
    command, env = micropython_command(SCRIPT, str(flash), str(first_id), str(count),
                                       str(period_ms))
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_power_cuts_at_random_moments_lose_nothing_and_store_nothing_twice(
        tmp_path: Path, record_property) -> None:
    rng = random.Random(20261201)
    flash = tmp_path / "flash"
    noticed: list[int] = []
    intervals: list[int] = []
    next_id = 1
    cuts = 0
    while cuts < 25:
        said = cut_after(start(flash, next_id, 10_000, 40), rng.uniform(0.2, 1.6))
        noticed.extend(said.get("noticed", []))
        intervals.extend(said.get("interval", []))
        cuts += 1
        next_id = max(noticed, default=0) + 1000  # ids of each life apart
    command, env = micropython_command(SCRIPT, str(flash), "0", "0", "40")
    final = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                           timeout=60)
    assert final.returncode == 0, final.stderr
    lines = [line.partition(" ") for line in final.stdout.splitlines()]
    events = Counter(int(v) for w, _, v in lines if w == "queued")
    summaries = Counter(int(v) for w, _, v in lines if w == "queued-interval")
    record_property("power_cuts", cuts)
    record_property("events_noticed", len(noticed))
    assert len(noticed) > 100 and len(intervals) > 10, (len(noticed), len(intervals))
    assert [e for e in noticed if events[e] == 0] == [], "noticed before a cut, never queued"
    assert [i for i in intervals if summaries[i] == 0] == [], "intervals lost"
    assert [e for e, n in events.items() if n > 1] == [], "an event queued twice"
    assert [i for i, n in summaries.items() if n > 1] == [], "an interval queued twice"
