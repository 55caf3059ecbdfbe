"""Ingest and transports: the one path every frame takes into the store.

``Ingestor`` (``ingestor``) decodes, checks, verifies and stores a batch of frames
in one transaction and then holds the acks for the nodes; refusals are counted by
reason. The transports feed it and send the acks back only after the batch has
committed: ``udp.UdpListener`` and ``serial_port.SerialListener`` (SLIP-framed).

May import: kinsight.errors, kinsight.wire, kinsight.store.
"""

from __future__ import annotations

from .ingestor import (
    IMPLAUSIBLE_TIME,
    NEW_FRAME,
    AfterBatch,
    FrameResult,
    IngestLimits,
    Ingestor,
    IngestStats,
    call_after_batch,
    event_nodes,
)

__all__ = ["IMPLAUSIBLE_TIME", "NEW_FRAME", "AfterBatch", "FrameResult", "IngestLimits",
           "IngestStats", "Ingestor",
           "call_after_batch", "event_nodes"]
