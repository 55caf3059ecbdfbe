"""The one ingest path every input shares: UDP, capture files, tests, benchmarks.

For each frame: decode, check the header, find the node's key, verify the tag,
check the body, refuse replays, archive it with its records (or, when its stamp
cannot be true, quarantine it: archived and acked, its records not filed), note
sequence gaps, feed fragments to the reassembler (and ingest what they complete). Frames
come in batches, each one transaction; after it, ``acks`` holds the acks the
nodes wait for. A refused frame is counted under its reason
and kept for diagnosis; nothing of it reaches the records. When the disk is full
the batch is rolled back whole and raises ``StoreFullError`` with no acks: the
nodes send again, and ``store_full_since_ms`` says since when writing has failed.

>>> from kinsight.store import Store
>>> from kinsight.wire import Header, encode_frame
>>> store = Store(":memory:")
>>> key = bytes(range(32))
>>> store.set_node_key(7, key, now_ms=0)
>>> ingestor = Ingestor(store, clock_ms=lambda: 1_790_000_000_000)
>>> raw = encode_frame(key, "events", Header(node_id=7, boot=1, seq=0, time_s=1_790_000_000),
...                    {"events": [{"type": "draw", "role": "tap", "ago_ds": 300,
...                                 "duration_ds": 120, "volume_ml": 250}]})
>>> [r.status for r in ingestor.ingest_batch([raw, raw, raw[:-1] + b"x"])]
['accepted', 'duplicate', 'rejected']
>>> dict(ingestor.stats.rejected)
{'bad_tag': 1}
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import kinsight_wire as wire

from ..errors import AuthenticationError, FrameError, ReplayError, SchemaError, StoreFullError
from ..store import BatchRows, Store, rejected_row
from ..store import updates as staged_updates
from ..wire import (
    EVENT_NAMES,
    STATUS_NAMES,
    SUMMARY_NAMES,
    Ack,
    Dropped,
    Fragment,
    Header,
    Reassembler,
    ReassemblyLimits,
    TagKey,
    body_rows,
    decode_frame,
    encode_ack,
    encode_frame,
    keyed_mac,
    verify_tag,
)
from .stamps import IMPLAUSIBLE_TIME, QuietLog, StampCheck, StampLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestLimits:
    max_frame_bytes: int = wire.MTU_DEFAULT
    reassembly: ReassemblyLimits = field(default_factory=ReassemblyLimits)
    stamps: StampLimits = field(default_factory=StampLimits)


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What became of one frame."""

    status: str  # "accepted", "quarantined" (kept, records not filed), "duplicate", "rejected"
    node_id: int | None = None
    boot: int | None = None
    seq: int | None = None
    kind: str | None = None
    reason: str | None = None  # why it was rejected or quarantined
    message: str | None = None
    records: int = 0
    inner: FrameResult | None = None  # the message a fragment completed


#: The statuses of a frame not seen before that verified under its node's key: only
#: the node could have made it (a duplicate may come from anyone who heard it).
NEW_FRAME = frozenset({"accepted", "quarantined"})


def event_nodes(results: Iterable[FrameResult]) -> frozenset[int]:
    """The nodes whose event records a batch stored, including messages that its
    fragments completed: what a listener tells its ``after_batch`` hook."""
    nodes: set[int] = set()
    for result in results:
        r: FrameResult | None = result
        while r is not None:
            if (r.status == "accepted" and r.kind == "events" and r.records
                    and r.node_id is not None):
                nodes.add(r.node_id)
            r = r.inner
    return frozenset(nodes)


#: A listener's hook, called after each batch is stored and acked with the nodes whose
#: events it stored, and with none each time a wait for input times out.
AfterBatch = Callable[[frozenset[int]], None]


def call_after_batch(hook: AfterBatch | None, nodes: frozenset[int]) -> None:
    """Run a listener's after-batch hook. Its failure is logged, never raised: the
    batch is already stored and acked, and the listener must keep receiving."""
    if hook is None:
        return
    try:
        hook(nodes)
    except Exception:
        log.exception("after-batch hook failed (nodes %s)", sorted(nodes))


def serve_until(ingestor: Ingestor, after_batch: AfterBatch | None,
                step: Callable[[float], bool], *, stop: threading.Event | None = None,
                idle_exit_s: float | None = None, tick_s: float = 0.2) -> IngestStats:
    """Every listener's loop: ``step(wait_s)`` ingests what arrives within ``wait_s``
    (True when something came). A round with nothing gives up on fragmented messages
    that waited too long and tells the after-batch hook of an idle round. It ends when
    ``stop`` is set, or when ``idle_exit_s`` pass without anything arriving."""
    last_rx = time.monotonic()
    while stop is None or not stop.is_set():
        if step(tick_s):
            last_rx = time.monotonic()
            continue
        ingestor.expire()
        call_after_batch(after_batch, frozenset())
        if idle_exit_s is not None and time.monotonic() - last_rx >= idle_exit_s:
            break
    return ingestor.stats


@dataclass
class IngestStats:
    accepted: int = 0
    duplicates: int = 0
    records: int = 0
    reassembled: int = 0
    gaps: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    store_full: int = 0  # batches the full disk sent back
    unstored: int = 0  # frames in them (not acked: the nodes send them again)

    def as_dict(self) -> dict[str, object]:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "records": self.records, "reassembled": self.reassembled, "gaps": self.gaps,
                "rejected": dict(sorted(self.rejected.items())),
                "dropped": dict(sorted(self.dropped.items())),
                "quarantined": dict(sorted(self.quarantined.items())),
                "store_full": self.store_full, "unstored": self.unstored}


def _offer_fields(offer: staged_updates.Offer | None) -> dict[str, Any]:
    """An ack's fields that offer a staged bundle (none without one)."""
    if offer is None:
        return {}
    return {"update_bundle": offer.bundle, "update_size": offer.size,
            "update_sha256": offer.sha256}


class _BootTrack:
    """Which sequence numbers of one (node, boot) have been stored; ``reused`` once the
    node was seen sending a different frame under a number already stored."""

    __slots__ = ("contiguous", "top", "above", "reused")

    def __init__(self, seqs: Iterable[int]):
        self.reused = False
        self.contiguous = -1
        self.top = -1
        self.above: set[int] = set()
        for s in seqs:
            self.add(s)

    def has(self, seq: int) -> bool:
        return seq <= self.contiguous or seq in self.above

    def add(self, seq: int) -> bool:
        """Note seq; True when it leaves a gap below it."""
        gap = seq > self.top + 1
        if seq > self.top:
            self.top = seq
        if seq == self.contiguous + 1:
            self.contiguous = seq
            while self.contiguous + 1 in self.above:
                self.contiguous += 1
                self.above.discard(self.contiguous)
        elif seq > self.contiguous:
            self.above.add(seq)
        return gap


def _now_ms() -> int:
    return int(time.time() * 1000)


_EVENT_AGO = EVENT_NAMES.index("ago_ds")
_SUMMARY_AGO = SUMMARY_NAMES.index("ago_s")
_STATUS_BUNDLE = STATUS_NAMES.index("bundle")
_STATUS_BUNDLE_FAILED = STATUS_NAMES.index("bundle_failed")
_BUNDLES_CACHED = 8
_ANNOUNCE_AGAIN_MS = 30_000


class Ingestor:
    """Turns frames into stored records, counting what it refuses and why.

    It keeps which sequence numbers are stored in memory (loaded from the store the
    first time a node's boot is seen). With ``shared`` False it must be the store's only
    writer. With ``shared`` True (ingest workers that share a broker's stream, so any of
    them may get any node's frames), each batch first reads, inside its write
    transaction, what the others stored of each (node, boot) it meets above what it
    knows, and always joins a message's fragments with those archived: nothing is
    stored twice and no ack claims what is not stored, whoever stored it.
    """

    def __init__(self, store: Store, *, limits: IngestLimits | None = None,
                 clock_ms: Callable[[], int] = _now_ms, make_acks: bool = True,
                 shared: bool = False):
        self.store = store
        self.shared = shared
        self._fresh: set[tuple[int, int]] = set()  # (node, boot) read this batch (shared)
        self.limits = limits or IngestLimits()
        self.clock_ms = clock_ms
        self.make_acks = make_acks
        self.reassembler = Reassembler(self.limits.reassembly)
        self.stats = IngestStats()
        self._refusal_log = QuietLog(log)
        self._keys = store.node_keys()
        # Each key's HMAC state, made when its node is first heard from after a (re)load.
        self._macs: dict[int, TagKey] = {}
        self._keys_mark = store.change_mark()
        self._tracks: dict[tuple[int, int], _BootTrack] = {}
        self._rows = BatchRows()
        self._to_ack: dict[tuple[int, int], list[int]] = {}
        #: Ack frames for the last batch, as (node_id, frame): send them once it is stored.
        #: Pieces of firmware updates the batch's requests asked for go with them.
        self.acks: list[tuple[int, bytes]] = []
        # Firmware bundles staged for nodes (store.updates): offered in their acks.
        self._offers = staged_updates.offers(store)
        self._bundles: dict[int, bytes | None] = {}
        self._requests: list[tuple[int, tuple[int, int, int]]] = []  # (node, (bundle, offset, n))
        # node -> (the bundle offered to it, when), announced again until it asks for it;
        # node -> the bundle it asked for
        self._announced: dict[int, tuple[int, int]] = {}
        self._asked: dict[int, int] = {}
        self._announce_ms = 0
        self._unwritten: dict[tuple[int, int, int], bytes] = {}
        #: When writing first failed for a full disk, until a batch is stored again: the
        #: health flag the service layer reads (an equipment alert for the host itself).
        self.store_full_since_ms: int | None = None
        #: (since, until) of each time the store was full, until someone takes them (the
        #: service raises them as equipment alerts, once the store can hold those).
        self.full_spells: list[tuple[int, int]] = []
        self._stamps = StampCheck(self.limits.stamps, store.node_added_ms)
        # Acks are frames too: the host's (boot, seq) must never repeat, across restarts.
        self._ack_boot = int(time.time())
        self._ack_seq = 0

    # --- entry points ------------------------------------------------------------------------

    def ingest_batch(self, raws: Iterable[bytes | tuple[bytes, int]]) -> list[FrameResult]:
        """Ingest frames in one transaction: all their writes land, or none do (and then
        neither acks nor counts are left of them)."""
        items = list(raws)
        results = []
        self._reload_keys_if_changed()
        stats_before = copy.deepcopy(self.stats)
        self.acks = []
        try:
            with self.store.transaction():
                self._to_ack.clear()
                self._fresh.clear()
                self._requests.clear()
                for item in items:
                    raw, received_ms = item if isinstance(item, tuple) else (item, None)
                    results.append(self._one(raw, received_ms))
                self._flush()
            self._make_acks()
        except BaseException as exc:
            # The in-memory view may now be ahead of the rolled-back store.
            self._tracks.clear()
            self._rows.clear()
            self._unwritten.clear()
            self._to_ack.clear()
            self._requests.clear()
            self.acks = []
            self._offers = staged_updates.offers(self.store)  # as the store has them again
            self.reassembler = Reassembler(self.limits.reassembly)
            self.stats.__dict__.update(stats_before.__dict__)
            if isinstance(exc, StoreFullError):
                self._store_full(len(items), exc)
            raise
        if self.store_full_since_ms is not None:
            self.full_spells.append((self.store_full_since_ms, self.clock_ms()))
        self.store_full_since_ms = None
        return results

    def _store_full(self, frames: int, exc: StoreFullError) -> None:
        self.stats.store_full += 1
        self.stats.unstored += frames
        if self.store_full_since_ms is None:
            self.store_full_since_ms = self.clock_ms()
        self._refusal_log.warn("store_full", "%d frames not stored or acked (the nodes will "
                               "send them again): %s", frames, exc, level=logging.ERROR)

    def ingest(self, raw: bytes, received_ms: int | None = None) -> FrameResult:
        """Ingest one frame in a transaction of its own."""
        return self.ingest_batch([(raw, received_ms)] if received_ms is not None else [raw])[0]

    def expire(self, now_ms: int | None = None) -> list[Dropped]:
        """Give up on fragmented messages that have waited too long."""
        dropped = self.reassembler.expire(self.clock_ms() if now_ms is None else now_ms)
        self._count_dropped(dropped)
        return dropped

    def _reload_keys_if_changed(self) -> None:
        """Keys added, rotated or removed (by ``kinsight keys`` in another process, or
        through this store) count from the next batch on, without a restart."""
        mark = self.store.change_mark()
        if mark != self._keys_mark:
            self._keys_mark = mark
            self._keys = self.store.node_keys()
            self._macs.clear()
            # ``kinsight ota`` staged or cancelled a bundle, perhaps.
            self._offers = staged_updates.offers(self.store)
            self._bundles.clear()

    # --- the path ----------------------------------------------------------------------------

    def _one(self, raw: bytes, received_ms: int | None) -> FrameResult:
        if received_ms is None:
            received_ms = self.clock_ms()
        try:
            return self._ingest(raw, received_ms)
        except FrameError as exc:
            return self._reject(exc, raw, received_ms)

    def _flush(self) -> None:
        self.store.write(self._rows)
        self._rows.clear()
        self._unwritten.clear()

    def _ingest(self, raw: bytes, received_ms: int,
                *, whole: tuple[int, int, int] | None = None) -> FrameResult:
        """whole: (node, boot, msg) when raw is a message its fragments completed."""
        max_bytes = self.limits.reassembly.max_message_bytes if whole else \
            self.limits.max_frame_bytes
        rf = decode_frame(raw, max_frame_bytes=max_bytes)
        h = rf.header
        node, boot, seq = ident = (h.node_id, h.boot, h.seq)
        key = self._keys.get(node)
        if key is None:
            self._keys = self.store.node_keys()  # provisioned since we started?
            self._macs.clear()
            key = self._keys.get(node)
            if key is None:
                raise AuthenticationError(f"node {node} has no key in this store",
                                          node_id=node, reason="unknown_node")
        mac = self._macs.get(node)
        if mac is None:
            mac = self._macs[node] = keyed_mac(key)
        verify_tag(rf.raw, mac, node_id=node)
        kind, rows = body_rows(rf)
        if kind in ("ack", "update_piece"):
            raise SchemaError(f"{kind} frames go from the host to nodes, not the other way",
                              node_id=node)
        if whole is not None and (kind == "fragment" or ident != whole):
            raise SchemaError(
                f"fragments of message {whole[2]} of node {whole[0]} boot {whole[1]} joined into "
                f"a {kind} frame of node {node} boot {boot} seq {seq}", node_id=node)
        track = self._tracks.get((node, boot)) or self._track(node, boot)
        if self.shared and (node, boot) not in self._fresh:
            # Another worker may have stored some since: the write lock is ours now.
            for stored in self.store.seqs_above(node, boot, track.contiguous):
                track.add(stored)
            self._fresh.add((node, boot))
        if track.has(seq):
            earlier = self._unwritten.get(ident) or self.store.archived_raw(*ident)
            if earlier != rf.raw:
                # The tag is good: the node itself numbered a new frame as an old one (a
                # life whose boot count was lost, on old firmware). Its frames of this boot
                # are refused, so no ack may cover them with a contiguous number.
                if not track.reused:
                    log.warning("node %d reused boot %d's numbers (seq %d): its frames of that "
                                "boot are refused and acked one by one", node, boot, seq)
                track.reused = True
                raise ReplayError(
                    f"node {node} already sent a different frame as boot {boot} seq {seq}",
                    node_id=node)
            self.stats.duplicates += 1
            self._ack_later(h)
            if kind == "update_get":  # sent again: its pieces were lost too, perhaps
                self._requests.append((node, rows))
            return FrameResult("duplicate", node, boot, seq, kind)
        # A fragment files nothing: the message it helps complete is judged by its own stamp.
        fragment = kind == "fragment"
        implausible = None if fragment else self._stamps.check(h, key, received_ms)
        self._rows.frames.append((node, boot, seq, kind, h.time_s, received_ms,
                                  whole is not None, rows[0] if fragment else None,
                                  rf.raw, implausible and IMPLAUSIBLE_TIME))
        self._unwritten[ident] = rf.raw
        stats = self.stats
        if implausible:
            stats.quarantined[IMPLAUSIBLE_TIME] += 1
            self._refusal_log.warn(IMPLAUSIBLE_TIME, "frame quarantined (%s): %s",
                                   IMPLAUSIBLE_TIME, implausible)
            records = 0
        else:
            records = self._records(ident, kind, h, rows)
            stats.accepted += 1
            stats.records += records
        if track.add(seq):
            stats.gaps += 1
            log.info("node %d boot %d: sequence gap before seq %d", node, boot, seq)
        if self.make_acks:
            self._to_ack.setdefault((node, boot), []).append(seq)
        inner = None
        if fragment:
            inner = self._reassemble(h, Fragment(*rows), received_ms)
        if implausible:
            return FrameResult("quarantined", node, boot, seq, kind,
                               reason=IMPLAUSIBLE_TIME, message=implausible)
        return FrameResult("accepted", node, boot, seq, kind, records=records, inner=inner)

    def _records(self, ident: tuple[int, int, int], kind: str, h: Header, rows: Any) -> int:
        if kind == "events":
            base_ms = h.time_s * 1000
            self._rows.events.extend((*ident, i, base_ms - r[_EVENT_AGO] * 100, *r)
                                     for i, r in enumerate(rows))
            return len(rows)
        if kind == "summary":
            self._rows.summaries.extend((*ident, i, h.time_s - r[_SUMMARY_AGO], *r)
                                        for i, r in enumerate(rows))
            return len(rows)
        if kind == "status":
            self._rows.statuses.append((*ident, h.time_s, *rows))
            running, failed = rows[_STATUS_BUNDLE], rows[_STATUS_BUNDLE_FAILED]
            if (running is not None or failed is not None) and ident[0] in self._offers:
                became = staged_updates.note_status(self.store, ident[0], running=running,
                                                    failed=failed, now_ms=self.clock_ms())
                if became is not None:
                    log.info("node %d: firmware bundle %d %s", ident[0],
                             self._offers[ident[0]].bundle, became)
                    del self._offers[ident[0]]
            return 1
        if kind == "update_get":
            self._requests.append((ident[0], rows))
            self._asked[ident[0]] = rows[0]
            bundle, offset, pieces = rows
            staged_updates.note_fetched(self.store, bundle, min(
                offset + pieces * wire.UPDATE_PIECE_BYTES, wire.MAX_BUNDLE_BYTES))
        return 0

    def _track(self, node_id: int, boot: int) -> _BootTrack:
        track = self._tracks.get((node_id, boot))
        if track is None:
            track = self._tracks[(node_id, boot)] = _BootTrack(self.store.boot_seqs(node_id, boot))
            self._fresh.add((node_id, boot))
        return track

    def _reassemble(self, h: Header, frag: Fragment, received_ms: int) -> FrameResult | None:
        if self._track(h.node_id, h.boot).has(frag.msg):
            return None  # completed before; this piece is a late copy
        pieces = [frag]
        if self.shared or not self.reassembler.is_pending(h.node_id, h.boot, frag.msg):
            # Pieces archived earlier (before a restart or a timeout, or by another
            # worker) still count.
            self._flush()
            for old in self.store.fragment_raws(h.node_id, h.boot, frag.msg):
                _, row = body_rows(decode_frame(old))
                if row[1] != frag.index:
                    pieces.append(Fragment(*row))
        whole = None
        for piece in pieces:
            whole = self.reassembler.add(h.node_id, h.boot, piece, received_ms)
            if whole is not None:
                break
        self._count_dropped(self.reassembler.take_dropped())
        if whole is None:
            return None
        self.stats.reassembled += 1
        try:
            return self._ingest(whole, received_ms, whole=(h.node_id, h.boot, frag.msg))
        except FrameError as exc:
            return self._reject(exc, whole, received_ms)

    def _ack_later(self, h: Header) -> None:
        if self.make_acks:
            self._to_ack.setdefault((h.node_id, h.boot), []).append(h.seq)

    def _host_header(self, node_id: int, now_s: int) -> Header:
        self._ack_seq += 1
        if self._ack_seq > wire.U32_MAX:
            self._ack_boot, self._ack_seq = self._ack_boot + 1, 0
        return Header(node_id=node_id, boot=self._ack_boot, seq=self._ack_seq, time_s=now_s)

    def _make_acks(self) -> None:
        """One ack per node and boot for what the batch stored in order (its contiguous
        sequence number covers it), and one for each frame stored past a gap; an ack
        offers the node the bundle staged for it. Then the pieces the batch's update
        requests asked for."""
        now_s = self.clock_ms() // 1000
        for (node_id, boot), seqs in self._to_ack.items():
            mac = self._macs.get(node_id) or keyed_mac(self._keys[node_id])
            track = self._tracks[(node_id, boot)]
            contiguous = (track.contiguous if track.contiguous >= 0 and not track.reused
                          else None)
            above = sorted({s for s in seqs if contiguous is None or s > contiguous})
            last = max(seqs)
            offer = self._offers.get(node_id)
            if offer is not None:
                self._announced[node_id] = (offer.bundle, self.clock_ms())
            for seq in above if last in above else [*above, last]:
                ack = Ack(acked_boot=boot, acked_seq=seq, host_time_s=now_s,
                          contiguous_seq=contiguous, **_offer_fields(offer))
                self.acks.append((node_id, encode_ack(mac, self._host_header(node_id, now_s),
                                                      ack)))
        self._to_ack.clear()
        for node_id, (bundle, offset, pieces) in self._requests:
            data = self._bundle(bundle)
            if data is None or self._offers.get(node_id, None) is None or \
                    self._offers[node_id].bundle != bundle:
                continue  # not staged for this node (any more): the node's offers stop too
            mac = self._macs.get(node_id) or keyed_mac(self._keys[node_id])
            step = wire.UPDATE_PIECE_BYTES
            for at in range(offset, min(offset + pieces * step, len(data)), step):
                piece = {"bundle": bundle, "offset": at, "data": data[at:at + step]}
                self.acks.append((node_id, encode_frame(
                    mac, "update_piece", self._host_header(node_id, now_s), piece)))
        self._requests.clear()

    def announcements(self, *, every_ms: int = 1000) -> list[tuple[int, bytes]]:
        """Acks that tell nodes of a bundle staged for them (``kinsight ota``) without
        waiting for their next frame, which may be hours away: each acks again what is
        stored of the node's latest boot seen here (a repeated ack is harmless) and
        carries the offer, again every 30 s until the node asks for the bundle (an ack
        can be lost). Asked by the listeners as they wait; checks at most every
        ``every_ms``."""
        now_ms = self.clock_ms()
        if now_ms - self._announce_ms < every_ms:
            return []
        self._announce_ms = now_ms
        self._reload_keys_if_changed()
        out = []
        now_s = now_ms // 1000
        for node_id, offer in self._offers.items():
            told, told_ms = self._announced.get(node_id, (None, 0))
            if node_id not in self._keys or self._asked.get(node_id) == offer.bundle or (
                    told == offer.bundle and now_ms - told_ms < _ANNOUNCE_AGAIN_MS):
                continue
            boots = [b for (n, b), t in self._tracks.items() if n == node_id
                     and t.contiguous >= 0 and not t.reused]
            if not boots:
                continue  # not heard from since this started: its next frame's ack offers it
            boot = max(boots)
            contiguous = self._tracks[(node_id, boot)].contiguous
            ack = Ack(acked_boot=boot, acked_seq=contiguous, host_time_s=now_s,
                      contiguous_seq=contiguous, **_offer_fields(offer))
            mac = self._macs.get(node_id) or keyed_mac(self._keys[node_id])
            out.append((node_id, encode_ack(mac, self._host_header(node_id, now_s), ack)))
            self._announced[node_id] = (offer.bundle, now_ms)
        return out

    def _bundle(self, bundle: int) -> bytes | None:
        if bundle not in self._bundles:
            if len(self._bundles) >= _BUNDLES_CACHED:
                self._bundles.clear()
            found = staged_updates.bundle_bytes(self.store, bundle)
            self._bundles[bundle] = None if found is None else found[1]
        return self._bundles[bundle]

    def _reject(self, exc: FrameError, raw: bytes, received_ms: int) -> FrameResult:
        self.stats.rejected[exc.reason] += 1
        self._refusal_log.warn(exc.reason, "frame refused (%s): %s", exc.reason, exc)
        self._rows.rejected.append(rejected_row(exc.reason, exc.node_id, received_ms, str(exc),
                                                bytes(raw)))
        return FrameResult("rejected", exc.node_id, reason=exc.reason, message=str(exc))

    def _count_dropped(self, dropped: list[Dropped]) -> None:
        for d in dropped:
            self.stats.dropped[d.reason] += 1
            self._refusal_log.warn(d.reason, "node %d boot %d: message %d dropped (%s) with "
                                   "%d of %d pieces", d.node_id, d.boot, d.msg, d.reason,
                                   d.have, d.count)
