"""Cutting messages into fragments (``fragment_frame``) and putting them back together, in
bounded memory.

Fragments may come out of order, twice, or never. A message is keyed by
(node, boot, msg); its pieces wait here until all have come, until it times out,
or until newer messages need the room (oldest go first, per node, then overall).
Every message that leaves without completing is reported as a ``Dropped``.

The limits count what a held message really costs in memory: its payload and the
bookkeeping around it (``MESSAGE_OVERHEAD_BYTES`` a message plus
``SLOT_BYTES`` a piece it announces, ``PIECE_OVERHEAD_BYTES`` a piece held), so
a sender of one-byte pieces cannot hold five hundred times the budget. Messages
are kept in arrival order, overall and per node: eviction and expiry take the
oldest without looking at the rest.

>>> from kinsight.wire import Fragment
>>> r = Reassembler()
>>> r.add(7, 1, Fragment(msg=3, index=1, count=2, chunk=b"world"), now_ms=0) is None
True
>>> r.add(7, 1, Fragment(msg=3, index=0, count=2, chunk=b"hello "), now_ms=5)
b'hello world'
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import kinsight_wire as wire

from ..errors import ReassemblyError, ReassemblyLimitError
from .frames import Fragment, Header, decode_frame, encode_frame

MessageKey = tuple[int, int, int]  # node_id, boot, msg


#: What a held message costs beyond its pieces, measured with tracemalloc on CPython
#: 3.11 (about 400 bytes: its record, key, entries in the two arrival orders), rounded up.
MESSAGE_OVERHEAD_BYTES = 416
#: A slot for each piece a message announces (a list entry), held or not.
SLOT_BYTES = 8
#: A held piece beyond its payload: the bytes object's header.
PIECE_OVERHEAD_BYTES = 40


def message_cost(count: int, chunk_lens: list[int]) -> int:
    """The memory a message of count pieces costs while these pieces are held."""
    return (MESSAGE_OVERHEAD_BYTES + SLOT_BYTES * count
            + sum(n + PIECE_OVERHEAD_BYTES for n in chunk_lens))


_LARGEST_MESSAGE_COST = message_cost(wire.MAX_FRAGMENTS, [wire.MAX_MESSAGE_BYTES]) + \
    (wire.MAX_FRAGMENTS - 1) * PIECE_OVERHEAD_BYTES


@dataclass(frozen=True)
class ReassemblyLimits:
    """How much a host holds for incomplete messages (bytes of memory, as
    ``message_cost`` counts them), and for how long."""

    max_fragments: int = wire.MAX_FRAGMENTS
    max_message_bytes: int = wire.MAX_MESSAGE_BYTES  # payload of one message
    max_node_bytes: int = 4 * _LARGEST_MESSAGE_COST  # four messages of the largest kind
    max_total_bytes: int = 4 * 1024 * 1024
    timeout_ms: int = 120_000

    def __post_init__(self) -> None:
        for name in ("max_fragments", "max_message_bytes", "max_node_bytes",
                     "max_total_bytes", "timeout_ms"):
            if getattr(self, name) < 1:
                raise ValueError(f"reassembly limit {name} must be positive")


@dataclass(frozen=True)
class Dropped:
    """A message given up on: why, and how much of it had come."""

    node_id: int
    boot: int
    msg: int
    have: int
    count: int
    reason: str  # "reassembly_timeout" or "reassembly_evicted"


class _Pending:
    __slots__ = ("count", "first_ms", "chunks", "have", "size", "cost")

    def __init__(self, count: int, first_ms: int):
        self.count = count
        self.first_ms = first_ms
        self.chunks: list[bytes | None] = [None] * count
        self.have = 0
        self.size = 0  # payload bytes
        self.cost = MESSAGE_OVERHEAD_BYTES + SLOT_BYTES * count  # memory, as counted


class Reassembler:
    def __init__(self, limits: ReassemblyLimits | None = None):
        self.limits = limits or ReassemblyLimits()
        self._pending: OrderedDict[MessageKey, _Pending] = OrderedDict()  # oldest first
        self._by_node: dict[int, OrderedDict[MessageKey, None]] = {}  # the same, per node
        self._node_bytes: dict[int, int] = {}
        self._total_bytes = 0
        self._dropped: list[Dropped] = []

    @property
    def total_bytes(self) -> int:
        """Memory held for incomplete messages, as message_cost counts it."""
        return self._total_bytes

    def node_bytes(self, node_id: int) -> int:
        return self._node_bytes.get(node_id, 0)

    def __len__(self) -> int:
        return len(self._pending)

    def is_pending(self, node_id: int, boot: int, msg: int) -> bool:
        return (node_id, boot, msg) in self._pending

    def held(self, node_id: int, boot: int, msg: int) -> set[int]:
        """The indexes of the pieces of a message held now."""
        p = self._pending.get((node_id, boot, msg))
        return set() if p is None else {i for i, c in enumerate(p.chunks) if c is not None}

    def add(self, node_id: int, boot: int, frag: Fragment, now_ms: int) -> bytes | None:
        """Take one fragment; return the whole message once its last piece is in."""
        lim = self.limits
        if frag.count > lim.max_fragments:
            raise ReassemblyLimitError(
                f"message {msg_name(node_id, boot, frag.msg)} has {frag.count} fragments, "
                f"over the limit of {lim.max_fragments}", node_id=node_id)
        if frag.index >= frag.count:
            raise ReassemblyError(f"fragment {frag.index} of {frag.count} is out of range",
                                  node_id=node_id)
        key = (node_id, boot, frag.msg)
        p = self._pending.get(key)
        if p is not None and p.count != frag.count:
            raise ReassemblyError(
                f"fragment of message {msg_name(*key)} says {frag.count} pieces, earlier ones "
                f"said {p.count}", node_id=node_id)
        if p is not None:
            old = p.chunks[frag.index]
            if old is not None:
                if old != frag.chunk:
                    raise ReassemblyError(
                        f"fragment {frag.index} of message {msg_name(*key)} came twice with "
                        "different bytes", node_id=node_id)
                return None
        n = len(frag.chunk)
        if (p.size if p is not None else 0) + n > lim.max_message_bytes:
            self._forget(key)
            raise ReassemblyLimitError(
                f"message {msg_name(*key)} is over {lim.max_message_bytes} bytes", node_id=node_id)
        cost = n + PIECE_OVERHEAD_BYTES
        if p is None:
            p = _Pending(frag.count, now_ms)
            cost += p.cost
            p.cost = 0
            self._pending[key] = p
            self._by_node.setdefault(node_id, OrderedDict())[key] = None
        self._make_room(node_id, cost, keep=key)
        p.chunks[frag.index] = frag.chunk
        p.have += 1
        p.size += n
        p.cost += cost
        self._node_bytes[node_id] = self._node_bytes.get(node_id, 0) + cost
        self._total_bytes += cost
        if p.have < p.count:
            return None
        self._forget(key)
        return b"".join(p.chunks)  # type: ignore[arg-type]  # every slot is filled

    def expire(self, now_ms: int) -> list[Dropped]:
        """Give up on messages whose first piece came more than timeout_ms ago. They are
        looked at oldest first, up to the first that is still in time."""
        limit = now_ms - self.limits.timeout_ms
        while self._pending:
            key, p = next(iter(self._pending.items()))
            if p.first_ms >= limit:
                break
            self._drop(key, "reassembly_timeout")
        return self.take_dropped()

    def take_dropped(self) -> list[Dropped]:
        """Messages dropped since the last call (timeouts and evictions)."""
        out, self._dropped = self._dropped, []
        return out

    def _make_room(self, node_id: int, n: int, keep: MessageKey) -> None:
        lim = self.limits
        self._evict(node_id, keep, self._by_node[node_id],
                    lambda: self._node_bytes.get(node_id, 0) + n > lim.max_node_bytes,
                    f"node {node_id} would hold over {lim.max_node_bytes} bytes of fragments")
        self._evict(node_id, keep, self._pending,
                    lambda: self._total_bytes + n > lim.max_total_bytes,
                    f"the host would hold over {lim.max_total_bytes} bytes of fragments")

    def _evict(self, node_id: int, keep: MessageKey, order: Iterable[MessageKey],
               over: Callable[[], bool], refusal: str) -> None:
        """Drop the oldest of ``order`` (never ``keep``) while ``over()``; refuse ``keep``
        when nothing else is left to drop."""
        while over():
            victim = _oldest_but(order, keep)
            if victim is None:
                self._forget(keep)
                raise ReassemblyLimitError(refusal, node_id=node_id)
            self._drop(victim, "reassembly_evicted")

    def _drop(self, key: MessageKey, reason: str) -> None:
        p = self._pending.get(key)
        if p is None:
            return
        self._forget(key)
        self._dropped.append(Dropped(*key, have=p.have, count=p.count, reason=reason))

    def _forget(self, key: MessageKey) -> None:
        p = self._pending.pop(key, None)
        if p is None:
            return
        node_id = key[0]
        mine = self._by_node[node_id]
        del mine[key]
        if not mine:
            del self._by_node[node_id]
        left = self._node_bytes.get(node_id, 0) - p.cost
        if left:
            self._node_bytes[node_id] = left
        else:
            self._node_bytes.pop(node_id, None)
        self._total_bytes -= p.cost


def _oldest_but(order: Iterable[MessageKey], keep: MessageKey) -> MessageKey | None:
    """The oldest key but keep: at most two steps, whatever the length."""
    for key in order:
        if key != keep:
            return key
    return None


def msg_name(node_id: int, boot: int, msg: int) -> str:
    return f"{msg} of node {node_id} boot {boot}"


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
