"""Frames on the wire, host side: decode, check, verify and encode.

The layout and every number come from the protocol constants module
``kinsight_wire`` (``shared/kinsight_wire.py``), the same file the firmware
imports; ``shared/frames.cddl`` describes the frames. This module adds only what
the host needs on top: typed records and strict checks.

>>> key = bytes(range(32))
>>> raw = encode_frame(key, "status", Header(node_id=7, boot=1, seq=0, time_s=1_790_000_000),
...                    {"firmware": "0.1.0", "uptime_s": 12, "reset_cause": "power_on"})
>>> len(raw) <= wire.MTU_DEFAULT
True
>>> frame = open_frame(raw, key)
>>> frame.kind, frame.header.seq, frame.body.firmware, frame.body.reset_cause
('status', 0, '0.1.0', 'power_on')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import cbor2

import kinsight_wire as wire

from ..errors import DecodeError, SchemaError
from .fastcheck import Checker, compile_checker
from .tags import TagKey, frame_tag, keyed_mac, verify_tag

__all__ = [
    "Ack",
    "Body",
    "Event",
    "EventBatch",
    "Fragment",
    "Frame",
    "Header",
    "Status",
    "Summary",
    "SummaryBatch",
    "TagKey",
    "RawFrame",
    "UpdateGet",
    "UpdatePiece",
    "body_rows",
    "check_body",
    "decode_frame",
    "encode_ack",
    "encode_frame",
    "frame_tag",
    "keyed_mac",
    "open_frame",
    "verify_tag",
    "wire",
]


@dataclass(frozen=True, slots=True)
class Header:
    node_id: int
    boot: int
    seq: int
    time_s: int
    version: int = wire.PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Event:
    """Something a node's feature extraction noticed, e.g. one draw of water."""

    type: str
    role: str
    ago_ds: int
    duration_ds: int | None = None
    volume_ml: int | None = None
    peak_flow_ml_min: int | None = None
    rise_ds: int | None = None
    restless: int | None = None
    hr_bpm: int | None = None

    def start_ms(self, header: Header) -> int:
        """When the event began, in ms since 1970, by the node's clock."""
        return header.time_s * 1000 - self.ago_ds * 100


@dataclass(frozen=True, slots=True)
class Summary:
    """One sensor's totals over one interval (default 15 minutes)."""

    role: str
    ago_s: int
    period_s: int
    occupied_ds: int | None = None
    episodes: int | None = None
    volume_ml: int | None = None
    restless: int | None = None
    rise_ds_max: int | None = None
    dwell_ds_max: int | None = None
    faults: int | None = None
    hr_rest_bpm: int | None = None
    hr_mean_bpm: int | None = None
    hr_wear_s: int | None = None
    hr_quality_pm: int | None = None

    def end_s(self, header: Header) -> int:
        return header.time_s - self.ago_s


@dataclass(frozen=True, slots=True)
class EventBatch:
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class SummaryBatch:
    summaries: tuple[Summary, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """A node's diagnostics, for the field team."""

    firmware: str
    uptime_s: int
    reset_cause: str
    free_heap: int | None = None
    largest_block: int | None = None
    queue_depth: int | None = None
    frames_sent: int | None = None
    frames_acked: int | None = None
    frames_dropped: int | None = None
    rssi_dbm: int | None = None
    supply_mv: int | None = None
    config_error: str | None = None
    safe_mode: int | None = None
    crashes: int | None = None
    crash_time_s: int | None = None
    crash_cause: str | None = None
    crash_what: str | None = None
    bundle: int | None = None
    bundle_failed: int | None = None


@dataclass(frozen=True, slots=True)
class Fragment:
    msg: int
    index: int
    count: int
    chunk: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    acked_boot: int
    acked_seq: int
    host_time_s: int
    contiguous_seq: int | None = None
    update_bundle: int | None = None  # a firmware bundle waits for the node (the offer)
    update_size: int | None = None
    update_sha256: bytes | None = None


@dataclass(frozen=True, slots=True)
class UpdateGet:
    """A node asks for pieces of a firmware bundle, from the byte it has up to."""

    bundle: int
    offset: int
    pieces: int


@dataclass(frozen=True, slots=True)
class UpdatePiece:
    bundle: int
    offset: int
    data: bytes


Body = EventBatch | SummaryBatch | Status | Fragment | Ack | UpdateGet | UpdatePiece


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded, checked frame and the bytes it came from."""

    kind: str
    header: Header
    body: Body
    raw: bytes


# --- tables derived from kinsight_wire, once --------------------------------------------------

_Field = tuple[int, str, int, int]
_U32_MAX = wire.U32_MAX
_ENUMS: dict[str, dict[int, str]] = {
    "type": dict(wire.EVENT_TYPES),
    "role": dict(wire.ROLES),
    "reset_cause": dict(wire.RESET_CAUSES),
    "crash_cause": dict(wire.RESET_CAUSES),
}
# Unsigned fields frames.cddl narrows below u32 (the fragment's index and count are
# checked with each other in _check_fragment).
_RANGES: dict[str, tuple[int, int]] = {"safe_mode": (0, 1),
                                       "pieces": (1, wire.MAX_UPDATE_PIECES)}
# More key sets than any table has (status, the widest, allows 2**10): a guard only.
_MAX_CHECKERS = 4096
_ENUM_CODES = {name: {v: k for k, v in table.items()} for name, table in _ENUMS.items()}
_KIND_NAMES: dict[int, str] = {k: name for k, name, _, _ in wire.KINDS}
_KIND_CODES = {name: k for k, name in _KIND_NAMES.items()}
_BODY_CLASS: dict[str, type] = {
    "events": EventBatch,
    "summary": SummaryBatch,
    "status": Status,
    "fragment": Fragment,
    "ack": Ack,
    "update_get": UpdateGet, "update_piece": UpdatePiece,
}
_ITEM_CLASS: dict[str, type] = {"events": Event, "summary": Summary}


class _Table:
    """One field table of kinsight_wire, indexed for checking and naming.

    A checked map becomes a row: its values in the table's order, None where an
    optional field is absent, enumerations as their names.
    """

    def __init__(self, where: str, spec: Sequence[_Field], item: _Table | None = None):
        self.where = where
        self.names = tuple(name for _, name, _, _ in spec)
        self.by_key = {key: (pos, name, vtype, vtype == wire.T_UINT and name not in _ENUMS
                             and name not in _RANGES)
                       for pos, (key, name, vtype, _) in enumerate(spec)}
        self.by_name = {name: (key, vtype) for key, name, vtype, _ in spec}
        self.required = frozenset(key for key, _, _, req in spec if req == wire.REQUIRED)
        self.width = len(spec)
        self.item = item
        self._fields = {key: (pos, name, vtype) for pos, (key, name, vtype, _) in enumerate(spec)}
        # Compiled checkers by key set; only the table's own (finitely many) are kept.
        self._checkers: dict[tuple[Any, ...], Checker] = {}

    def row(self, m: Any, index: int | None = None) -> tuple[Any, ...]:
        """Check a map; its row, or a typed error naming the first thing wrong."""
        if type(m) is dict:
            keys = tuple(m)
            checker = self._checkers.get(keys)
            if checker is None and self._allows(keys):
                checker = self._checkers[keys] = compile_checker(
                    keys, self._fields, self.width, _ENUMS, _RANGES)
            if checker is not None:
                row = checker(m)
                if row is not None:
                    return row
        return self.row_by_field(m, index)

    def _allows(self, keys: tuple[Any, ...]) -> bool:
        """Whether a map of these keys (in this order) could be valid: all integers the
        table knows, ascending, the required ones among them."""
        return (bool(keys) and len(self._checkers) < _MAX_CHECKERS
                and all(type(k) is int and k in self._fields for k in keys)
                and all(a < b for a, b in zip(keys, keys[1:], strict=False))
                and self.required.issubset(keys))

    def row_by_field(self, m: Any, index: int | None = None) -> tuple[Any, ...]:
        """Check a map field by field, naming the first thing wrong."""
        if type(m) is not dict:
            raise SchemaError(f"{self._where(index)} must be a map, not {_cbor_type(m)}")
        row: list[Any] = [None] * self.width
        by_key = self.by_key
        last = -1
        for key, value in m.items():
            spec = by_key.get(key) if type(key) is int else None
            if spec is None:
                raise SchemaError(f"{self._where(index)} has unknown key {key!r}")
            if key < last:
                raise DecodeError(f"{self._where(index)} keys are not in ascending order, as "
                                  "deterministic encoding requires")
            last = key
            pos, name, vtype, plain_uint = spec
            if plain_uint and type(value) is int and 0 <= value <= _U32_MAX:
                row[pos] = value  # the common case, checked inline for speed
            else:
                row[pos] = _check_value(value, vtype, name, self, index)
        if not self.required.issubset(m):
            missing = sorted(self.by_key[k][1] for k in self.required - set(m))
            raise SchemaError(f"{self._where(index)} lacks {', '.join(missing)}")
        return tuple(row)

    def _where(self, index: int | None) -> str:
        return self.where if index is None else f"{self.where} {index}"


def _build_tables() -> dict[int, _Table]:
    tables = {}
    for kind, name, body_spec, item_spec in wire.KINDS:
        item = _Table(f"{name} item", item_spec) if item_spec is not None else None
        tables[kind] = _Table(f"{name} body", body_spec, item)
    return tables


_TABLES = _build_tables()
_HEADER = _Table("header", wire.HEADER_FIELDS)
EVENT_NAMES = _TABLES[wire.KIND_EVENTS].item.names  # type: ignore[union-attr]
SUMMARY_NAMES = _TABLES[wire.KIND_SUMMARY].item.names  # type: ignore[union-attr]
STATUS_NAMES = _TABLES[wire.KIND_STATUS].names

_CLASS_FIELDS = {cls: {f.name for f in fields(cls)} for cls in (Header, *_BODY_CLASS.values(),
                                                                 *_ITEM_CLASS.values())}
# Tags cbor2 would turn into Python objects are refused while decoding.


class _NoTags(dict):  # type: ignore[type-arg]
    def get(self, key: object, default: object = None) -> object:
        return _refuse_tag

    def __contains__(self, key: object) -> bool:
        return True


def _refuse_tag(*_: object) -> object:
    raise ValueError("CBOR tags are not part of the wire subset")


_NO_TAGS = _NoTags()


# --- decoding ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawFrame:
    """A frame whose CBOR and header are sound, before its tag and body are checked."""

    kind: int
    header: Header
    body: Any
    raw: bytes


def decode_frame(raw: bytes, *, max_frame_bytes: int | None = wire.MTU_DEFAULT) -> RawFrame:
    """Decode the CBOR item and check the frame's outer shape and header.

    The tag is not verified here (that needs the node's key): see open_frame.
    """
    if type(raw) is not bytes:
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise DecodeError(f"frame must be bytes, not {type(raw).__name__}")
        raw = bytes(raw)
    n = len(raw)
    if max_frame_bytes is not None and n > max_frame_bytes:
        raise DecodeError(f"frame of {n} bytes is over the {max_frame_bytes}-byte limit",
                          reason="too_large")
    if n < wire.TAG_ITEM_LEN + 2:
        raise DecodeError(f"frame of {n} bytes is too short to hold a tag")
    try:
        item = cbor2.loads(raw, max_depth=wire.MAX_DEPTH, allow_indefinite=False,
                           allow_duplicate_keys=False, semantic_decoders=_NO_TAGS)
    except Exception as exc:  # noqa: BLE001 - any failure of the parser on untrusted bytes
        raise DecodeError(f"not well-formed CBOR: {exc}") from None
    # Re-encoding gives back the same bytes only if every head was in its shortest form
    # and nothing trailed; Table.row checks the ascending key order.
    try:
        again = cbor2.dumps(item)
    except Exception:  # noqa: BLE001 - values cbor2 cannot encode are not in the subset
        again = b""
    if again != raw:
        raise DecodeError("frame is not one CBOR item in deterministic encoding (shortest "
                          "heads, no floats, nothing after the tag)")
    if type(item) is not list or len(item) != wire.FRAME_ITEMS:
        raise SchemaError(f"frame must be an array of {wire.FRAME_ITEMS} items")
    kind, header_map, body, tag = item
    if type(kind) is not int or kind not in _TABLES:
        raise SchemaError(f"unknown frame kind {kind!r}")
    if type(tag) is not bytes or len(tag) != wire.TAG_LEN:
        raise SchemaError(f"frame must end with a {wire.TAG_LEN}-byte tag")
    version, node_id, boot, seq, time_s = _HEADER.row(header_map)
    if version != wire.PROTOCOL_VERSION:
        raise SchemaError(f"protocol version {version} is not supported (this host speaks "
                          f"{wire.PROTOCOL_VERSION})", node_id=node_id)
    return RawFrame(kind, Header(node_id, boot, seq, time_s, version), body, raw)


def open_frame(raw: bytes, key: TagKey, *, max_frame_bytes: int | None = wire.MTU_DEFAULT) -> Frame:
    """Decode, verify the tag under key, and check the body: the whole frame or an error."""
    rf = decode_frame(raw, max_frame_bytes=max_frame_bytes)
    verify_tag(rf.raw, key, node_id=rf.header.node_id)
    return check_body(rf)


def body_rows(rf: RawFrame) -> tuple[str, Any]:
    """Check a decoded frame's body; its kind's name and its row (or rows, for the
    kinds that carry a list: one row per event or summary)."""
    table = _TABLES[rf.kind]
    try:
        row = table.row(rf.body)
        if table.item is not None:
            items = row[0]
            return _KIND_NAMES[rf.kind], [table.item.row(x, i) for i, x in enumerate(items)]
        if rf.kind == wire.KIND_FRAGMENT:
            _check_fragment(*row)
        elif rf.kind == wire.KIND_ACK:
            _check_offer(*row[4:])
        elif rf.kind == wire.KIND_UPDATE_PIECE and not 0 < len(row[2]) <= wire.UPDATE_PIECE_BYTES:
            raise SchemaError(f"update piece of {len(row[2])} bytes: 1..{wire.UPDATE_PIECE_BYTES}")
    except SchemaError as exc:
        exc.node_id = rf.header.node_id
        raise
    return _KIND_NAMES[rf.kind], row


def check_body(rf: RawFrame) -> Frame:
    """Check a decoded frame's body against its kind's table and build its record."""
    kind_name, rows = body_rows(rf)
    table = _TABLES[rf.kind]
    cls = _BODY_CLASS[kind_name]
    if table.item is not None:
        item_cls, names = _ITEM_CLASS[kind_name], table.item.names
        body = cls(tuple(item_cls(**dict(zip(names, r, strict=True))) for r in rows))
    else:
        body = cls(**dict(zip(table.names, rows, strict=True)))
    return Frame(kind_name, rf.header, body, rf.raw)


def _check_fragment(msg: int, index: int, count: int, chunk: bytes) -> None:
    if not 2 <= count <= wire.MAX_FRAGMENTS:
        raise SchemaError(f"fragment count {count} is outside 2..{wire.MAX_FRAGMENTS}")
    if index >= count:
        raise SchemaError(f"fragment index {index} is not below its count {count}")
    if not chunk:
        raise SchemaError("fragment chunk is empty")


def _check_offer(bundle: int | None, size: int | None, sha256: bytes | None) -> None:
    if (bundle, size, sha256) != (None, None, None) and (
            bundle is None or size is None or sha256 is None
            or not 1 <= size <= wire.MAX_BUNDLE_BYTES or len(sha256) != 32):
        raise SchemaError("an ack's update offer needs its bundle, a size of 1.."
                          f"{wire.MAX_BUNDLE_BYTES} bytes and a 32-byte sha256, together")


def _check_value(value: Any, vtype: int, name: str, table: _Table, index: int | None) -> Any:
    t = type(value)
    if vtype == wire.T_UINT and t is int and 0 <= value <= _U32_MAX:
        enum = _ENUMS.get(name)
        if enum is not None and value in enum:
            return enum[value]
    where = table._where(index)
    if vtype == wire.T_UINT:
        if t is not int or not 0 <= value <= wire.U32_MAX:
            raise SchemaError(f"{where} {name} must be an integer 0..{wire.U32_MAX}, "
                              f"not {_show(value)}")
        enum = _ENUMS.get(name)
        if enum is not None:
            if value not in enum:
                raise SchemaError(f"{where} {name} {value} is not a known {name}")
            return enum[value]
        narrow = _RANGES.get(name)
        if narrow is not None and not narrow[0] <= value <= narrow[1]:
            raise SchemaError(f"{where} {name} must be {narrow[0]}..{narrow[1]}, not {value}")
        return value
    if vtype == wire.T_INT:
        if t is not int or not wire.I32_MIN <= value <= wire.I32_MAX:
            raise SchemaError(f"{where} {name} must be a 32-bit integer, not {_show(value)}")
        return value
    if vtype == wire.T_TEXT:
        if t is not str:
            raise SchemaError(f"{where} {name} must be text, not {_cbor_type(value)}")
        if len(value.encode()) > wire.MAX_TEXT_BYTES:
            raise SchemaError(f"{where} {name} is over {wire.MAX_TEXT_BYTES} bytes")
        return value
    if vtype == wire.T_BYTES:
        if t is not bytes:
            raise SchemaError(f"{where} {name} must be a byte string, not {_cbor_type(value)}")
        return value
    if vtype == wire.T_LIST:
        if t is not list or not 1 <= len(value) <= wire.MAX_LIST_ITEMS:
            raise SchemaError(f"{where} {name} must be an array of 1..{wire.MAX_LIST_ITEMS} maps")
        return value
    raise SchemaError(f"{where} {name} has an unknown value type {vtype}")  # pragma: no cover


def _cbor_type(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", str: "text", bytes: "a byte string",
            list: "an array", dict: "a map", float: "a float", type(None): "null"}.get(
        type(value), type(value).__name__)


def _show(value: Any) -> str:
    return repr(value) if type(value) is int else _cbor_type(value)


# --- encoding ----------------------------------------------------------------------------------


def encode_frame(key: TagKey, kind: str, header: Header, body: Mapping[str, Any] | Body) -> bytes:
    """Build a signed frame from names (the host's side of the encoding, e.g. for acks).

    body is a record (Status, EventBatch, ...) or a plain dict keyed by field name; list
    fields take records or dicts too. Enumerations (type, role, reset_cause) are names.
    """
    code = _KIND_CODES.get(kind)
    if code is None:
        raise ValueError(f"unknown frame kind {kind!r}")
    table = _TABLES[code]
    header_map = _encode_map(_as_dict(header), _HEADER)
    body_map = _encode_map(_as_dict(body), table)
    head = cbor2.dumps([code, header_map, body_map], canonical=True)
    # The tag is appended inside the same array: re-head it as 4 items rather than 3.
    signed = bytes([0x80 | wire.FRAME_ITEMS]) + head[1:]
    return signed + bytes([wire.TAG_ITEM_HEAD]) + frame_tag(key, signed)


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    if type(obj) in _CLASS_FIELDS:
        return {f: getattr(obj, f) for f in _CLASS_FIELDS[type(obj)]}
    raise TypeError(f"cannot encode {type(obj).__name__} as a map")


def _encode_map(values: Mapping[str, Any], table: _Table) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        spec = table.by_name.get(name)
        if spec is None:
            raise ValueError(f"{table.where} has no field {name!r}")
        key, vtype = spec
        if name in _ENUM_CODES and isinstance(value, str):
            out[key] = _ENUM_CODES[name][value]
        elif vtype == wire.T_LIST and table.item is not None:
            out[key] = [_encode_map(_as_dict(x), table.item) for x in value]
        else:
            out[key] = value
    return out


_SMALL_UINTS = [bytes([v]) for v in range(24)]


def _uint(v: int) -> bytes:
    if v < 24:
        return _SMALL_UINTS[v]
    if v < 0x100:
        return b"\x18" + v.to_bytes(1, "big")
    if v < 0x10000:
        return b"\x19" + v.to_bytes(2, "big")
    return b"\x1a" + v.to_bytes(4, "big")


def encode_ack(key: TagKey, header: Header, ack: Ack) -> bytes:
    """encode_frame(key, "ack", header, ack), written out by hand: the host sends one
    for every frame it stores, so this is on the ingest path's hot loop."""
    if ack.update_bundle is not None:  # an offer rides on it: rare, the general path
        return encode_frame(key, "ack", header, ack)
    # Values over 32 bits make to_bytes raise OverflowError; negative ones too.
    contiguous = ack.contiguous_seq
    parts = [b"\x84\x05\xa5\x01", _uint(header.version), b"\x02", _uint(header.node_id),
             b"\x03", _uint(header.boot), b"\x04", _uint(header.seq), b"\x05",
             _uint(header.time_s), b"\xa3" if contiguous is None else b"\xa4",
             b"\x01", _uint(ack.acked_boot), b"\x02", _uint(ack.acked_seq)]
    if contiguous is not None:
        parts += (b"\x03", _uint(contiguous))
    parts += (b"\x04", _uint(ack.host_time_s))
    signed = b"".join(parts)
    return signed + b"\x48" + frame_tag(key, signed)
