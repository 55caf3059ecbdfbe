"""Reassembly: limits, timeouts, and properties under loss, duplication and reordering."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinsight.errors import FrameError, ReassemblyError, ReassemblyLimitError
from kinsight.ingest import IngestLimits, Ingestor
from kinsight.store import Store
from kinsight.wire import (
    Fragment,
    Header,
    Reassembler,
    ReassemblyLimits,
    encode_frame,
    fragment_frame,
)
from kinsight.wire.reassembly import message_cost

KEY = bytes(range(32))
T0 = 1_790_000_000


def pieces(msg: int, data: bytes, n: int) -> list[Fragment]:
    size = -(-len(data) // n)
    return [Fragment(msg=msg, index=i, count=n, chunk=data[i * size:(i + 1) * size])
            for i in range(n)]


def test_count_over_the_limit_is_refused():
    r = Reassembler(ReassemblyLimits(max_fragments=4))
    with pytest.raises(ReassemblyLimitError, match="5 fragments"):
        r.add(1, 1, Fragment(msg=1, index=0, count=5, chunk=b"x"), now_ms=0)
    assert len(r) == 0


def test_message_over_its_byte_limit_is_refused_and_forgotten():
    r = Reassembler(ReassemblyLimits(max_message_bytes=10))
    r.add(1, 1, Fragment(msg=1, index=0, count=3, chunk=b"x" * 6), now_ms=0)
    with pytest.raises(ReassemblyLimitError, match="over 10 bytes"):
        r.add(1, 1, Fragment(msg=1, index=1, count=3, chunk=b"x" * 6), now_ms=0)
    assert len(r) == 0 and r.total_bytes == 0


def test_conflicting_pieces_are_errors():
    r = Reassembler()
    r.add(1, 1, Fragment(msg=1, index=0, count=3, chunk=b"ab"), now_ms=0)
    with pytest.raises(ReassemblyError, match="says 4 pieces"):
        r.add(1, 1, Fragment(msg=1, index=1, count=4, chunk=b"cd"), now_ms=0)
    with pytest.raises(ReassemblyError, match="different bytes"):
        r.add(1, 1, Fragment(msg=1, index=0, count=3, chunk=b"zz"), now_ms=0)
    assert r.add(1, 1, Fragment(msg=1, index=0, count=3, chunk=b"ab"), now_ms=0) is None


ONE = message_cost(2, [40])  # a message of two pieces, one of 40 bytes held


def test_per_node_memory_is_bounded_by_evicting_that_nodes_oldest():
    r = Reassembler(ReassemblyLimits(max_node_bytes=ONE * 5 // 2, max_total_bytes=ONE * 25))
    for msg in range(5):
        r.add(1, 1, Fragment(msg=msg, index=0, count=2, chunk=b"x" * 40), now_ms=msg)
    r.add(2, 1, Fragment(msg=0, index=0, count=2, chunk=b"y" * 40), now_ms=9)
    assert r.node_bytes(1) == 2 * ONE and r.node_bytes(2) == ONE
    dropped = r.take_dropped()
    assert [d.msg for d in dropped] == [0, 1, 2]
    assert {d.reason for d in dropped} == {"reassembly_evicted"}
    assert r.is_pending(1, 1, 4) and not r.is_pending(1, 1, 0)


def test_total_memory_is_bounded_across_nodes():
    r = Reassembler(ReassemblyLimits(max_node_bytes=ONE * 5 // 2, max_total_bytes=ONE * 15 // 4))
    for node in range(6):
        r.add(node, 1, Fragment(msg=1, index=0, count=2, chunk=b"x" * 40), now_ms=node)
        assert r.total_bytes <= ONE * 15 // 4
    assert len(r.take_dropped()) == 3


def test_a_piece_larger_than_a_node_may_hold_is_refused():
    r = Reassembler(ReassemblyLimits(max_node_bytes=10))
    with pytest.raises(ReassemblyLimitError, match="node 1"):
        r.add(1, 1, Fragment(msg=1, index=0, count=2, chunk=b"x" * 11), now_ms=0)
    assert len(r) == 0


def test_incomplete_messages_time_out():
    r = Reassembler(ReassemblyLimits(timeout_ms=1000))
    r.add(1, 1, Fragment(msg=1, index=0, count=2, chunk=b"a"), now_ms=0)
    r.add(1, 1, Fragment(msg=2, index=0, count=2, chunk=b"b"), now_ms=800)
    assert r.expire(now_ms=1000) == []
    [d] = r.expire(now_ms=1001)
    assert (d.msg, d.have, d.count, d.reason) == (1, 1, 2, "reassembly_timeout")
    assert r.is_pending(1, 1, 2) and r.total_bytes == message_cost(2, [1])


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=2, max_size=4096), n=st.integers(2, 32), seed=st.integers(),
       loss=st.floats(0, 0.6), dup=st.floats(0, 0.5))
def test_any_message_survives_loss_duplication_and_reordering(data, n, seed, loss, dup):
    """A sender resends what was not acknowledged until everything has been: the receiver
    (the reassembler, plus the archive's memory of completed messages, as in ingest) ends
    with the message byte for byte, exactly once, holding nothing."""
    n = min(n, len(data))
    rng = random.Random(seed)
    r = Reassembler()
    todo = pieces(9, data, n)
    done = []
    for now_ms in range(1, 500):
        air = [p for p in todo if rng.random() >= loss]
        air += [p for p in air if rng.random() < dup]
        rng.shuffle(air)
        for p in air:
            if done:
                continue  # the archive has the message: late copies are duplicates
            whole = r.add(3, 1, p, now_ms=now_ms)
            if whole is not None:
                done.append(whole)
        held = r.held(3, 1, 9)
        todo = [] if done else [p for p in todo if p.index not in held]
        if not todo:
            break
    assert done == [data]
    assert len(r) == 0 and r.total_bytes == 0


@settings(max_examples=60, deadline=None)
@given(n_events=st.integers(14, 120), mtu=st.integers(80, 250), seed=st.integers(),
       loss=st.floats(0, 0.5))
def test_fragmented_frames_survive_the_ingest_path(n_events, mtu, seed, loss):
    """Whole frames cut by the node-side rule, through the real ingest path and store."""
    rng = random.Random(seed)
    store = Store(":memory:")
    store.set_node_key(7, KEY, now_ms=0)
    ingestor = Ingestor(store, limits=IngestLimits(max_frame_bytes=mtu))
    whole = encode_frame(KEY, "events", Header(node_id=7, boot=1, seq=0, time_s=T0), {
        "events": [{"type": "visit", "role": "toilet", "ago_ds": rng.randrange(1 << 20),
                    "duration_ds": rng.randrange(1 << 16)} for _ in range(min(n_events, 64))]})
    try:
        parts = fragment_frame(KEY, whole, node_id=7, boot=1, time_s=T0, first_seq=1, mtu=mtu)
    except ValueError:
        return  # more than 32 pieces at this MTU: the node would not send it either
    sent = 0
    todo = list(parts)
    while todo:
        air = [p for p in todo if rng.random() >= loss] + [rng.choice(parts)]
        rng.shuffle(air)
        ingestor.ingest_batch(air)
        sent += 1
        have = {r[0] for r in store.query("SELECT seq FROM frames")}
        todo = [p for i, p in enumerate(parts) if i + 1 not in have]
    assert store.query("SELECT raw FROM frames WHERE seq = 0") == [(whole,)]
    assert store.query("SELECT COUNT(*) FROM events")[0][0] == min(n_events, 64)
    assert not ingestor.stats.rejected


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300))
def test_random_bytes_only_raise_documented_errors(raw):
    store = Store(":memory:")
    store.set_node_key(7, KEY, now_ms=0)
    [r] = Ingestor(store).ingest_batch([raw])
    assert r.status == "rejected" and r.reason


_SEED_FRAMES = [
    encode_frame(KEY, "events", Header(node_id=7, boot=1, seq=0, time_s=1_790_000_000),
                 {"events": [{"type": "sit", "role": "seat", "ago_ds": 5, "rise_ds": 30}]}),
    encode_frame(KEY, "status", Header(node_id=7, boot=1, seq=1, time_s=1_790_000_000),
                 {"firmware": "1", "uptime_s": 3, "reset_cause": "soft", "rssi_dbm": -9}),
]


@settings(max_examples=400, deadline=None)
@given(which=st.sampled_from(_SEED_FRAMES), edits=st.lists(
    st.tuples(st.integers(0, 300), st.integers(0, 255), st.sampled_from("rid")), min_size=1,
    max_size=4))
def test_mutated_frames_only_raise_documented_errors(which, edits):
    """Mutations are found out by decoding, the schema or the tag; never another error."""
    from kinsight.wire import decode_frame, open_frame

    raw = bytearray(which)
    for pos, byte, op in edits:
        pos %= len(raw) + 1
        if op == "r" and pos < len(raw):
            raw[pos] = byte
        elif op == "i":
            raw.insert(pos, byte)
        elif op == "d" and pos < len(raw):
            del raw[pos]
    raw = bytes(raw)
    for f in (lambda: decode_frame(raw), lambda: open_frame(raw, KEY)):
        try:
            f()
        except FrameError as exc:
            assert exc.reason and str(exc)
    store = Store(":memory:")
    store.set_node_key(7, KEY, now_ms=0)
    [r] = Ingestor(store).ingest_batch([raw])
    assert r.status in ("accepted", "rejected")
    if raw != which:
        assert r.status == "rejected"


# --- memory in real bytes, no scans, the archive's index ---------------------------------------


def hold(r: Reassembler, n: int, *, node: int = 1, chunk: bytes = b"x", count: int = 2,
         first_msg: int = 0) -> None:
    for msg in range(first_msg, first_msg + n):
        r.add(node, 1, Fragment(msg=msg, index=0, count=count, chunk=chunk), now_ms=msg)


@pytest.mark.parametrize("chunk_len, count", [(1, 2), (1, 32), (200, 2), (40, 8)])
def test_what_a_held_message_costs_is_what_is_counted(chunk_len, count):
    """The budget counts the memory a held message really takes (payload and the
    bookkeeping around it), measured here by tracemalloc, not only its payload."""
    import gc
    import tracemalloc

    limits = ReassemblyLimits(max_node_bytes=1 << 30, max_total_bytes=1 << 30)
    r = Reassembler(limits)
    hold(r, 10, chunk=bytes(chunk_len), count=count)  # warm the containers up
    n = 2000
    chunks = [i.to_bytes(4, "big") * (-(-chunk_len // 4)) for i in range(n)]
    frags = [Fragment(msg=100 + i, index=0, count=count, chunk=chunks[i][:chunk_len])
             for i in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    counted = r.total_bytes
    for f in frags:
        r.add(1, 1, f, now_ms=5)
    counted = r.total_bytes - counted
    del frags  # the reassembler holds the chunks now; the Fragments themselves are gone
    gc.collect()
    real = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    real += n * (33 + chunk_len)  # the chunks' bytes objects were made before the snapshot
    assert real * 0.9 <= counted <= real * 1.6, (real / n, counted / n)


def test_one_byte_pieces_cannot_hold_more_memory_than_the_budget():
    r = Reassembler(ReassemblyLimits(max_node_bytes=1 << 30, max_total_bytes=200_000))
    hold(r, 5000)
    assert r.total_bytes <= 200_000
    assert len(r) < 200_000 // 200  # hundreds of messages, not 100,000 one-byte ones
    assert len(r.take_dropped()) == 5000 - len(r)


def _seconds_for_adds(held: int, adds: int = 2000) -> float:
    import time

    best = float("inf")
    for _ in range(3):
        r = Reassembler(ReassemblyLimits(max_node_bytes=1 << 40, max_total_bytes=1 << 40,
                                         timeout_ms=10**9))
        hold(r, held)
        r.limits = ReassemblyLimits(max_node_bytes=r.total_bytes, max_total_bytes=1 << 40,
                                    timeout_ms=10**9)
        start = time.perf_counter()
        hold(r, adds, first_msg=held)  # each one evicts the node's oldest
        dropped = r.expire(now_ms=0)  # and nothing is stale: this looks at one message
        best = min(best, time.perf_counter() - start)
        assert len(dropped) == adds
    return best


def test_eviction_and_expiry_cost_the_same_with_few_or_many_held():
    few, many = _seconds_for_adds(200), _seconds_for_adds(20_000)
    assert many < 4 * few, (few, many)  # a scan of every held message would be ~100 times


def test_the_first_piece_finds_earlier_pieces_by_index_not_by_the_boots_scan(store):
    from kinsight.store.sqlite import FRAGMENT_RAWS_SQL

    if store.backend == "postgresql":
        # An empty table is read whole whatever its indexes: ask for the index's plan.
        store.conn.execute("SET enable_seqscan = off")
        plan = " | ".join(r[0] for r in store.query("EXPLAIN " + FRAGMENT_RAWS_SQL,
                                                    (7, 1, 3)))
        assert "Index Scan using frames_msg_seq" in plan, plan
        assert "Sort" not in plan, plan
        return
    plan = " | ".join(r[3] for r in store.query("EXPLAIN QUERY PLAN " + FRAGMENT_RAWS_SQL,
                                               (7, 1, 3)))
    assert "USING INDEX frames_msg_seq (node_id=? AND boot=? AND msg=?)" in plan, plan
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


def test_held_pieces_are_reported_per_message():
    r = Reassembler()
    r.add(3, 1, Fragment(msg=9, index=2, count=4, chunk=b"c"), now_ms=0)
    r.add(3, 1, Fragment(msg=9, index=0, count=4, chunk=b"a"), now_ms=0)
    assert r.held(3, 1, 9) == {0, 2} and r.held(3, 1, 8) == set()
