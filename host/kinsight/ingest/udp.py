"""UDP uplink, host side: receive frames, ingest them, send acks back.

Datagrams that arrive together are ingested in one transaction, and their acks
go out only after it has committed: a node forgets a frame once it is acked,
so an ack must never run ahead of the disk. Only then does the optional
``after_batch`` hook run (real-time alerts), so it never holds an ack back, and
whatever it raises is logged, never the end of the listener. Nor is a full disk:
that batch is not stored and not acked, and the nodes' resends land once there
is room again.

Acks go to a node's address, never to whoever sent a copy: the listener learns
each node's address from its new frames (only the node can make a new frame
that verifies) and answers a batch's frames only when they came from there. A
duplicate from anywhere else moves nothing and is not answered: it may be a
replay meant to divert the node's acks. A node whose address changed (DHCP) is
answered at the new one from its next new frame on.
"""

from __future__ import annotations

import logging
import select
import socket
import threading

from ..errors import ConfigError, StoreFullError
from ..wire import CaptureWriter
from .ingestor import (
    NEW_FRAME,
    AfterBatch,
    FrameResult,
    Ingestor,
    IngestStats,
    call_after_batch,
    event_nodes,
    serve_until,
)

log = logging.getLogger(__name__)

_MAX_DATAGRAM = 65535


def parse_hostport(text: str) -> tuple[str, int]:
    """'HOST:PORT' (or '[v6]:PORT') into its parts.

    >>> parse_hostport("127.0.0.1:5683")
    ('127.0.0.1', 5683)
    >>> parse_hostport("[::1]:0")
    ('::1', 0)
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:5683)")
    return host.strip("[]"), int(port)


_RECEIVE_BUFFER_BYTES = 4 << 20


class UdpListener:
    def __init__(self, ingestor: Ingestor, host: str, port: int, *,
                 capture: CaptureWriter | None = None, batch_max: int = 64,
                 after_batch: AfterBatch | None = None):
        self.ingestor = ingestor
        self.capture = capture
        self.after_batch = after_batch
        self.batch_max = batch_max
        try:
            family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.sock.bind(addr)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.sock.setblocking(False)
        try:  # a burst waits in the kernel while a batch is stored (the OS may cap it)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER_BYTES)
        except OSError as exc:
            log.debug("udp receive buffer left as it was: %s", exc)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.datagrams = 0
        self.acks_sent = 0
        self.node_addresses: dict[int, tuple[str, int]] = {}

    def close(self) -> None:
        self.sock.close()

    def serve(self, *, stop: threading.Event | None = None, idle_exit_s: float | None = None,
              tick_s: float = 0.2) -> IngestStats:
        """Serve until stop is set, or until idle_exit_s pass without a datagram."""
        return serve_until(self.ingestor, self.after_batch, self._step, stop=stop,
                           idle_exit_s=idle_exit_s, tick_s=tick_s)

    def _step(self, wait_s: float) -> bool:
        ready, _, _ = select.select([self.sock], [], [], wait_s)
        if ready:
            self.serve_ready()
        self.announce()
        return bool(ready)

    def announce(self) -> None:
        """Tell the nodes heard from of updates staged for them since (Ingestor.announcements)."""
        for node_id, ack in self.ingestor.announcements():
            addr = self.node_addresses.get(node_id)
            if addr is None:
                continue
            try:
                self.sock.sendto(ack, addr)
            except OSError as exc:
                log.info("update offer to node %d not sent: %s", node_id, exc)

    def serve_ready(self) -> int:
        """Ingest the datagrams waiting now; returns how many."""
        batch: list[tuple[bytes, int]] = []
        senders = []
        while len(batch) < self.batch_max:
            try:
                raw, addr = self.sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP port unreachable from an earlier ack
                log.debug("udp receive: %s", exc)
                continue
            now_ms = self.ingestor.clock_ms()
            batch.append((raw, now_ms))
            senders.append(addr)
            if self.capture is not None:
                self.capture.write(raw, now_ms)
        if not batch:
            return 0
        self.datagrams += len(batch)
        if self.capture is not None:
            self.capture.flush()
        try:
            results = self.ingestor.ingest_batch(batch)
        except StoreFullError:
            return len(batch)  # counted and logged by the ingestor; nothing to ack
        answer = self._answerable(senders, results)
        for node_id, ack in self.ingestor.acks:
            if node_id not in answer:
                continue
            try:
                self.sock.sendto(ack, self.node_addresses[node_id])
            except OSError as exc:
                log.info("ack to node %d not sent: %s", node_id, exc)
            else:
                self.acks_sent += 1
        call_after_batch(self.after_batch, event_nodes(results))
        return len(batch)

    def _answerable(self, senders: list[tuple[str, int]], results: list[FrameResult]
                    ) -> set[int]:
        """Learn addresses from the batch's new frames; the nodes that sent some of its
        frames from their own address."""
        for addr, r in zip(senders, results, strict=True):
            if r.status in NEW_FRAME and r.node_id is not None:
                known = self.node_addresses.get(r.node_id)
                if known != addr:
                    if known is not None:
                        log.info("node %d is now at %s:%d (was %s:%d)", r.node_id, *addr,
                                 *known)
                    self.node_addresses[r.node_id] = addr
        return {r.node_id for addr, r in zip(senders, results, strict=True)
                if r.status != "rejected" and r.node_id is not None
                and self.node_addresses.get(r.node_id) == addr}
