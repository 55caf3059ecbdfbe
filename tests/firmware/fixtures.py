"""Frames the firmware tests share (not a test module itself)."""

from framing import Signer, encode_frame
from kinsight_wire import (
    B_EVENTS,
    ET_DRAW,
    EV_AGO_DS,
    EV_DURATION_DS,
    EV_PEAK_FLOW_ML_MIN,
    EV_ROLE,
    EV_TYPE,
    EV_VOLUME_ML,
    KIND_EVENTS,
    ROLE_TAP,
)

KEY = bytes(range(32))
SIGNER = Signer(KEY)
TIME_S = 1790000000


def event(i):
    """A typical tap event: six fields, as the flow sensor reports a draw."""
    return {
        EV_TYPE: ET_DRAW,
        EV_ROLE: ROLE_TAP,
        EV_AGO_DS: 600 * i,
        EV_DURATION_DS: 95,
        EV_VOLUME_ML: 240 + i,
        EV_PEAK_FLOW_ML_MIN: 5400,
    }


def events_frame(count, seq=30, signer=SIGNER):
    """(frame, body) of ``count`` events from node 7, boot 3."""
    body = {B_EVENTS: [event(i) for i in range(count)]}
    return encode_frame(signer, KIND_EVENTS, 7, 3, seq, TIME_S, body), body
