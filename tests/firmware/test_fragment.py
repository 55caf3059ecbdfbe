"""Fragments, the FrameBuilder and the largest messages, under MicroPython.

Kept apart from test_framing so that each module, compiled on a 112K heap,
leaves room for the 4 KB messages these tests build.
"""

import gc

from micropython import const

from fixtures import SIGNER, event, events_frame
from framing import (
    FrameBuilder,
    FrameError,
    decode_frame,
    encode_into,
    fragment,
)
from kinsight_wire import (
    B_EVENTS,
    FR_CHUNK,
    FR_COUNT,
    FR_INDEX,
    FR_MSG,
    FRAGMENT_OVERHEAD,
    H_BOOT,
    H_NODE,
    H_SEQ,
    H_TIME_S,
    H_VERSION,
    KIND_EVENTS,
    KIND_FRAGMENT,
    KIND_STATUS,
    MAX_FRAGMENTS,
    MAX_MESSAGE_BYTES,
    ST_FIRMWARE,
    ST_RESET_CAUSE,
    ST_UPTIME_S,
    U32_MAX,
)
from runner import eq, mentions, raises
from sequence import SequenceCounter
from wirecbor import Encoder

# The 4 KB tests run on a heap that compiling the modules from source has
# fragmented, with about one 4 KB block to spare (the runner keeps it free
# during the import). So the message is written into one encoder, made at the
# first test that needs it, and used in place (as FrameBuilder does), padded
# with pieces of PAD that decode to small byte strings, not one 4 KB one.
_big = []
PAD = bytes(256)
PIECE = const(200)
PIECES = const(19)


def big():
    if not _big:
        _big.append(Encoder(MAX_MESSAGE_BYTES + 1))
    return _big[0]


def padded_frame(node_id, boot, seq, time_s, size):
    """A view of a status frame padded with zero bytes to ``size`` bytes."""
    view = memoryview(PAD)

    def make(last):
        body = {ST_FIRMWARE: "v", 20: [view[:PIECE]] * PIECES + [view[:last]]}
        encode_into(big(), SIGNER, KIND_STATUS, node_id, boot, seq, time_s, body)
        return big().view()

    # Every piece has a 2-byte head from 24 to 255 bytes, so one probe gives
    # the length of the rest of the frame.
    last = 100 + size - len(make(100))
    if not 24 <= last <= 255:
        raise AssertionError("cannot pad to %d bytes with these pieces" % size)
    return make(last)


def oversize():
    """A view of MAX_MESSAGE_BYTES + 1 zero bytes, in the big encoder."""
    enc = big()
    enc.reset()
    enc.limit = None
    enc.raw(PAD[:1])
    for _ in range(MAX_MESSAGE_BYTES // len(PAD)):
        enc.raw(PAD)
    return enc.view()


def test_decode_checks_the_size():
    raw, _ = events_frame(5)
    decode_frame(SIGNER, raw, len(raw))
    mentions(raises(FrameError, decode_frame, SIGNER, raw, len(raw) - 1), "mtu")
    big = padded_frame(7, 3, 1, 0, MAX_MESSAGE_BYTES)
    eq(len(big), MAX_MESSAGE_BYTES, "a frame of exactly the largest size")
    kind, _, body = decode_frame(SIGNER, big)
    eq((kind, len(body[20]), len(body[20][0])), (KIND_STATUS, PIECES + 1, PIECE), "decoded")
    # One byte more is refused while encoding, before the buffer could grow...
    mentions(raises(FrameError, padded_frame, 7, 3, 1, 0, MAX_MESSAGE_BYTES + 1), "limit")
    # ...and while decoding, before any parsing: these zeros are not a frame.
    mentions(raises(FrameError, decode_frame, SIGNER, oversize()), "MAX_MESSAGE_BYTES")


# --- fragments -------------------------------------------------------------


def check_fragments(pieces, whole, mtu, node_id, boot, time_s, first_seq, msg_seq):
    chunk_len = mtu - FRAGMENT_OVERHEAD
    want = (len(whole) + chunk_len - 1) // chunk_len
    eq(len(pieces), want, "fragment count at mtu %d" % mtu)
    offset = 0
    for i, piece in enumerate(pieces):
        if len(piece) > mtu:
            raise AssertionError("fragment %d is %d bytes, over mtu %d" % (i, len(piece), mtu))
        kind, head, body = decode_frame(SIGNER, piece, mtu)
        eq(kind, KIND_FRAGMENT, "kind")
        eq(
            head,
            {H_VERSION: 1, H_NODE: node_id, H_BOOT: boot, H_SEQ: first_seq + i, H_TIME_S: time_s},
            "fragment %d header" % i,
        )
        eq(sorted(body), [FR_MSG, FR_INDEX, FR_COUNT, FR_CHUNK], "fragment body keys")
        eq((body[FR_MSG], body[FR_INDEX], body[FR_COUNT]), (msg_seq, i, len(pieces)), "ids")
        if i < len(pieces) - 1:
            eq(len(body[FR_CHUNK]), chunk_len, "chunk %d length" % i)
        chunk = body[FR_CHUNK]
        # Compared piece by piece: joining 4 KB on a 112K heap would not fit.
        if chunk != bytes(whole[offset : offset + len(chunk)]):
            raise AssertionError("chunk %d is not bytes %d.. of the message" % (i, offset))
        offset += len(chunk)
        gc.collect()
    eq(offset, len(whole), "the chunks cover the whole message")


def test_fragment_sizes_and_join():
    whole, _ = events_frame(40, seq=30)
    for mtu in (85, 100, 120, 183, 250):
        for first_seq in (31, 0, 250, 65530):
            pieces = fragment(SIGNER, 7, 3, 1790000000, whole, first_seq, mtu)
            check_fragments(pieces, whole, mtu, 7, 3, 1790000000, first_seq, 30)
            gc.collect()


def test_fragment_worst_case_fits():
    # Every integer at its largest and 32 pieces: FRAGMENT_OVERHEAD must hold.
    seq = U32_MAX - MAX_FRAGMENTS
    whole = padded_frame(U32_MAX, U32_MAX, seq, U32_MAX, MAX_MESSAGE_BYTES)
    eq(len(whole), MAX_MESSAGE_BYTES, "whole size")
    mtu = MAX_MESSAGE_BYTES // MAX_FRAGMENTS + FRAGMENT_OVERHEAD
    pieces = fragment(SIGNER, U32_MAX, U32_MAX, U32_MAX, whole, seq + 1, mtu)
    check_fragments(pieces, whole, mtu, U32_MAX, U32_MAX, U32_MAX, seq + 1, seq)
    eq(len(pieces), MAX_FRAGMENTS, "pieces")


def test_fragment_refusals():
    whole, _ = events_frame(40)
    mentions(raises(FrameError, fragment, SIGNER, 7, 3, 0, whole, 31, len(whole)), "whole")
    mentions(raises(FrameError, fragment, SIGNER, 7, 3, 0, whole, 31, FRAGMENT_OVERHEAD), "room")
    mentions(raises(FrameError, fragment, SIGNER, 7, 3, 0, whole, 31, 70), "fragments")
    mentions(raises(FrameError, fragment, SIGNER, 7, 3, 0, oversize(), 31, 250), "4097")
    mentions(raises(FrameError, fragment, SIGNER, 7, 3, 0, b"\x80" * 300, 31, 250), "frame")
    raises(FrameError, fragment, SIGNER, 7, 3, 0, whole, U32_MAX - 1, 250)


def test_frame_builder_numbers():
    counter = SequenceCounter(None)
    builder = FrameBuilder(SIGNER, 7, counter, mtu=120)
    small = builder.status({ST_FIRMWARE: "0.1", ST_UPTIME_S: 5, ST_RESET_CAUSE: 1}, 1790000000)
    eq(len(small), 1, "small message")
    eq(decode_frame(SIGNER, small[0], 120)[1][H_SEQ], 0, "first seq")
    events = [event(i) for i in range(20)]
    pieces = builder.events(events, 1790000001)
    if len(pieces) < 2:
        raise AssertionError("a 20-event message should not fit 120 bytes")
    joined = b""
    for i, piece in enumerate(pieces):
        kind, head, body = decode_frame(SIGNER, piece, 120)
        eq((kind, head[H_SEQ], body[FR_MSG], head[H_BOOT]), (KIND_FRAGMENT, 2 + i, 1, 1), "ids")
        joined += body[FR_CHUNK]
    kind, head, body = decode_frame(SIGNER, joined)
    eq((kind, head[H_SEQ], head[H_TIME_S]), (KIND_EVENTS, 1, 1790000001), "whole message")
    eq(body, {B_EVENTS: events}, "whole body")
    after = builder.summaries([{1: 1, 2: 0, 3: 900}], 1790000002)
    eq(decode_frame(SIGNER, after[0])[1][H_SEQ], 2 + len(pieces), "seq after the fragments")
    before = counter.seq
    raises(FrameError, builder.events, [], 0)
    raises(FrameError, builder.events, [event(0)] * 65, 0)
    raises(FrameError, builder.status, {1: 0.5}, 0)
    eq(counter.seq, before, "a refused message takes no numbers")
