"""Journal under MicroPython: what was noticed and not yet framed survives a cut at
any byte, and an item is never framed twice."""

import os

from journal import Journal
from kinsight_wire import ET_VISIT, EV_DURATION_DS, EV_ROLE, EV_TYPE, ROLE_TOILET
from runner import eq
from tempdir import TempDir


class Queued:
    """An outbox that holds what it was told, as (boot, seq)."""

    def __init__(self, have=()):
        self.have = set(have)

    def contains(self, boot, seq):
        return (boot, seq) in self.have


def ev(i):
    return {EV_TYPE: ET_VISIT, EV_ROLE: ROLE_TOILET, EV_DURATION_DS: i}


def test_items_come_back_in_order_with_their_time():
    with TempDir() as folder:
        j = Journal(folder + "/j")
        for i in range(5):
            j.note("events", 1790000000000 + i * 1000, ev(i))
        j.note("summaries", 1790000000500, {1: 2})
        got = Journal(folder + "/j").recover("events", Queued())
        eq(got, [(1790000000000 + i * 1000, ev(i)) for i in range(5)], "events")
        eq(j.recover("summaries", Queued()), [(1790000000500, {1: 2})], "summaries apart")


def test_a_cut_mid_append_costs_that_item_only():
    with TempDir() as folder:
        j = Journal(folder + "/j")
        for i in range(3):
            j.note("events", 1000 * i, ev(i))
        path = folder + "/j/events"
        with open(path, "rb") as f:
            whole = f.read()
        one = len(whole) // 3
        for cut in range(len(whole) + 1):
            with open(path, "wb") as f:
                f.write(whole[:cut])
            got = Journal(folder + "/j").recover("events", Queued())
            eq([e[EV_DURATION_DS] for _t, e in got], list(range(cut // one)), "cut at %d" % cut)
        # ...and an altered byte: what follows it is not trusted.
        bad = bytearray(whole)
        bad[one + 5] ^= 0x10
        with open(path, "wb") as f:
            f.write(bad)
        j2 = Journal(folder + "/j")
        eq(len(j2.recover("events", Queued())), 1, "items before the damage")
        eq(j2.torn, 1, "counted")


def test_framed_items_are_dropped_only_once_the_outbox_has_them():
    with TempDir() as folder:
        j = Journal(folder + "/j")
        j.note("events", 1, ev(1))
        j.note("events", 2, ev(2))
        j.framing("events", 70000, 12)
        j.note("events", 3, ev(3))  # noticed after that framing began
        # The cut came before the frames reached the outbox's flash: frame them again.
        eq([e[EV_DURATION_DS] for _t, e in j.recover("events", Queued())], [1, 2, 3], "kept")
        # After: they are queued; only the later one is left to frame.
        left = j.recover("events", Queued([(70000, 12)]))
        eq([e[EV_DURATION_DS] for _t, e in left], [3], "dropped what the outbox holds")
        j.framed("events")
        eq(j.recover("events", Queued()), [], "forgotten once framed")
        eq("events" in os.listdir(folder + "/j"), False, "the file is gone")
