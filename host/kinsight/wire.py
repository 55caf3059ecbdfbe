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

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import cbor2

import kinsight_wire as wire

from .errors import AuthenticationError, DecodeError, SchemaError

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
    "decode_frame",
    "encode_frame",
    "frame_tag",
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


Body = EventBatch | SummaryBatch | Status | Fragment | Ack


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded, checked frame and the bytes it came from."""

    kind: str
    header: Header
    body: Body
    raw: bytes


# --- tables derived from kinsight_wire, once --------------------------------------------------

_Field = tuple[int, str, int, int]
_ENUMS: dict[str, dict[int, str]] = {
    "type": dict(wire.EVENT_TYPES),
    "role": dict(wire.ROLES),
    "reset_cause": dict(wire.RESET_CAUSES),
}
_ENUM_CODES = {name: {v: k for k, v in table.items()} for name, table in _ENUMS.items()}
_KIND_NAMES: dict[int, str] = {k: name for k, name, _, _ in wire.KINDS}
_KIND_CODES = {name: k for k, name in _KIND_NAMES.items()}
_BODY_CLASS: dict[str, type] = {
    "events": EventBatch,
    "summary": SummaryBatch,
    "status": Status,
    "fragment": Fragment,
    "ack": Ack,
}
_ITEM_CLASS: dict[str, type] = {"events": Event, "summary": Summary}


class _Table:
    """One field table of kinsight_wire, indexed for checking and naming."""

    def __init__(self, where: str, spec: Sequence[_Field], item: _Table | None = None):
        self.where = where
        self.by_key = {key: (name, vtype) for key, name, vtype, _ in spec}
        self.by_name = {name: (key, vtype) for key, name, vtype, _ in spec}
        self.required = frozenset(key for key, _, _, req in spec if req == wire.REQUIRED)
        self.item = item


def _build_tables() -> dict[int, _Table]:
    tables = {}
    for kind, name, body_spec, item_spec in wire.KINDS:
        item = _Table(f"{name} item", item_spec) if item_spec is not None else None
        tables[kind] = _Table(f"{name} body", body_spec, item)
    return tables


_TABLES = _build_tables()
_HEADER = _Table("header", wire.HEADER_FIELDS)

_CLASS_FIELDS = {cls: {f.name for f in fields(cls)} for cls in (Header, *_BODY_CLASS.values(),
                                                                 *_ITEM_CLASS.values())}


# --- tags --------------------------------------------------------------------------------------


def frame_tag(key: bytes, signed: bytes) -> bytes:
    """HMAC-SHA256 of the signed bytes, truncated to the wire's tag length."""
    return hmac.digest(key, signed, hashlib.sha256)[: wire.TAG_LEN]


def verify_tag(raw: bytes, key: bytes, *, node_id: int | None = None) -> None:
    """Raise AuthenticationError unless the frame's last 8 bytes are its tag under key."""
    good = frame_tag(key, raw[: -wire.TAG_ITEM_LEN])
    if not hmac.compare_digest(good, raw[-wire.TAG_LEN :]):
        raise AuthenticationError(
            f"frame tag does not verify under the key of node {node_id}", node_id=node_id
        )


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
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise DecodeError(f"frame must be bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    if max_frame_bytes is not None and len(raw) > max_frame_bytes:
        raise DecodeError(f"frame of {len(raw)} bytes is over the {max_frame_bytes}-byte limit",
                          reason="too_large")
    if len(raw) < wire.TAG_ITEM_LEN + 2:
        raise DecodeError(f"frame of {len(raw)} bytes is too short to hold a tag")
    try:
        item = cbor2.loads(raw, max_depth=wire.MAX_DEPTH, allow_indefinite=False,
                           allow_duplicate_keys=False)
    except Exception as exc:  # noqa: BLE001 - any failure of the parser on untrusted bytes
        raise DecodeError(f"not well-formed CBOR: {exc}") from None
    try:
        canonical = cbor2.dumps(item, canonical=True)
    except Exception:  # noqa: BLE001 - values cbor2 cannot re-encode are not in the subset
        canonical = b""
    if canonical != raw:
        raise DecodeError(
            "frame is not one CBOR item in deterministic encoding (shortest heads, sorted "
            "integer keys, no tags, floats or trailing bytes)"
        )
    if type(item) is not list or len(item) != wire.FRAME_ITEMS:
        raise SchemaError(f"frame must be an array of {wire.FRAME_ITEMS} items")
    kind, header_map, body, tag = item
    if type(kind) is not int or kind not in _TABLES:
        raise SchemaError(f"unknown frame kind {kind!r}")
    if (type(tag) is not bytes or len(tag) != wire.TAG_LEN
            or raw[-wire.TAG_ITEM_LEN] != wire.TAG_ITEM_HEAD):
        raise SchemaError(f"frame must end with a {wire.TAG_LEN}-byte tag")
    values = _check_map(header_map, _HEADER)
    if values["version"] != wire.PROTOCOL_VERSION:
        raise SchemaError(
            f"protocol version {values['version']} is not supported (this host speaks "
            f"{wire.PROTOCOL_VERSION})",
            node_id=values["node_id"],
        )
    return RawFrame(kind, Header(**values), body, raw)


def open_frame(raw: bytes, key: bytes, *, max_frame_bytes: int | None = wire.MTU_DEFAULT) -> Frame:
    """Decode, verify the tag under key, and check the body: the whole frame or an error."""
    rf = decode_frame(raw, max_frame_bytes=max_frame_bytes)
    verify_tag(rf.raw, key, node_id=rf.header.node_id)
    return check_body(rf)


def check_body(rf: RawFrame) -> Frame:
    """Check a decoded frame's body against its kind's table and build its record."""
    kind_name = _KIND_NAMES[rf.kind]
    table = _TABLES[rf.kind]
    try:
        values = _check_map(rf.body, table)
        cls = _BODY_CLASS[kind_name]
        if table.item is not None:
            item_cls = _ITEM_CLASS[kind_name]
            (list_name,) = values
            values[list_name] = tuple(item_cls(**_check_map(x, table.item, i))
                                      for i, x in enumerate(values[list_name]))
        body = cls(**values)
    except SchemaError as exc:
        exc.node_id = rf.header.node_id
        raise
    if isinstance(body, Fragment):
        _check_fragment(body, rf.header.node_id)
    return Frame(kind_name, rf.header, body, rf.raw)


def _check_fragment(frag: Fragment, node_id: int) -> None:
    if not 2 <= frag.count <= wire.MAX_FRAGMENTS:
        raise SchemaError(f"fragment count {frag.count} is outside 2..{wire.MAX_FRAGMENTS}",
                          node_id=node_id)
    if frag.index >= frag.count:
        raise SchemaError(f"fragment index {frag.index} is not below its count {frag.count}",
                          node_id=node_id)
    if not frag.chunk:
        raise SchemaError("fragment chunk is empty", node_id=node_id)


def _check_map(m: Any, table: _Table, index: int | None = None) -> dict[str, Any]:
    where = table.where if index is None else f"{table.where} {index}"
    if type(m) is not dict:
        raise SchemaError(f"{where} must be a map, not {_cbor_type(m)}")
    out: dict[str, Any] = {}
    for key, value in m.items():
        spec = table.by_key.get(key) if type(key) is int else None
        if spec is None:
            raise SchemaError(f"{where} has unknown key {key!r}")
        name, vtype = spec
        out[name] = _check_value(value, vtype, name, where, table)
    if not table.required.issubset(m):
        missing = sorted(table.by_key[k][0] for k in table.required - set(m))
        raise SchemaError(f"{where} lacks {', '.join(missing)}")
    return out


def _check_value(value: Any, vtype: int, name: str, where: str, table: _Table) -> Any:
    t = type(value)
    if vtype == wire.T_UINT:
        if t is not int or not 0 <= value <= wire.U32_MAX:
            raise SchemaError(f"{where} {name} must be an integer 0..{wire.U32_MAX}, "
                              f"not {_show(value)}")
        enum = _ENUMS.get(name)
        if enum is not None:
            if value not in enum:
                raise SchemaError(f"{where} {name} {value} is not a known {name}")
            return enum[value]
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


def encode_frame(key: bytes, kind: str, header: Header, body: Mapping[str, Any] | Body) -> bytes:
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
            value = _ENUM_CODES[name][value]
        if vtype == wire.T_LIST and table.item is not None:
            value = [_encode_map(_as_dict(x), table.item) for x in value]
        out[key] = value
    return out


def kind_code(name: str) -> int:
    """The wire number of a frame kind's name."""
    return _KIND_CODES[name]


def fragment_frame(key: bytes, frame: bytes, *, node_id: int, boot: int, time_s: int,
                   first_seq: int, mtu: int = wire.MTU_DEFAULT) -> list[bytes]:
    """Cut a whole frame into fragment frames of at most mtu bytes, as a node does.

    The whole frame's own sequence number is the message id; fragment i takes
    sequence number first_seq + i.

    >>> key = bytes(32)
    >>> whole = encode_frame(key, "status", Header(node_id=1, boot=1, seq=5, time_s=0),
    ...                      {"firmware": "x" * 60, "uptime_s": 1, "reset_cause": "soft",
    ...                       "config_error": "y" * 64})
    >>> parts = fragment_frame(key, whole, node_id=1, boot=1, time_s=0, first_seq=6, mtu=100)
    >>> len(parts), max(map(len, parts)) <= 100
    (4, True)
    """
    chunk_len = mtu - wire.FRAGMENT_OVERHEAD
    if chunk_len < 1:
        raise ValueError(f"an MTU of {mtu} bytes leaves no room for a fragment's chunk")
    if len(frame) > wire.MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {len(frame)} bytes is over {wire.MAX_MESSAGE_BYTES}")
    count = -(-len(frame) // chunk_len)
    if not 2 <= count <= wire.MAX_FRAGMENTS:
        raise ValueError(f"message of {len(frame)} bytes would take {count} fragments at MTU "
                         f"{mtu}: 2..{wire.MAX_FRAGMENTS} allowed")
    msg = decode_frame(frame, max_frame_bytes=None).header.seq
    return [
        encode_frame(key, "fragment", Header(node_id=node_id, boot=boot, seq=first_seq + i,
                                             time_s=time_s),
                     {"msg": msg, "index": i, "count": count,
                      "chunk": frame[i * chunk_len:(i + 1) * chunk_len]})
        for i in range(count)
    ]
