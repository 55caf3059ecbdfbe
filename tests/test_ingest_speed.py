"""What the ingest's fast paths must not change: the compiled field checks accept
exactly what the field-by-field check accepts, keyed tags are the same tags (and
follow a rotated key), and the bench's raw floor writes the rows the ingest writes."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kinsight_wire as wire
from kinsight.bench.ingest import full_path, raw_floor, typical_frames
from kinsight.errors import KinsightError
from kinsight.ingest import Ingestor
from kinsight.wire import Header, decode_frame, encode_frame, frame_tag, keyed_mac, open_frame
from kinsight.wire.frames import _HEADER, _TABLES

KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
T0 = 1_790_000_000

TABLES = [_HEADER, *_TABLES.values(),
          *(t.item for t in _TABLES.values() if t.item is not None)]

# Values at and past every boundary the tables have, and the types CBOR decodes to.
BOUNDARIES = [0, 1, 2, 3, 7, 99, wire.U32_MAX, wire.U32_MAX + 1, -1, wire.I32_MIN,
              wire.I32_MIN - 1, wire.I32_MAX, wire.I32_MAX + 1, True, 1.0, None, b"", "",
              "é" * 32, "é" * 33, "x" * 64, "x" * 65, [], [{}], [{1: 1}] * 64, [{1: 1}] * 65]
VALUES = st.one_of(st.sampled_from(BOUNDARIES), st.integers(), st.text(max_size=70),
                   st.binary(max_size=4), st.sampled_from([{}, {1: 1}]))
KEYS = st.one_of(st.integers(min_value=-1, max_value=14), st.sampled_from([True, False, 1.0]))


def outcome(check, m):
    try:
        return "ok", check(m)
    except KinsightError as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=400, deadline=None)
@given(table=st.sampled_from(TABLES), m=st.dictionaries(KEYS, VALUES, max_size=12),
       sort=st.booleans())
def test_compiled_checks_agree_with_the_field_by_field_check(table, m, sort):
    if sort:  # most valid maps are in key order: give the compiled shapes a chance
        try:
            m = dict(sorted(m.items()))
        except TypeError:
            pass
    assert outcome(table.row, m) == outcome(table.row_by_field, m)


def good_value(vtype: int) -> object:
    return {wire.T_TEXT: "x", wire.T_BYTES: b"x", wire.T_LIST: [{}]}.get(vtype, 1)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.where)
def test_a_compiled_shape_refuses_what_the_field_by_field_check_refuses(table):
    keys = sorted(table.by_key)
    assert keys[0] == 1
    good = {k: good_value(table.by_key[k][2]) for k in keys}
    assert outcome(table.row, good) == outcome(table.row_by_field, good)  # compiles the shape
    assert outcome(table.row, good)[0] == "ok"
    rest = {k: good[k] for k in keys[1:]}
    # A key equal to an integer that is not one; values of a type that compares equal.
    for bad in ({True: good[1], **rest}, {1.0: good[1], **rest}, {**good, 1: 1.0},
                {**good, 1: True}, {**good, 1: None}):
        assert outcome(table.row, bad) == outcome(table.row_by_field, bad)
        assert outcome(table.row, bad)[0] != "ok"
    # Every field of the compiled shape at and past its bounds.
    verdicts = set()
    for key in keys:
        for value in BOUNDARIES:
            m = {**good, key: value}
            verdicts.add(outcome(table.row, m)[0])
            assert outcome(table.row, m) == outcome(table.row_by_field, m), (key, value)
    assert "ok" in verdicts and len(verdicts) > 1


def test_a_boolean_key_is_refused_where_its_integer_is_known():
    h = Header(node_id=7, boot=1, seq=0, time_s=T0)
    raw = encode_frame(KEY, "status", h, {"firmware": "1", "uptime_s": 1,
                                          "reset_cause": "power_on"})
    decode_frame(raw)  # the header's shape is compiled now
    # The header map's first key (1, the version) as CBOR true: same value in Python.
    forged = raw.replace(b"\xa5\x01\x01", b"\xa5\xf5\x01", 1)
    assert forged != raw
    with pytest.raises(KinsightError, match="unknown key True"):
        decode_frame(forged)


@pytest.mark.parametrize("key", [bytes(range(16)), KEY, bytes(range(64)), bytes(range(65)),
                                 bytes(200)])
def test_keyed_tags_are_the_tags(key):
    for signed in (b"", b"a", bytes(range(256)) * 3):
        good = hmac.digest(key, signed, hashlib.sha256)[:wire.TAG_LEN]
        mac = keyed_mac(key)
        assert frame_tag(mac, signed) == frame_tag(key, signed) == good
        assert frame_tag(mac, signed) == good  # the keyed state is copied, never used up


def events(seq: int, key: bytes) -> bytes:
    return encode_frame(key, "events", Header(node_id=7, boot=1, seq=seq, time_s=T0 + seq),
                        {"events": [{"type": "draw", "role": "tap", "ago_ds": 3}]})


def test_a_rotated_key_counts_for_tags_and_acks_from_the_next_batch(tmp_path):
    from kinsight.store import Store

    with Store(tmp_path / "k.db") as store, Store(tmp_path / "k.db") as other:
        store.set_node_key(7, KEY, now_ms=0)
        ingestor = Ingestor(store, clock_ms=lambda: T0 * 1000)
        assert [r.status for r in ingestor.ingest_batch([events(0, KEY)])] == ["accepted"]
        other.set_node_key(7, NEW_KEY, now_ms=0)  # as `kinsight keys rotate` does
        results = ingestor.ingest_batch([events(1, KEY), events(2, NEW_KEY)])
        assert [(r.status, r.reason) for r in results] == [("rejected", "bad_tag"),
                                                           ("accepted", None)]
        [(node, ack)] = ingestor.acks
        assert node == 7 and open_frame(ack, NEW_KEY).body.acked_seq == 2
        other.remove_node_key(7)
        [r] = ingestor.ingest_batch([events(3, NEW_KEY)])
        assert (r.status, r.reason) == ("rejected", "unknown_node")


def test_the_raw_floor_writes_the_rows_the_ingest_writes(tmp_path):
    frames, keys = typical_frames(600)
    raw_floor(frames, keys, tmp_path / "floor.db")
    full_path(frames, keys, tmp_path / "full.db")
    floor, full = sqlite3.connect(tmp_path / "floor.db"), sqlite3.connect(tmp_path / "full.db")
    for sql in ("SELECT node_id, boot, seq, kind, time_s, received_ms, reassembled, msg, raw, "
                "quarantine FROM frames ORDER BY 1, 2, 3",
                "SELECT * FROM events ORDER BY 1, 2, 3, 4",
                "SELECT * FROM summaries ORDER BY 1, 2, 3, 4",
                "SELECT * FROM statuses ORDER BY 1, 2, 3"):
        rows = full.execute(sql).fetchall()
        assert rows and floor.execute(sql).fetchall() == rows, sql
    floor.close()
    full.close()
