"""Ingest and transports: the one path every frame takes into the store.

``Ingestor`` (``ingestor``) decodes, checks, verifies and stores a batch of frames
in one transaction and then holds the acks for the nodes; refusals are counted by
reason; frames stamped implausibly are quarantined (``stamps``). The transports
feed it and send the acks back only after the batch has committed:
``udp.UdpListener`` (to each node's own address), ``serial_port.SerialListener``
(SLIP-framed) and ``mqtt.MqttListener`` (from a broker, shared among workers; the
broker's message acknowledged after the commit too).

May import: kinsight.errors, kinsight.wire, kinsight.store.
"""

from __future__ import annotations

from .ingestor import (
    NEW_FRAME,
    AfterBatch,
    FrameResult,
    IngestLimits,
    Ingestor,
    IngestStats,
    call_after_batch,
    event_nodes,
)
from .stamps import IMPLAUSIBLE_TIME, StampLimits

__all__ = ["IMPLAUSIBLE_TIME", "NEW_FRAME", "AfterBatch", "FrameResult", "IngestLimits",
           "IngestStats", "Ingestor", "StampLimits", "call_after_batch", "event_nodes"]
