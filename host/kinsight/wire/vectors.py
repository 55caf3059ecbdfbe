"""Golden vectors: frames both ends must agree on, byte for byte.

``python -m kinsight.wire.vectors write`` regenerates ``shared/vectors/*.json``;
``python -m kinsight.wire.vectors check`` fails when they differ from what the host's
encoder makes now. The firmware's tests rebuild every frame with the firmware
code under MicroPython and compare bytes; the host's tests decode them and
compare with ``decoded``, rejoin the fragmented ones into their message, and
feed the invalid ones expecting their error. The fragmented vectors carry no
``decoded`` view: their message is forty of the events vectors' events, and
parsing its view (320 small dicts) would cost a MicroPython heap more than
everything the firmware's tests check.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cbor2

import kinsight_wire as wire

from .frames import Header, encode_frame, frame_tag, open_frame
from .reassembly import fragment_frame

KEY = bytes(range(32))
NODE = 7
T0 = 1_790_000_000
VECTOR_DIR = Path(__file__).resolve().parents[3] / "shared" / "vectors"

_EVENTS = [
    {"type": "draw", "role": "tap", "ago_ds": 3000, "duration_ds": 95, "volume_ml": 240,
     "peak_flow_ml_min": 5400},
    {"type": "sit", "role": "seat", "ago_ds": 18000, "duration_ds": 16500, "rise_ds": 31,
     "restless": 4},
    {"type": "visit", "role": "toilet", "ago_ds": 600, "duration_ds": 2400},
]
_STATUS_FULL = {"firmware": "0.1.0", "uptime_s": 86_400, "reset_cause": "watchdog",
                "free_heap": 61_440, "largest_block": 30_208, "queue_depth": 3,
                "frames_sent": 1234, "frames_acked": 1230, "frames_dropped": 0,
                "rssi_dbm": -67, "supply_mv": 3_291, "config_error": "tap.pulses_per_l: 0",
                "safe_mode": 0}


def _hdr(seq: int, *, node: int = NODE, boot: int = 3, time_s: int = T0) -> Header:
    return Header(node_id=node, boot=boot, seq=seq, time_s=time_s)


def _decoded(raw: bytes, key: bytes = KEY) -> dict[str, Any]:
    f = open_frame(raw, key, max_frame_bytes=None)
    return {"kind": f.kind, "header": asdict(f.header), "body": _jsonable(asdict(f.body))}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return {"hex": obj.hex()}
    return obj


def _wire_view(raw: bytes) -> dict[str, Any]:
    kind, header, body, _ = cbor2.loads(raw)
    return {"kind": kind, "node_id": header[wire.H_NODE], "boot": header[wire.H_BOOT],
            "seq": header[wire.H_SEQ], "time_s": header[wire.H_TIME_S], "body": _jsonable(body)}


def _valid(name: str, kind: str, header: Header, body: dict[str, Any]) -> dict[str, Any]:
    raw = encode_frame(KEY, kind, header, body)
    return {"name": name, "key": KEY.hex(), "mtu": wire.MTU_DEFAULT, "wire": _wire_view(raw),
            "hex": raw.hex(), "decoded": _decoded(raw)}


def frames() -> list[dict[str, Any]]:
    many = [dict(_EVENTS[i % 3], ago_ds=100 * i) for i in range(8)]
    return [
        _valid("events-basic", "events", _hdr(10), {"events": _EVENTS}),
        _valid("events-eight", "events", _hdr(11), {"events": many}),
        _valid("summary-two", "summary", _hdr(12), {"summaries": [
            {"role": "seat", "ago_s": 0, "period_s": 900, "occupied_ds": 7_200, "episodes": 2,
             "restless": 9, "rise_ds_max": 28},
            {"role": "tap", "ago_s": 900, "period_s": 900, "episodes": 3, "volume_ml": 610}]}),
        _valid("summary-heart-rate", "summary", _hdr(14), {"summaries": [
            {"role": "heart_rate", "ago_s": 0, "period_s": 900, "hr_rest_bpm": 58,
             "hr_mean_bpm": 71, "hr_wear_s": 874, "hr_quality_pm": 968, "faults": 0},
            {"role": "heart_rate", "ago_s": 900, "period_s": 900, "hr_wear_s": 0,
             "hr_quality_pm": 0}]}),
        _valid("events-heart-rate", "events", _hdr(15), {"events": [
            {"type": "hr_high", "role": "heart_rate", "ago_ds": 6000, "duration_ds": 6000,
             "hr_bpm": 172},
            {"type": "hr_low", "role": "heart_rate", "ago_ds": 6010, "duration_ds": 6010,
             "hr_bpm": 36}]}),
        _valid("status-full", "status", _hdr(13), _STATUS_FULL),
        _valid("status-minimal", "status", _hdr(0, boot=1), {"firmware": "",
                                                            "uptime_s": 0,
                                                            "reset_cause": "power_on"}),
        _valid("status-largest-numbers", "status",
               _hdr(wire.U32_MAX, node=wire.U32_MAX, boot=wire.U32_MAX, time_s=wire.U32_MAX),
               {"firmware": "é" * 32, "uptime_s": wire.U32_MAX, "reset_cause": "brownout",
                "rssi_dbm": wire.I32_MIN}),
        _valid("ack-contiguous", "ack", _hdr(5, boot=1_790_000_100),
               {"acked_boot": 3, "acked_seq": 13, "contiguous_seq": 13, "host_time_s": T0 + 2}),
        _valid("ack-gap", "ack", _hdr(6, boot=1_790_000_100),
               {"acked_boot": 3, "acked_seq": 20, "host_time_s": T0 + 3}),
        _valid("status-after-crash", "status", _hdr(0, boot=4),
               {"firmware": "0.2.0", "uptime_s": 12, "reset_cause": "watchdog",
                "crashes": 2, "crash_time_s": T0 - 60, "crash_cause": "power_on",
                "crash_what": "MemoryError: memory allocation failed, allocating 4224 bytes",
                "bundle": 12, "bundle_failed": 13}),
        _valid("ack-update-offer", "ack", _hdr(7, boot=1_790_000_100),
               {"acked_boot": 3, "acked_seq": 21, "contiguous_seq": 21, "host_time_s": T0 + 4,
                "update_bundle": 12, "update_size": 61_440,
                "update_sha256": bytes(range(100, 132))}),
        _valid("update-get", "update_get", _hdr(22),
               {"bundle": 12, "offset": 1536, "pieces": wire.MAX_UPDATE_PIECES}),
        _valid("update-piece-full", "update_piece", _hdr(8, boot=1_790_000_100),
               {"bundle": 12, "offset": 1536,
                "data": bytes(i % 256 for i in range(wire.UPDATE_PIECE_BYTES))}),
    ]


def fragmented() -> list[dict[str, Any]]:
    out = []
    big = [dict(_EVENTS[i % 3], ago_ds=37 * i + 1) for i in range(40)]
    whole = encode_frame(KEY, "events", _hdr(30), {"events": big})
    for mtu in (wire.MTU_DEFAULT, 120):
        parts = fragment_frame(KEY, whole, node_id=NODE, boot=3, time_s=T0, first_seq=31, mtu=mtu)
        out.append({"name": f"events-forty-mtu{mtu}", "key": KEY.hex(), "mtu": mtu,
                    "node_id": NODE, "boot": 3, "time_s": T0, "first_seq": 31,
                    "message_hex": whole.hex(), "fragments": [p.hex() for p in parts]})
    return out


def _sign(key: bytes, items: bytes) -> bytes:
    """Sign an already-encoded [kind, header, body] (3-item array) as a frame."""
    signed = bytes([0x84]) + items[1:]
    return signed + bytes([wire.TAG_ITEM_HEAD]) + frame_tag(key, signed)


def _signed(kind: int, header: dict[int, Any], body: Any, *, canonical: bool = True) -> bytes:
    return _sign(KEY, cbor2.dumps([kind, header, body], canonical=canonical))


def _header_map(seq: int, node: int = NODE) -> dict[int, int]:
    return {wire.H_VERSION: 1, wire.H_NODE: node, wire.H_BOOT: 3, wire.H_SEQ: seq,
            wire.H_TIME_S: T0}


def invalid() -> list[dict[str, Any]]:
    good = bytes.fromhex(frames()[0]["hex"])
    ev = {wire.B_EVENTS: [{wire.EV_TYPE: wire.ET_DRAW, wire.EV_ROLE: wire.ROLE_TAP,
                           wire.EV_AGO_DS: 5}]}
    flip = bytearray(good)
    flip[good.index(b"\x18\xf0") + 1] ^= 0x01  # volume 240 ml -> 241 ml
    v: list[tuple[str, str, bytes, str, str]] = [
        # name, layer, bytes, error class, reason. Layers: "frame" errors every decoder
        # must catch, the firmware's too; "schema" the host's checks of a decoded frame;
        # "ingest" those that need the host's store (keys, archive).
        ("empty", "frame", b"", "DecodeError", "decode"),
        ("truncated", "frame", good[:-1], "DecodeError", "decode"),
        ("trailing-byte", "frame", good + b"\x00", "DecodeError", "decode"),
        ("bad-tag", "frame", good[:-1] + bytes([good[-1] ^ 0xFF]), "AuthenticationError",
         "bad_tag"),
        ("bit-flip-in-body", "frame", bytes(flip), "AuthenticationError", "bad_tag"),
        ("not-an-array", "frame", cbor2.dumps({1: b"0123456789abcdef"}), "SchemaError", "schema"),
        ("array-of-three", "frame", cbor2.dumps([1, _header_map(1), ev]), "SchemaError",
         "schema"),
        ("indefinite-array", "frame", b"\x9f" + good[1:-9] + good[-9:] + b"\xff",
         "DecodeError", "decode"),
        ("float-in-body", "frame", _signed(1, _header_map(2), {wire.B_EVENTS: 1.5}),
         "DecodeError", "decode"),
        ("cbor-tag-in-header", "frame", _sign(KEY, b"\x83\x01" + cbor2.dumps(
            {wire.H_VERSION: 1, wire.H_NODE: NODE, wire.H_BOOT: 3, wire.H_SEQ: 3,
             wire.H_TIME_S: cbor2.CBORTag(1, T0)}, canonical=True) + cbor2.dumps(ev)),
         "DecodeError", "decode"),
        ("tag-too-short", "frame", good[:-9] + b"\x47" + good[-7:], "SchemaError", "schema"),
        ("version-2", "frame", _signed(1, {**_header_map(4), wire.H_VERSION: 2}, ev),
         "SchemaError", "schema"),
        ("header-lacks-seq", "frame", _signed(1, {k: v for k, v in _header_map(5).items()
                                                  if k != wire.H_SEQ}, ev),
         "SchemaError", "schema"),
        ("over-mtu", "frame", encode_frame(KEY, "events", _hdr(6), {"events": [
            dict(_EVENTS[0], ago_ds=i) for i in range(14)]}), "DecodeError", "too_large"),
        ("unknown-kind", "schema", _signed(9, _header_map(7), ev), "SchemaError", "schema"),
        ("unknown-body-key", "schema", _signed(1, _header_map(8), {**ev, 9: 1}),
         "SchemaError", "schema"),
        ("event-lacks-role", "schema", _signed(1, _header_map(9), {wire.B_EVENTS: [
            {wire.EV_TYPE: wire.ET_DRAW, wire.EV_AGO_DS: 5}]}), "SchemaError", "schema"),
        ("text-for-uint", "schema", _signed(1, _header_map(10), {wire.B_EVENTS: [
            {wire.EV_TYPE: wire.ET_DRAW, wire.EV_ROLE: wire.ROLE_TAP, wire.EV_AGO_DS: "5"}]}),
         "SchemaError", "schema"),
        ("uint-over-32-bits", "schema", _signed(1, _header_map(11), {wire.B_EVENTS: [
            {wire.EV_TYPE: wire.ET_DRAW, wire.EV_ROLE: wire.ROLE_TAP, wire.EV_AGO_DS: 1 << 32}]}),
         "SchemaError", "schema"),
        ("negative-volume", "schema", _signed(1, _header_map(12), {wire.B_EVENTS: [
            {wire.EV_TYPE: wire.ET_DRAW, wire.EV_ROLE: wire.ROLE_TAP, wire.EV_AGO_DS: 1,
             wire.EV_VOLUME_ML: -5}]}), "SchemaError", "schema"),
        ("unknown-event-type", "schema", _signed(1, _header_map(13), {wire.B_EVENTS: [
            {wire.EV_TYPE: 99, wire.EV_ROLE: wire.ROLE_TAP, wire.EV_AGO_DS: 1}]}),
         "SchemaError", "schema"),
        ("empty-event-list", "schema", _signed(1, _header_map(14), {wire.B_EVENTS: []}),
         "SchemaError", "schema"),
        ("boolean-for-uint", "schema", _signed(3, _header_map(15), {
            wire.ST_FIRMWARE: "x", wire.ST_UPTIME_S: True, wire.ST_RESET_CAUSE: 0}),
         "SchemaError", "schema"),
        ("text-too-long", "schema", _signed(3, _header_map(16), {
            wire.ST_FIRMWARE: "x" * 65, wire.ST_UPTIME_S: 1, wire.ST_RESET_CAUSE: 0}),
         "SchemaError", "schema"),
        ("non-shortest-integer", "schema", _sign(KEY, b"\x83\x18\x01" + good[2:-9]),
         "DecodeError", "decode"),
        ("unsorted-keys", "schema", _signed(1, dict(sorted(_header_map(17).items(),
                                                           reverse=True)), ev, canonical=False),
         "DecodeError", "decode"),
        ("update-get-nine-pieces", "schema", _signed(6, _header_map(22), {
            wire.UG_BUNDLE: 1, wire.UG_OFFSET: 0, wire.UG_PIECES: 9}), "SchemaError", "schema"),
        ("update-piece-empty", "schema", _signed(7, _header_map(23), {
            wire.UP_BUNDLE: 1, wire.UP_OFFSET: 0, wire.UP_DATA: b""}), "SchemaError", "schema"),
        ("ack-offer-without-hash", "schema", _signed(5, _header_map(24), {
            wire.ACK_BOOT: 3, wire.ACK_SEQ: 1, wire.ACK_TIME_S: T0, wire.ACK_UPDATE_BUNDLE: 1,
            wire.ACK_UPDATE_SIZE: 10}), "SchemaError", "schema"),
        ("safe-mode-2", "schema", _signed(3, _header_map(21), {
            wire.ST_FIRMWARE: "x", wire.ST_UPTIME_S: 1, wire.ST_RESET_CAUSE: 0,
            wire.ST_SAFE_MODE: 2}), "SchemaError", "schema"),
        ("fragment-index-past-count", "schema", _signed(4, _header_map(18), {
            wire.FR_MSG: 1, wire.FR_INDEX: 2, wire.FR_COUNT: 2, wire.FR_CHUNK: b"x"}),
         "SchemaError", "schema"),
        ("fragment-of-one", "schema", _signed(4, _header_map(19), {
            wire.FR_MSG: 1, wire.FR_INDEX: 0, wire.FR_COUNT: 1, wire.FR_CHUNK: b"x"}),
         "SchemaError", "schema"),
        ("ack-from-a-node", "ingest", encode_frame(KEY, "ack", _hdr(20), {
            "acked_boot": 1, "acked_seq": 1, "host_time_s": T0}), "SchemaError", "schema"),
        ("update-piece-from-a-node", "ingest", encode_frame(KEY, "update_piece", _hdr(25), {
            "bundle": 1, "offset": 0, "data": b"x"}), "SchemaError", "schema"),
        ("unknown-node", "ingest", encode_frame(KEY, "events", _hdr(1, node=99),
                                                {"events": _EVENTS}),
         "AuthenticationError", "unknown_node"),
        ("replay-of-events-basic", "ingest", encode_frame(KEY, "events", _hdr(10), {
            "events": _EVENTS[:1]}), "ReplayError", "replay"),
    ]
    return [{"name": name, "key": KEY.hex(), "mtu": wire.MTU_DEFAULT, "layer": layer,
             "hex": raw.hex(), "error": error, "reason": reason,
             "after": ["events-basic"] if name.startswith("replay") else []}
            for name, layer, raw, error, reason in v]


def generate() -> dict[str, str]:
    """File name -> JSON text of every vector file."""
    def dump(vectors: list[dict[str, Any]]) -> str:
        return json.dumps({"protocol_version": wire.PROTOCOL_VERSION, "vectors": vectors},
                          indent=1, ensure_ascii=False) + "\n"

    return {"frames.json": dump(frames()), "fragmented.json": dump(fragmented()),
            "invalid.json": dump(invalid())}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["write"], ["check"]):
        print("usage: python -m kinsight.wire.vectors write|check",  # noqa: T201
              file=sys.stderr)
        return 2
    stale = []
    for name, text in generate().items():
        path = VECTOR_DIR / name
        if args == ["write"]:
            path.write_text(text, encoding="utf-8")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    if stale:
        print(f"vectors out of date: {', '.join(stale)}; "  # noqa: T201
              "run python -m kinsight.wire.vectors write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
