"""The wire protocol, host side: frames, reassembly, capture files, SLIP, golden vectors.

Every number comes from the protocol constants module ``kinsight_wire``
(``shared/kinsight_wire.py``), which the firmware imports unchanged, and
``shared/frames.cddl`` describes the frames. ``frames`` decodes, checks, verifies
and encodes them; ``reassembly`` puts fragmented messages back together in bounded
memory; ``capture`` reads and writes capture files; ``slip`` frames them on a
serial line; ``vectors`` writes and checks the golden vectors both sides test with.
The names most callers need are importable from here.

May import: kinsight.errors.
"""

from __future__ import annotations

from .capture import CaptureWriter, parse_capture, read_capture, write_capture
from .frames import (
    EVENT_NAMES,
    STATUS_NAMES,
    SUMMARY_NAMES,
    Ack,
    Body,
    Event,
    EventBatch,
    Fragment,
    Frame,
    Header,
    RawFrame,
    Status,
    Summary,
    SummaryBatch,
    TagKey,
    UpdateGet,
    UpdatePiece,
    body_rows,
    check_body,
    decode_frame,
    encode_ack,
    encode_frame,
    frame_tag,
    keyed_mac,
    open_frame,
    verify_tag,
)
from .reassembly import Dropped, Reassembler, ReassemblyLimits, fragment_frame

__all__ = [
    "EVENT_NAMES", "STATUS_NAMES", "SUMMARY_NAMES", "Ack", "Body", "CaptureWriter", "Dropped",
    "Event", "EventBatch", "Fragment", "Frame", "Header", "RawFrame", "Reassembler",
    "ReassemblyLimits", "Status", "Summary", "SummaryBatch", "TagKey", "UpdateGet",
    "UpdatePiece", "body_rows", "check_body", "decode_frame", "encode_ack", "encode_frame",
    "fragment_frame", "frame_tag", "keyed_mac", "open_frame", "parse_capture", "read_capture",
    "verify_tag", "write_capture"
]
