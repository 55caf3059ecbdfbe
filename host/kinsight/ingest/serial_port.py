"""Serial uplink, host side: SLIP-framed frames over a serial line (pyserial).

Frames that arrive in one burst are ingested in one transaction, and their
acks go back down the same line, SLIP-framed, only after it has committed,
as the UDP listener does, and the optional ``after_batch`` hook runs after
that; a full disk acks nothing of the batch and the listener goes on. The line
may carry one node or an ESP-NOW gateway relaying several: every ack of the
batch goes down it.
"""

from __future__ import annotations

import logging
import threading

import serial

from ..errors import ConfigError, StoreFullError
from ..wire import CaptureWriter
from ..wire.slip import SlipDecoder, encode
from .ingestor import (
    AfterBatch,
    Ingestor,
    IngestStats,
    call_after_batch,
    event_nodes,
    serve_until,
)

log = logging.getLogger(__name__)

_READ_MAX = 4096


class SerialListener:
    def __init__(self, ingestor: Ingestor, port: str, baudrate: int = 115200, *,
                 capture: CaptureWriter | None = None, batch_max: int = 64,
                 max_frame_bytes: int = 4096, burst_gap_s: float = 0.02,
                 after_batch: AfterBatch | None = None):
        self.ingestor = ingestor
        self.after_batch = after_batch
        self.port = port
        self.capture = capture
        self.batch_max = batch_max
        self.burst_gap_s = burst_gap_s
        self.decoder = SlipDecoder(max_frame_bytes)
        try:
            self.serial = serial.serial_for_url(port, baudrate=baudrate, timeout=0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ConfigError(f"cannot open serial port {port}: {exc}") from None
        self.frames = 0
        self.acks_sent = 0
        self._waiting: list[tuple[bytes, int]] = []

    def close(self) -> None:
        self.serial.close()

    def _read(self, wait_s: float) -> bool:
        """Reads what the line has, waiting up to wait_s for the first byte; True if
        anything came."""
        self.serial.timeout = wait_s
        first = self.serial.read(1)
        if not first:
            return False
        self.serial.timeout = 0
        data = first + self.serial.read(_READ_MAX)
        now_ms = self.ingestor.clock_ms()
        for raw in self.decoder.feed(data):
            self._waiting.append((raw, now_ms))
            if self.capture is not None:
                self.capture.write(raw, now_ms)
        return True

    def serve(self, *, stop: threading.Event | None = None, idle_exit_s: float | None = None,
              tick_s: float = 0.2) -> IngestStats:
        """Serve until stop is set, or until idle_exit_s pass without a byte."""
        return serve_until(self.ingestor, self.after_batch, self._step, stop=stop,
                           idle_exit_s=idle_exit_s, tick_s=tick_s)

    def _step(self, wait_s: float) -> bool:
        for node_id, ack in self.ingestor.announcements():  # updates staged since
            try:
                self.serial.write(encode(ack))
            except (serial.SerialException, OSError) as exc:
                log.info("update offer to node %d not sent: %s", node_id, exc)
        if not self._read(wait_s):
            return False
        # A burst: keep reading while bytes keep coming, up to batch_max frames.
        while len(self._waiting) < self.batch_max and self._read(self.burst_gap_s):
            pass
        self.serve_waiting()
        return True

    def serve_waiting(self) -> int:
        """Ingest the frames read so far in one batch, then send their acks."""
        batch, self._waiting = self._waiting, []
        if not batch:
            return 0
        self.frames += len(batch)
        if self.capture is not None:
            self.capture.flush()
        try:
            results = self.ingestor.ingest_batch(batch)
        except StoreFullError:
            return len(batch)  # counted and logged by the ingestor; nothing to ack
        for node_id, ack in self.ingestor.acks:
            try:
                self.serial.write(encode(ack))
            except (serial.SerialException, OSError) as exc:
                log.info("ack to node %d not sent: %s", node_id, exc)
            else:
                self.acks_sent += 1
        self.serial.flush()
        call_after_batch(self.after_batch, event_nodes(results))
        return len(batch)
