"""The protocol's single source of truth, and the golden vectors, from the host's side."""

from __future__ import annotations

import re

import cbor2
import pycddl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kinsight_wire as wire
from kinsight import errors
from kinsight.ingest import Ingestor
from kinsight.wire import (
    Ack,
    Header,
    check_body,
    decode_frame,
    encode_ack,
    encode_frame,
    open_frame,
)
from kinsight.wire.vectors import generate
from support import REPO, load_vectors

CDDL_TEXT = (REPO / "shared" / "frames.cddl").read_text(encoding="utf-8")
SCHEMA = pycddl.Schema(CDDL_TEXT)


def test_cddl_constants_agree_with_the_constants_module():
    in_cddl = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"^([A-Z][A-Z0-9_]*) = (\d+)\s*$", CDDL_TEXT, re.M)}
    assert len(in_cddl) > 80
    for name, value in in_cddl.items():
        assert getattr(wire, name) == value, name
    # ... and every protocol number of the module is in the CDDL.
    prefixes = ("KIND_", "H_", "B_", "EV_", "SM_", "ST_", "FR_", "ACK_", "UG_", "UP_", "ET_",
                "ROLE_", "RESET_")
    module_names = {n for n in dir(wire)
                    if n.startswith(prefixes) and type(getattr(wire, n)) is int}
    assert module_names <= set(in_cddl), module_names - set(in_cddl)


def test_field_tables_match_their_constants_and_records():
    from kinsight import wire as host_wire

    for kind, name, body_fields, item_fields in wire.KINDS:
        assert getattr(wire, f"KIND_{name.upper()}") == kind
        for spec in (body_fields, item_fields or ()):
            keys = [k for k, *_ in spec]
            assert len(keys) == len(set(keys)), name
    pairs = [(host_wire.Header, wire.HEADER_FIELDS), (host_wire.Event, wire.EVENT_FIELDS),
             (host_wire.Summary, wire.SUMMARY_FIELDS), (host_wire.Status, wire.STATUS_FIELDS),
             (host_wire.Fragment, wire.FRAGMENT_FIELDS), (host_wire.Ack, wire.ACK_FIELDS),
             (host_wire.UpdateGet, wire.UPDATE_GET_FIELDS),
             (host_wire.UpdatePiece, wire.UPDATE_PIECE_FIELDS)]
    for cls, spec in pairs:
        assert set(cls.__dataclass_fields__) == {name for _, name, _, _ in spec}, cls


def test_fragment_overhead_is_the_worst_case():
    u = wire.U32_MAX
    worst = cbor2.dumps([wire.KIND_FRAGMENT, {1: 1, 2: u, 3: u, 4: u, 5: u},
                         {1: u, 2: wire.MAX_FRAGMENTS - 1, 3: wire.MAX_FRAGMENTS,
                          4: b"x" * 1000}, b"t" * 8], canonical=True)
    assert len(worst) - 1000 == wire.FRAGMENT_OVERHEAD


def test_update_piece_bytes_fit_the_mtu_at_worst():
    u = wire.U32_MAX
    worst = cbor2.dumps([wire.KIND_UPDATE_PIECE, {1: 1, 2: u, 3: u, 4: u, 5: u},
                         {1: u, 2: u, 3: b"x" * wire.UPDATE_PIECE_BYTES}, b"t" * 8],
                        canonical=True)
    assert len(worst) <= wire.MTU_DEFAULT
    offer = cbor2.dumps([wire.KIND_ACK, {1: 1, 2: u, 3: u, 4: u, 5: u},
                         {1: u, 2: u, 3: u, 4: u, 5: u, 6: wire.MAX_BUNDLE_BYTES,
                          7: b"h" * 32}, b"t" * 8], canonical=True)
    assert len(offer) <= wire.MTU_DEFAULT


def test_vectors_are_what_the_host_encoder_makes_now():
    for name, text in generate().items():
        assert (REPO / "shared" / "vectors" / name).read_text(encoding="utf-8") == text, name


@pytest.mark.parametrize("v", load_vectors("frames.json"), ids=lambda v: v["name"])
def test_golden_frame_decodes_to_its_meaning(v):
    raw = bytes.fromhex(v["hex"])
    assert len(raw) <= v["mtu"]
    frame = open_frame(raw, bytes.fromhex(v["key"]))
    from dataclasses import asdict

    from kinsight.wire.vectors import _jsonable

    assert {"kind": frame.kind, "header": asdict(frame.header),
            "body": _jsonable(asdict(frame.body))} == v["decoded"]
    SCHEMA.validate_cbor(raw)


@pytest.mark.parametrize("v", load_vectors("fragmented.json"), ids=lambda v: v["name"])
def test_golden_fragments_validate_and_rejoin(v):
    whole = bytes.fromhex(v["message_hex"])
    SCHEMA.validate_cbor(whole)
    chunks = []
    for i, h in enumerate(v["fragments"]):
        raw = bytes.fromhex(h)
        assert len(raw) <= v["mtu"]
        SCHEMA.validate_cbor(raw)
        frame = open_frame(raw, bytes.fromhex(v["key"]))
        assert (frame.header.seq, frame.body.index) == (v["first_seq"] + i, i)
        chunks.append(frame.body.chunk)
    assert b"".join(chunks) == whole
    message = open_frame(whole, bytes.fromhex(v["key"]), max_frame_bytes=wire.MAX_MESSAGE_BYTES)
    assert len(message.body.events) == 40


@pytest.mark.parametrize("v", load_vectors("invalid.json"), ids=lambda v: v["name"])
def test_invalid_vector_raises_its_error(v, store):
    raw = bytes.fromhex(v["hex"])
    key = bytes.fromhex(v["key"])
    valid = {x["name"]: x for x in load_vectors("frames.json")}
    store.set_node_key(7, key, now_ms=0)
    ingestor = Ingestor(store)
    for name in v["after"]:
        assert ingestor.ingest_batch([bytes.fromhex(valid[name]["hex"])])[0].status == "accepted"
    expected = getattr(errors, v["error"])
    if v["layer"] != "ingest":
        with pytest.raises(expected) as info:
            open_frame(raw, key)
        assert info.value.reason == v["reason"]
        assert str(info.value)
    # Through the ingest path it is counted under its reason and stores nothing.
    before = store.query("SELECT COUNT(*) FROM frames")[0][0]
    [result] = ingestor.ingest_batch([raw])
    assert (result.status, result.reason) == ("rejected", v["reason"])
    assert ingestor.stats.rejected[v["reason"]] == 1
    assert store.query("SELECT COUNT(*) FROM frames")[0][0] == before
    assert store.reject_counts() == {v["reason"]: 1}


# What CDDL cannot see (tags, the archive, keys, encoding rules, cross-field rules), and
# pycddl's own leniency: it lets unknown keys through in maps with optional entries.
_NOT_CDDL = {"unknown-body-key", "non-shortest-integer", "unsorted-keys", "unknown-node",
             "replay-of-events-basic", "bad-tag", "bit-flip-in-body", "over-mtu",
             "fragment-index-past-count", "ack-from-a-node", "trailing-byte",
             "update-piece-from-a-node", "ack-offer-without-hash",
             "cbor-tag-in-header", "indefinite-array"}


@pytest.mark.parametrize("v", [v for v in load_vectors("invalid.json")
                               if v["name"] not in _NOT_CDDL], ids=lambda v: v["name"])
def test_cddl_rejects_what_the_schema_forbids(v):
    """Where CDDL can tell, frames.cddl agrees with the host's checks."""
    raw = bytes.fromhex(v["hex"])
    with pytest.raises(Exception):  # noqa: B017 - pycddl has one error type per failure kind
        SCHEMA.validate_cbor(raw)


def test_check_body_names_the_field(store):
    raw = bytes.fromhex(next(v for v in load_vectors("invalid.json")
                             if v["name"] == "text-for-uint")["hex"])
    with pytest.raises(errors.SchemaError, match="ago_ds must be an integer"):
        check_body(decode_frame(raw))


def test_errors_are_also_standard_exceptions():
    assert issubclass(errors.DecodeError, ValueError)
    assert issubclass(errors.ReassemblyLimitError, errors.ReassemblyError)
    assert issubclass(errors.StoreError, OSError)
    for cls in (errors.DecodeError, errors.SchemaError, errors.AuthenticationError,
                errors.ReplayError, errors.ReassemblyError, errors.ReassemblyLimitError):
        assert issubclass(cls, errors.KinsightError)


u32 = st.integers(0, wire.U32_MAX)


@settings(max_examples=200, deadline=None)
@given(node=u32, boot=u32, seq=u32, time_s=u32, acked_boot=u32, acked_seq=u32,
       contiguous=st.none() | u32, host_time=u32)
def test_hand_written_ack_encoder_matches_the_generic_one(node, boot, seq, time_s, acked_boot,
                                                          acked_seq, contiguous, host_time):
    header = Header(node_id=node, boot=boot, seq=seq, time_s=time_s)
    ack = Ack(acked_boot=acked_boot, acked_seq=acked_seq, host_time_s=host_time,
              contiguous_seq=contiguous)
    assert encode_ack(KEY, header, ack) == encode_frame(KEY, "ack", header, ack)


KEY = bytes(range(32))


def test_ack_vectors_come_out_of_the_hand_written_encoder():
    for v in load_vectors("frames.json"):
        if v["decoded"]["kind"] == "ack":
            frame = open_frame(bytes.fromhex(v["hex"]), KEY)
            assert encode_ack(KEY, frame.header, frame.body).hex() == v["hex"]


@pytest.mark.parametrize("safe_mode", [0, 1, 2, 255, wire.U32_MAX])
def test_host_and_cddl_agree_on_safe_mode(safe_mode):
    """frames.cddl says 0..1 (the firmware sends 1, or nothing); the host says the same."""
    raw = encode_frame(KEY, "status", Header(node_id=7, boot=1, seq=safe_mode % 1000,
                                             time_s=1_790_000_000),
                       {"firmware": "x", "uptime_s": 1, "reset_cause": "soft",
                        "safe_mode": safe_mode})
    try:
        SCHEMA.validate_cbor(raw)
        cddl_ok = True
    except Exception:  # noqa: BLE001 - pycddl has one error type per failure kind
        cddl_ok = False
    try:
        host_ok = open_frame(raw, KEY).body.safe_mode == safe_mode
    except errors.SchemaError as exc:
        assert "safe_mode must be 0..1" in str(exc)
        host_ok = False
    assert host_ok == cddl_ok == (safe_mode in (0, 1))
