"""The host's ingest path: acceptance, duplicates, replays, gaps, acks, atomicity."""

from __future__ import annotations

import sqlite3

import pytest

from kinsight.ingest import Ingestor
from kinsight.store import Store
from kinsight.wire import Header, encode_frame, fragment_frame, open_frame

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
T0 = 1_790_000_000


def events_frame(seq: int, *, node: int = 7, boot: int = 1, n: int = 2, key: bytes = KEY,
                 volume_ml: int = 200) -> bytes:
    return encode_frame(key, "events", Header(node_id=node, boot=boot, seq=seq, time_s=T0 + seq),
                        {"events": [{"type": "draw", "role": "tap", "ago_ds": 10 * i,
                                     "duration_ds": 50, "volume_ml": volume_ml + i}
                                    for i in range(n)]})


def dump(store: Store) -> list[tuple]:
    rows = []
    for table in ("frames", "events", "summaries", "statuses", "rejected", "nodes"):
        rows += [(table, *r) for r in store.query(f"SELECT * FROM {table} ORDER BY 1, 2")]
    return rows


@pytest.fixture
def ingestor(store):
    store.set_node_key(7, KEY, now_ms=0)
    store.set_node_key(8, OTHER_KEY, now_ms=0)
    return Ingestor(store, clock_ms=lambda: T0 * 1000)


def test_accepted_frame_lands_with_its_records(ingestor, store):
    [r] = ingestor.ingest_batch([events_frame(0, n=3)])
    assert (r.status, r.node_id, r.boot, r.seq, r.kind, r.records) == \
        ("accepted", 7, 1, 0, "events", 3)
    rows = store.query("SELECT node_id, start_ms, type, role, volume_ml FROM events ORDER BY idx")
    assert rows == [(7, T0 * 1000 - 1000 * i, "draw", "tap", 200 + i) for i in range(3)]
    assert store.query("SELECT raw FROM frames")[0][0] == events_frame(0, n=3)


def acks_of(ingestor):
    out = []
    for node_id, raw in ingestor.acks:
        frame = open_frame(raw, KEY)
        assert frame.kind == "ack" and frame.header.node_id == node_id
        out.append((frame.body.acked_seq, frame.body.contiguous_seq))
    return out


def test_duplicate_is_acked_again_but_stored_once(ingestor, store):
    frame = events_frame(0)
    first, again = ingestor.ingest_batch([frame, frame])
    assert (first.status, again.status) == ("accepted", "duplicate")
    assert acks_of(ingestor) == [(0, 0)]
    assert ingestor.ingest_batch([frame])[0].status == "duplicate"
    assert acks_of(ingestor) == [(0, 0)]  # a lost ack is made good
    assert store.query("SELECT COUNT(*) FROM events")[0][0] == 2
    assert ingestor.stats.duplicates == 2 and not ingestor.stats.rejected


def test_replay_with_other_content_is_refused(ingestor, store):
    ingestor.ingest_batch([events_frame(0)])
    [r] = ingestor.ingest_batch([events_frame(0, volume_ml=999)])
    assert (r.status, r.reason) == ("rejected", "replay")
    assert "boot 1 seq 0" in r.message
    assert store.query("SELECT volume_ml FROM events ORDER BY idx") == [(200,), (201,)]


def test_same_seq_in_a_new_boot_is_a_new_frame(ingestor, store):
    results = ingestor.ingest_batch([events_frame(0, boot=1), events_frame(0, boot=2)])
    assert [r.status for r in results] == ["accepted", "accepted"]


def test_frame_signed_with_another_nodes_key_is_refused(ingestor, store):
    [r] = ingestor.ingest_batch([events_frame(0, node=7, key=OTHER_KEY)])
    assert (r.status, r.reason, r.node_id) == ("rejected", "bad_tag", 7)
    assert store.query("SELECT COUNT(*) FROM frames")[0][0] == 0


def test_key_registered_after_start_is_picked_up(store):
    ingestor = Ingestor(store)
    assert ingestor.ingest_batch([events_frame(0, node=9)])[0].reason == "unknown_node"
    store.set_node_key(9, KEY, now_ms=0)
    assert ingestor.ingest_batch([events_frame(1, node=9)])[0].status == "accepted"


def test_gaps_count_lost_frames_until_late_ones_arrive(ingestor, store):
    ingestor.ingest_batch([events_frame(s) for s in (0, 1, 4, 5)])
    assert store.lost_frames() == {7: 2}
    assert ingestor.stats.gaps == 1
    ingestor.ingest_batch([events_frame(3)])
    assert store.lost_frames() == {7: 1}
    ingestor.ingest_batch([events_frame(2)])
    assert store.lost_frames() == {7: 0}


def test_acks_carry_the_contiguous_sequence_number(ingestor):
    ingestor.ingest_batch([events_frame(0), events_frame(1)])
    assert acks_of(ingestor) == [(1, 1)]  # one ack covers a batch stored in order
    ingestor.ingest_batch([events_frame(3), events_frame(5)])
    assert acks_of(ingestor) == [(3, 1), (5, 1)]  # past a gap, each frame is acked
    ingestor.ingest_batch([events_frame(2)])
    assert acks_of(ingestor) == [(2, 3)]
    ingestor.ingest_batch([events_frame(4), events_frame(3)])
    assert acks_of(ingestor) == [(4, 5)]
    [(_, raw)] = ingestor.acks
    assert open_frame(raw, KEY).body.host_time_s == T0


def test_acks_never_reuse_the_hosts_sequence_numbers(ingestor):
    seen = []
    for seq in range(5):
        ingestor.ingest_batch([events_frame(seq), events_frame(seq + 10)])
        seen += [(f.header.boot, f.header.seq) for f in
                 (open_frame(raw, KEY) for _, raw in ingestor.acks)]
    # Each batch: one ack for seq + 10, whose contiguous number covers seq.
    assert seen == sorted(set(seen)) and len(seen) == 5


def test_contiguous_survives_a_host_restart(store):
    store.set_node_key(7, KEY, now_ms=0)
    Ingestor(store).ingest_batch([events_frame(s) for s in (0, 1, 2)])
    again = Ingestor(store)
    again.ingest_batch([events_frame(3)])
    assert acks_of(again) == [(3, 3)]


def test_fragments_in_any_order_make_one_message(ingestor, store):
    whole = events_frame(10, n=40)
    parts = fragment_frame(KEY, whole, node_id=7, boot=1, time_s=T0, first_seq=11)
    assert len(parts) >= 3
    results = ingestor.ingest_batch(list(reversed(parts)) + [parts[0]])
    assert [r.status for r in results] == ["accepted"] * len(parts) + ["duplicate"]
    assert results[len(parts) - 1].inner.status == "accepted"
    assert store.query("SELECT COUNT(*) FROM events")[0][0] == 40
    assert store.query("SELECT raw, reassembled FROM frames WHERE seq = 10") == [(whole, 1)]
    assert (10, None) in acks_of(ingestor)  # seq 10 is stored, seqs 0..9 are not
    assert store.lost_frames() == {7: 10}  # seqs 0..9 never sent in this test
    assert ingestor.stats.reassembled == 1


def test_fragments_archived_before_a_restart_still_complete_the_message(store):
    store.set_node_key(7, KEY, now_ms=0)
    whole = events_frame(0, n=40)
    parts = fragment_frame(KEY, whole, node_id=7, boot=1, time_s=T0, first_seq=1)
    Ingestor(store).ingest_batch(parts[:-1])
    [r] = Ingestor(store).ingest_batch(parts[-1:])
    assert r.inner is not None and r.inner.status == "accepted"
    assert store.query("SELECT COUNT(*) FROM events")[0][0] == 40


def test_reassembled_message_that_is_not_the_announced_one_is_refused(ingestor, store):
    whole = events_frame(5, n=40)
    parts = fragment_frame(KEY, whole, node_id=7, boot=1, time_s=T0, first_seq=20)
    # The same pieces announced under boot 2: joined, they claim boot 1.
    bad = fragment_frame(KEY, whole, node_id=7, boot=2, time_s=T0, first_seq=20)
    results = ingestor.ingest_batch(bad)
    assert results[-1].inner.status == "rejected"
    assert results[-1].inner.reason == "schema"
    assert store.query("SELECT COUNT(*) FROM events")[0][0] == 0
    assert ingestor.ingest_batch(parts)[-1].inner.status == "accepted"


def test_batch_is_all_or_nothing_when_the_store_fails(ingestor, store):
    good = [events_frame(s) for s in range(3)]
    before = dump(store)
    # The engine itself refuses the last frame's records, each in its own way.
    if store.backend == "sqlite":
        store.conn.execute("CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.volume_ml = "
                           "999 BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    else:
        store.conn.execute("ALTER TABLE events ADD CONSTRAINT boom CHECK (volume_ml != 999)")
    with pytest.raises(sqlite3.IntegrityError):
        ingestor.ingest_batch(good + [events_frame(3, volume_ml=999)])
    assert dump(store) == before
    store.conn.execute("DROP TRIGGER boom" if store.backend == "sqlite" else
                       "ALTER TABLE events DROP CONSTRAINT boom")
    # Nothing of the failed batch is remembered either: the frames are accepted afresh.
    assert [r.status for r in ingestor.ingest_batch(good)] == ["accepted"] * 3


def test_same_frames_twice_change_nothing(ingestor, store):
    frames = [events_frame(s) for s in (0, 1, 3)] + [b"\x00garbage", events_frame(4)[:-2]]
    ingestor.ingest_batch(frames)
    first = dump(store)
    again = Ingestor(store, clock_ms=lambda: T0 * 1000 + 5000)
    results = again.ingest_batch(frames)
    assert [r.status for r in results] == ["duplicate"] * 3 + ["rejected"] * 2
    assert dump(store) == first


def test_summaries_and_status_are_stored(ingestor, store):
    summary = encode_frame(KEY, "summary", Header(node_id=7, boot=1, seq=0, time_s=T0), {
        "summaries": [{"role": "seat", "ago_s": 60, "period_s": 900, "occupied_ds": 4000}]})
    status = encode_frame(KEY, "status", Header(node_id=7, boot=1, seq=1, time_s=T0), {
        "firmware": "0.1.0", "uptime_s": 5, "reset_cause": "watchdog", "rssi_dbm": -70})
    ingestor.ingest_batch([summary, status])
    assert store.query("SELECT end_s, role, period_s, occupied_ds FROM summaries") == \
        [(T0 - 60, "seat", 900, 4000)]
    assert store.query("SELECT firmware, reset_cause, rssi_dbm FROM statuses") == \
        [("0.1.0", "watchdog", -70)]
    [node] = store.node_summaries()
    assert (node.frames, node.summaries, node.statuses, node.lost) == (2, 1, 1, 0)


def test_store_refuses_a_file_that_is_not_a_database(tmp_path):
    from kinsight.errors import StoreError

    path = tmp_path / "x.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable Kinsight database"):
        Store(path)


# --- the refused-frame archive: bounded, counts exact ------------------------------------------


def garbage(i: int, size: int = 40) -> bytes:
    return b"\xff" + i.to_bytes(4, "big") + bytes(size)


def kept_rows(store: Store) -> dict[str, int]:
    return dict(store.query("SELECT reason, COUNT(*) FROM rejected GROUP BY reason"))


def db_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_garbage_cannot_fill_the_disk_and_every_refusal_is_counted(tmp_path):
    from kinsight.store import RejectArchiveLimits

    path = tmp_path / "k.db"
    store = Store(path, reject_archive=RejectArchiveLimits(max_rows=100))
    store.set_node_key(7, KEY, now_ms=0)
    ingestor = Ingestor(store, clock_ms=lambda: T0 * 1000)

    def flood(start: int, n: int) -> None:
        for at in range(start, start + n, 64):
            ingestor.ingest_batch([garbage(i) for i in range(at, min(at + 64, start + n))])
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    flood(0, 1000)
    size_after_1000 = db_bytes(path)
    flood(1000, 4000)
    assert db_bytes(path) <= size_after_1000 + 8192  # the ring reuses its pages
    forged = [events_frame(s, key=OTHER_KEY) for s in range(30)]
    ingestor.ingest_batch(forged)
    ingestor.ingest_batch(forged[:5])  # the same refused bytes again still count
    assert store.reject_counts() == {"decode": 5000, "bad_tag": 35}
    assert kept_rows(store) == {"decode": 100, "bad_tag": 30}
    # The newest are the ones kept.
    newest = {bytes(r[0]) for r in store.query("SELECT raw FROM rejected WHERE reason='decode'")}
    assert newest == {garbage(i) for i in range(4900, 5000)}
    [node] = store.node_summaries()
    assert (node.node_id, node.rejected) == (7, 35)
    store.close()
    # Counts and the ring survive a restart.
    with Store(path, reject_archive=RejectArchiveLimits(max_rows=10)) as again:
        again.set_node_key(8, OTHER_KEY, now_ms=0)
        Ingestor(again).ingest_batch([garbage(9999)])
        assert again.reject_counts() == {"decode": 5001, "bad_tag": 35}
        assert kept_rows(again)["decode"] == 10


def test_the_archive_of_each_reason_keeps_within_its_byte_budget(store):
    from kinsight.store import RejectArchiveLimits

    store.reject_archive = RejectArchiveLimits(max_rows=10_000, max_bytes=20_000)
    ingestor = Ingestor(store)
    for at in range(0, 600, 50):
        ingestor.ingest_batch([garbage(i, size=200) for i in range(at, at + 50)])
    [(n, size)] = store.query("SELECT COUNT(*), SUM(length(raw) + length(message) + 96) "
                              "FROM rejected")
    assert 20_000 - 400 < size <= 20_000 and n < 100
    assert store.reject_counts() == {"decode": 600}


def test_made_up_node_ids_do_not_grow_the_counters(store):
    ingestor = Ingestor(store)
    ingestor.ingest_batch([events_frame(0, node=n) for n in range(1000, 1200)])
    assert store.reject_counts() == {"unknown_node": 200}
    assert store.query("SELECT COUNT(*) FROM refusals") == [(1,)]


def test_a_schema_1_store_is_upgraded_with_its_counts(tmp_path):
    path = tmp_path / "old.db"
    with Store(path) as s:
        s.set_node_key(7, KEY, now_ms=0)
        Ingestor(s).ingest_batch([events_frame(0), garbage(1), garbage(2),
                                  events_frame(1, key=OTHER_KEY)])
        # Back to schema 1 as it was: no counters, no quarantine column, the old index.
        s.conn.executescript(
            "DROP TABLE refusals; DROP INDEX frames_msg_seq; DROP INDEX rejected_reason;"
            "ALTER TABLE frames DROP COLUMN quarantine;"
            "CREATE INDEX frames_msg ON frames (node_id, boot, msg) WHERE msg IS NOT NULL;"
            "UPDATE meta SET value = '1' WHERE key = 'schema_version';"
            # ... and before schema 3, status frames told of no crashes and no bundles.
            + "".join(f"ALTER TABLE statuses DROP COLUMN {c};" for c in (
                "crashes", "crash_time_s", "crash_cause", "crash_what", "bundle",
                "bundle_failed"))
            # ... and before schema 4, no heart rate in events or summaries.
            + "ALTER TABLE events DROP COLUMN hr_bpm;"
            + "".join(f"ALTER TABLE summaries DROP COLUMN {c};" for c in (
                "hr_rest_bpm", "hr_mean_bpm", "hr_wear_s", "hr_quality_pm")))
    with Store(path) as s:
        assert s.reject_counts() == {"bad_tag": 1, "decode": 2}
        assert s.query("SELECT value FROM meta WHERE key='schema_version'") == [("4",)]
        assert [n.rejected for n in s.node_summaries()] == [1]
        assert Ingestor(s).ingest_batch([events_frame(2)])[0].status == "accepted"
        status = encode_frame(KEY, "status", Header(node_id=7, boot=1, seq=3, time_s=T0), {
            "firmware": "0.2.0", "uptime_s": 5, "reset_cause": "watchdog", "crashes": 1,
            "crash_time_s": T0 - 9, "crash_cause": "power_on", "crash_what": "MemoryError"})
        assert Ingestor(s).ingest_batch([status])[0].status == "accepted"
        assert s.query("SELECT crashes, crash_cause, crash_what FROM statuses") == [
            (1, "power_on", "MemoryError")]
        summary = encode_frame(KEY, "summary", Header(node_id=7, boot=1, seq=4, time_s=T0), {
            "summaries": [{"role": "heart_rate", "ago_s": 0, "period_s": 900,
                           "hr_rest_bpm": 58, "hr_wear_s": 880, "hr_quality_pm": 990}]})
        assert Ingestor(s).ingest_batch([summary])[0].status == "accepted"
        assert s.query("SELECT role, hr_rest_bpm, hr_wear_s FROM summaries") == [
            ("heart_rate", 58, 880)]


def test_a_flood_of_refusals_is_not_a_flood_of_log_lines(ingestor, caplog):
    with caplog.at_level("WARNING", logger="kinsight.ingest"):
        ingestor.ingest_batch([garbage(i) for i in range(500)])
        ingestor.ingest_batch([events_frame(0, key=OTHER_KEY)])
    assert ingestor.stats.rejected == {"decode": 500, "bad_tag": 1}
    assert [r.getMessage()[:22] for r in caplog.records] == ["frame refused (decode)",
                                                            "frame refused (bad_tag"]


# --- implausible timestamps: kept whole, acked, records not filed ------------------------------

DAY_S = 86_400


@pytest.mark.parametrize("time_s, why", [
    (0, "1970"), (2**32 - 1, "2106"), (T0 - 365 * DAY_S, "a year before the key was added"),
    (T0 + 2 * DAY_S, "two days ahead of the host"),
])
def test_a_frame_stamped_implausibly_is_quarantined_not_filed(store, time_s, why):
    store.set_node_key(7, KEY, now_ms=(T0 - 30 * DAY_S) * 1000)  # provisioned a month ago
    ingestor = Ingestor(store, clock_ms=lambda: T0 * 1000)
    raw = encode_frame(KEY, "events", Header(node_id=7, boot=1, seq=0, time_s=time_s), {
        "events": [{"type": "draw", "role": "tap", "ago_ds": 0, "volume_ml": 5}]})
    [r] = ingestor.ingest_batch([raw])
    assert (r.status, r.reason, r.records) == ("quarantined", "implausible_time", 0), why
    assert store.query("SELECT COUNT(*) FROM events") == [(0,)]
    # Kept whole, for review, and acked: the ack also gives the node the host's clock.
    assert store.query("SELECT raw, quarantine FROM frames") == [(raw, "implausible_time")]
    assert acks_of(ingestor) == [(0, 0)]
    assert ingestor.stats.quarantined == {"implausible_time": 1}
    assert store.reject_counts() == {"implausible_time": 1}
    [node] = store.node_summaries()
    assert (node.quarantined, node.rejected, node.lost) == (1, 0, 0)
    # Sent again: a duplicate, acked again, still not filed; a new frame goes on as ever.
    assert ingestor.ingest_batch([raw])[0].status == "duplicate"
    assert ingestor.ingest_batch([events_frame(1)])[0].status == "accepted"
    assert store.query("SELECT COUNT(*) FROM events") == [(2,)]
    assert store.reject_counts() == {"implausible_time": 1}


def test_plausible_edges_are_filed(store):
    store.set_node_key(7, KEY, now_ms=(T0 - 30 * DAY_S) * 1000)
    ingestor = Ingestor(store, clock_ms=lambda: T0 * 1000)
    # Just after provisioning (within the margin), and a node clock a little fast.
    for seq, time_s in enumerate((T0 - 30 * DAY_S - 60, T0 + DAY_S - 1, T0 - 29 * DAY_S)):
        raw = encode_frame(KEY, "status", Header(node_id=7, boot=1, seq=seq, time_s=time_s),
                           {"firmware": "1", "uptime_s": 1, "reset_cause": "soft"})
        assert ingestor.ingest_batch([raw])[0].status == "accepted", time_s


def test_a_message_its_fragments_complete_is_judged_by_its_own_stamp(store):
    store.set_node_key(7, KEY, now_ms=0)
    ingestor = Ingestor(store, clock_ms=lambda: T0 * 1000)
    whole = encode_frame(KEY, "events", Header(node_id=7, boot=1, seq=0, time_s=5), {
        "events": [{"type": "draw", "role": "tap", "ago_ds": i, "volume_ml": i}
                   for i in range(40)]})
    parts = fragment_frame(KEY, whole, node_id=7, boot=1, time_s=T0, first_seq=1)
    results = ingestor.ingest_batch(parts)
    assert [r.status for r in results] == ["accepted"] * len(parts)
    assert results[-1].inner.status == "quarantined"
    assert store.query("SELECT COUNT(*) FROM events") == [(0,)]
    assert store.query("SELECT reassembled FROM frames WHERE quarantine IS NOT NULL") == [(1,)]


def test_captures_received_before_the_key_was_added_here_are_judged_by_when_they_came(store):
    store.set_node_key(7, KEY, now_ms=(T0 + 90 * DAY_S) * 1000)  # a store rebuilt later
    ingestor = Ingestor(store, clock_ms=lambda: (T0 + 90 * DAY_S) * 1000, make_acks=False)
    results = ingestor.ingest_batch([(events_frame(s), (T0 + s) * 1000) for s in range(3)])
    assert [r.status for r in results] == ["accepted"] * 3
    [r] = ingestor.ingest_batch([(events_frame(3), (T0 + 90 * DAY_S) * 1000)])
    assert r.status == "quarantined"  # it came after: a node cannot stamp before its key


def test_the_store_knows_which_reasons_are_quarantine():
    from kinsight.ingest import IMPLAUSIBLE_TIME
    from kinsight.store import QUARANTINE_REASONS

    assert IMPLAUSIBLE_TIME in QUARANTINE_REASONS


def test_shared_ingestors_on_one_store_never_store_twice_nor_ack_what_is_not_stored(
        tmp_path):
    """Workers sharing a broker's stream: any may get any node's frame, resends land
    anywhere, a message's fragments split between them."""
    path = tmp_path / "shared.db"
    with Store(path) as setup:
        setup.set_node_key(7, KEY, now_ms=0)
    a_store, b_store = Store(path), Store(path)
    try:
        a, b = Ingestor(a_store, shared=True), Ingestor(b_store, shared=True)
        for seq in range(10):
            (a if seq % 2 else b).ingest_batch([events_frame(seq)])
        # b stored 0, 2, ... and a 1, 3, ...: each knows the other's now
        [r] = a.ingest_batch([events_frame(4)])  # b's, sent again to a
        assert r.status == "duplicate"
        assert acks_of(a)[-1] == (4, 9)  # everything 0..9 is stored, whoever stored it
        [r] = b.ingest_batch([events_frame(10)])
        assert r.status == "accepted" and acks_of(b) == [(10, 10)]
        whole = events_frame(11, n=40)
        parts = fragment_frame(KEY, whole, node_id=7, boot=1, time_s=T0, first_seq=12)
        assert len(parts) >= 3
        a.ingest_batch(parts[:1])
        b.ingest_batch(parts[1:2])
        results = a.ingest_batch(parts[2:])
        assert results[-1].inner is not None and results[-1].inner.status == "accepted"
        assert b.ingest_batch(parts[2:3])[0].status == "duplicate"
        assert a_store.query("SELECT COUNT(*) FROM events")[0][0] == 11 * 2 + 40
        assert a_store.query("SELECT COUNT(*) FROM frames WHERE seq = 11") == [(1,)]
    finally:
        a_store.close()
        b_store.close()


def test_unshared_ingestors_are_the_stores_only_writer(tmp_path):
    """Without ``shared``, an ingestor trusts what it has seen: the reason workers
    sharing a store must say so (the test above)."""
    path = tmp_path / "alone.db"
    with Store(path) as setup:
        setup.set_node_key(7, KEY, now_ms=0)
    a_store, b_store = Store(path), Store(path)
    try:
        a, b = Ingestor(a_store), Ingestor(b_store)
        a.ingest_batch([events_frame(0)])
        b.ingest_batch([events_frame(1)])
        a.ingest_batch([events_frame(2)])
        assert acks_of(a)[-1] == (2, 0)  # a never heard of seq 1
    finally:
        a_store.close()
        b_store.close()
