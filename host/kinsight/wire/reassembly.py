"""Putting fragmented messages back together, in bounded memory.

Fragments may come out of order, twice, or never. A message is keyed by
(node, boot, msg); its pieces wait here until all have come, until it times out,
or until newer messages need the room (oldest go first, per node, then overall).
Every message that leaves without completing is reported as a ``Dropped``.

>>> from kinsight.wire import Fragment
>>> r = Reassembler()
>>> r.add(7, 1, Fragment(msg=3, index=1, count=2, chunk=b"world"), now_ms=0) is None
True
>>> r.add(7, 1, Fragment(msg=3, index=0, count=2, chunk=b"hello "), now_ms=5)
b'hello world'
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import kinsight_wire as wire

from ..errors import ReassemblyError, ReassemblyLimitError
from .frames import Fragment

MessageKey = tuple[int, int, int]  # node_id, boot, msg


@dataclass(frozen=True)
class ReassemblyLimits:
    """How much a host holds for incomplete messages, and for how long."""

    max_fragments: int = wire.MAX_FRAGMENTS
    max_message_bytes: int = wire.MAX_MESSAGE_BYTES
    max_node_bytes: int = 4 * wire.MAX_MESSAGE_BYTES
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


@dataclass
class _Pending:
    count: int
    first_ms: int
    chunks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    def __init__(self, limits: ReassemblyLimits | None = None):
        self.limits = limits or ReassemblyLimits()
        self._pending: OrderedDict[MessageKey, _Pending] = OrderedDict()
        self._node_bytes: dict[int, int] = {}
        self._total_bytes = 0
        self._dropped: list[Dropped] = []

    @property
    def total_bytes(self) -> int:
        return self._total_bytes

    def node_bytes(self, node_id: int) -> int:
        return self._node_bytes.get(node_id, 0)

    def __len__(self) -> int:
        return len(self._pending)

    def is_pending(self, node_id: int, boot: int, msg: int) -> bool:
        return (node_id, boot, msg) in self._pending

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
        if p is None:
            p = _Pending(count=frag.count, first_ms=now_ms)
            self._pending[key] = p
        elif p.count != frag.count:
            raise ReassemblyError(
                f"fragment of message {msg_name(*key)} says {frag.count} pieces, earlier ones "
                f"said {p.count}", node_id=node_id)
        old = p.chunks.get(frag.index)
        if old is not None:
            if old != frag.chunk:
                raise ReassemblyError(
                    f"fragment {frag.index} of message {msg_name(*key)} came twice with "
                    "different bytes", node_id=node_id)
            return None
        n = len(frag.chunk)
        if p.size + n > lim.max_message_bytes:
            self._forget(key)
            raise ReassemblyLimitError(
                f"message {msg_name(*key)} is over {lim.max_message_bytes} bytes", node_id=node_id)
        self._make_room(node_id, n, keep=key)
        p.chunks[frag.index] = frag.chunk
        p.size += n
        self._node_bytes[node_id] = self._node_bytes.get(node_id, 0) + n
        self._total_bytes += n
        if len(p.chunks) < p.count:
            return None
        self._forget(key)
        return b"".join(p.chunks[i] for i in range(p.count))

    def expire(self, now_ms: int) -> list[Dropped]:
        """Give up on messages whose first piece came more than timeout_ms ago."""
        limit = now_ms - self.limits.timeout_ms
        stale = [k for k, p in self._pending.items() if p.first_ms < limit]
        for key in stale:
            self._drop(key, "reassembly_timeout")
        return self.take_dropped()

    def take_dropped(self) -> list[Dropped]:
        """Messages dropped since the last call (timeouts and evictions)."""
        out, self._dropped = self._dropped, []
        return out

    def _make_room(self, node_id: int, n: int, keep: MessageKey) -> None:
        lim = self.limits
        if self._node_bytes.get(node_id, 0) + n > lim.max_node_bytes:
            for key in [k for k in self._pending if k[0] == node_id and k != keep]:
                self._drop(key, "reassembly_evicted")
                if self._node_bytes.get(node_id, 0) + n <= lim.max_node_bytes:
                    break
        if self._node_bytes.get(node_id, 0) + n > lim.max_node_bytes:
            self._forget(keep)
            raise ReassemblyLimitError(
                f"node {node_id} would hold over {lim.max_node_bytes} bytes of fragments",
                node_id=node_id)
        if self._total_bytes + n > lim.max_total_bytes:
            for key in [k for k in self._pending if k != keep]:
                self._drop(key, "reassembly_evicted")
                if self._total_bytes + n <= lim.max_total_bytes:
                    break
        if self._total_bytes + n > lim.max_total_bytes:
            self._forget(keep)
            raise ReassemblyLimitError(
                f"the host would hold over {lim.max_total_bytes} bytes of fragments",
                node_id=node_id)

    def _drop(self, key: MessageKey, reason: str) -> None:
        p = self._pending.get(key)
        if p is None:
            return
        self._forget(key)
        self._dropped.append(Dropped(*key, have=len(p.chunks), count=p.count, reason=reason))

    def _forget(self, key: MessageKey) -> None:
        p = self._pending.pop(key, None)
        if p is None:
            return
        node_id = key[0]
        left = self._node_bytes.get(node_id, 0) - p.size
        if left:
            self._node_bytes[node_id] = left
        else:
            self._node_bytes.pop(node_id, None)
        self._total_bytes -= p.size


def msg_name(node_id: int, boot: int, msg: int) -> str:
    return f"{msg} of node {node_id} boot {boot}"
