"""Kinsight frames on the wire: build, sign, fragment, check, and read acks.

A frame is the CBOR array [kind, header, body, tag] of frames.cddl; the tag is
HMAC-SHA256 of every byte before the tag item, truncated to TAG_LEN bytes.
"""

from hashlib import sha256

from micropython import const

from kinsight_wire import (
    ACK_BOOT,
    ACK_CONTIGUOUS,
    ACK_FIELDS,
    ACK_SEQ,
    ACK_TIME_S,
    B_EVENTS,
    B_SUMMARIES,
    FR_CHUNK,
    FR_COUNT,
    FR_INDEX,
    FR_MSG,
    FRAGMENT_OVERHEAD,
    FRAME_ITEMS,
    H_BOOT,
    H_NODE,
    H_SEQ,
    H_TIME_S,
    H_VERSION,
    HEADER_FIELDS,
    KIND_ACK,
    KIND_EVENTS,
    KIND_FRAGMENT,
    KIND_STATUS,
    KIND_SUMMARY,
    KIND_UPDATE_GET,
    KIND_UPDATE_PIECE,
    MAX_DEPTH,
    MAX_FRAGMENTS,
    MAX_LIST_ITEMS,
    MAX_MESSAGE_BYTES,
    MTU_DEFAULT,
    PROTOCOL_VERSION,
    T_UINT,
    TAG_ITEM_HEAD,
    TAG_ITEM_LEN,
    TAG_LEN,
    U32_MAX,
    UP_BUNDLE,
    UP_DATA,
    UP_OFFSET,
    UPDATE_PIECE_BYTES,
)
from wirecbor import MT_ARRAY, MT_BYTES, MT_MAP, MT_UINT, CBORError, Decoder, Encoder, loads

_BLOCK = const(64)  # SHA-256 block size, the HMAC key block
_KEY_MIN = const(16)
_KEY_MAX = const(64)  # one block: longer keys would be hashed, and none are issued
_IPAD = const(0x36)
_OPAD = const(0x5C)
_HEADER_ITEMS = const(5)


class FrameError(ValueError):
    pass


class AuthError(FrameError):
    pass


def _pads(key):
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    inner = bytearray(_BLOCK)
    outer = bytearray(_BLOCK)
    for i in range(_BLOCK):
        byte = key[i] if i < len(key) else 0
        inner[i] = byte ^ _IPAD
        outer[i] = byte ^ _OPAD
    return bytes(inner), bytes(outer)


def _mac(inner, outer, data):
    # MicroPython's sha256 has no copy(), so the padded key block is hashed
    # again for every message; it is one compression round each way.
    h = sha256(inner)
    h.update(data)
    digest = h.digest()
    h = sha256(outer)
    h.update(digest)
    return h.digest()


def hmac_sha256(key, data):
    """Full 32-byte HMAC-SHA256 (RFC 2104) under a key of any length."""
    inner, outer = _pads(key)
    return _mac(inner, outer, data)


class Signer:
    """HMAC-SHA256/64 under one node key, with the padded key blocks made once."""

    def __init__(self, key):
        if type(key) is not bytes and type(key) is not bytearray:
            raise ValueError("key must be bytes, not a %s" % type(key).__name__)
        if len(key) < _KEY_MIN or len(key) > _KEY_MAX:
            raise ValueError(
                "key is %d bytes: a node key is %d to %d bytes (32 typical)"
                % (len(key), _KEY_MIN, _KEY_MAX)
            )
        self._inner, self._outer = _pads(key)

    def digest(self, data):
        return _mac(self._inner, self._outer, data)

    def tag(self, data):
        return self.digest(data)[:TAG_LEN]

    def verify(self, data, tag):
        if len(tag) != TAG_LEN:
            return False
        mine = self.tag(data)
        # Every byte is compared whatever the first difference, so the time
        # taken tells an attacker nothing about how much of a forgery was right.
        diff = 0
        for i in range(TAG_LEN):
            diff |= mine[i] ^ tag[i]
        return diff == 0


def _check_u32(what, value, scope=""):
    if type(value) is not int or value < 0 or value > U32_MAX:
        raise FrameError("%s%s must be an integer 0..4294967295, not %r" % (scope, what, value))


def _check_header(header):
    if type(header) is not dict:
        raise FrameError("header is a %s, not a map" % type(header).__name__)
    if len(header) != _HEADER_ITEMS:
        raise FrameError("header has %d keys: it takes exactly the 5 H_* keys" % len(header))
    for key, name, _type, _required in HEADER_FIELDS:
        if key not in header:
            raise FrameError("header lacks %s (key %d)" % (name, key))
        _check_u32(name, header[key], "header ")
    if header[H_VERSION] != PROTOCOL_VERSION:
        raise FrameError(
            "protocol version %d: this node speaks %d" % (header[H_VERSION], PROTOCOL_VERSION)
        )
    return header


def encode_into(enc, signer, kind, node_id, boot, seq, time_s, body):
    """Writes the signed frame into ``enc`` (a wirecbor.Encoder), copying nothing.

    ``enc.view()`` is the frame until the encoder is next used. Frames are
    never longer than MAX_MESSAGE_BYTES, which becomes the encoder's limit.
    """
    if type(kind) is not int or kind < KIND_EVENTS or kind > KIND_UPDATE_PIECE:
        raise FrameError("unknown frame kind %r" % (kind,))
    _check_u32("node_id", node_id)
    _check_u32("boot", boot)
    _check_u32("seq", seq)
    _check_u32("time_s", time_s)
    if type(body) is not dict:
        raise FrameError("body must be a dict, not a %s" % type(body).__name__)
    enc.reset()
    enc.head(MT_ARRAY, FRAME_ITEMS)
    enc.head(MT_UINT, kind)
    # Written without a dict: the H_* keys are 1..5, so this order is the
    # sorted order deterministic encoding asks for.
    enc.head(MT_MAP, _HEADER_ITEMS)
    enc.head(MT_UINT, H_VERSION)
    enc.head(MT_UINT, PROTOCOL_VERSION)
    enc.head(MT_UINT, H_NODE)
    enc.head(MT_UINT, node_id)
    enc.head(MT_UINT, H_BOOT)
    enc.head(MT_UINT, boot)
    enc.head(MT_UINT, H_SEQ)
    enc.head(MT_UINT, seq)
    enc.head(MT_UINT, H_TIME_S)
    enc.head(MT_UINT, time_s)
    # Room for the tag stays, so no frame passes MAX_MESSAGE_BYTES, and an
    # oversized body fails before the buffer grows to hold it.
    enc.limit = MAX_MESSAGE_BYTES - TAG_ITEM_LEN
    try:
        enc.encode(body)
    except CBORError as err:
        raise FrameError("cannot encode the body: %s" % err) from None
    enc.limit = MAX_MESSAGE_BYTES
    tag = signer.tag(enc.view())
    enc.head(MT_BYTES, TAG_LEN)
    enc.raw(tag)


def encode_frame(signer, kind, node_id, boot, seq, time_s, body, encoder=None):
    """The signed frame [kind, header, body, tag] as bytes.

    ``encoder`` (a wirecbor.Encoder) is reused as scratch space when given.
    """
    enc = encoder if encoder is not None else Encoder(MTU_DEFAULT)
    encode_into(enc, signer, kind, node_id, boot, seq, time_s, body)
    return enc.getvalue()


def decode_frame(signer, raw, mtu=None):
    """(kind, header, body) of a frame whose shape and tag are right.

    Raises AuthError when the tag does not match, FrameError for anything else.
    """
    size = len(raw)
    if mtu is not None and size > mtu:
        raise FrameError("frame is %d bytes, over the %d-byte mtu" % (size, mtu))
    if size > MAX_MESSAGE_BYTES:
        raise FrameError(
            "frame is %d bytes, over MAX_MESSAGE_BYTES (%d)" % (size, MAX_MESSAGE_BYTES)
        )
    try:
        frame = loads(raw, MAX_DEPTH)
    except CBORError as err:
        raise FrameError("bad CBOR: %s" % err) from None
    if type(frame) is not list or len(frame) != FRAME_ITEMS:
        raise FrameError(
            "a frame is an array of %d items, not this %s" % (FRAME_ITEMS, type(frame).__name__)
        )
    kind, header, body, tag = frame
    if type(kind) is not int:
        raise FrameError("frame kind is a %s, not an integer" % type(kind).__name__)
    if kind < KIND_EVENTS or kind > KIND_UPDATE_PIECE:
        raise FrameError("unknown frame kind %d" % kind)
    _check_header(header)
    if type(body) is not dict:
        raise FrameError("body is a %s, not a map" % type(body).__name__)
    if type(tag) is not bytes or len(tag) != TAG_LEN or raw[size - TAG_ITEM_LEN] != TAG_ITEM_HEAD:
        raise FrameError("the last item must be the %d-byte tag, as 0x48 and 8 bytes" % TAG_LEN)
    if not signer.verify(memoryview(raw)[: size - TAG_ITEM_LEN], tag):
        raise AuthError("tag does not match: wrong key, or the frame was altered")
    return kind, header, body


def frame_header(frame):
    """The checked header map of a whole frame, read without decoding the body."""
    if len(frame) < 1 or frame[0] != MT_ARRAY | FRAME_ITEMS:
        raise FrameError("not a frame: it must start with an array of %d items" % FRAME_ITEMS)
    dec = Decoder(frame, MAX_DEPTH)
    dec.pos = 1
    try:
        dec.item()
        return _check_header(dec.item())
    except CBORError as err:
        raise FrameError("bad CBOR: %s" % err) from None


def frame_seq(frame):
    """H_SEQ of a whole frame, read from its header without decoding the body."""
    return frame_header(frame)[H_SEQ]


def fragment(
    signer, node_id, boot, time_s, frame, first_seq, mtu=MTU_DEFAULT, msg_seq=None, encoder=None
):
    """KIND_FRAGMENT frames, each at most ``mtu`` bytes, that carry ``frame``.

    Fragment i has sequence number first_seq + i. As frames.cddl fixes it,
    every chunk but the last is mtu - FRAGMENT_OVERHEAD bytes (the overhead
    of a fragment whose integers are all at their largest), so node and host
    cut a message the same way whatever its header values. ``msg_seq`` is the
    whole frame's H_SEQ, read from its header when not given.
    """
    size = len(frame)
    if size > MAX_MESSAGE_BYTES:
        raise FrameError(
            "a %d-byte message is over MAX_MESSAGE_BYTES (%d)" % (size, MAX_MESSAGE_BYTES)
        )
    if size <= mtu:
        raise FrameError("a %d-byte frame fits the %d-byte mtu: send it whole" % (size, mtu))
    chunk_len = mtu - FRAGMENT_OVERHEAD
    if chunk_len < 1:
        raise FrameError(
            "a %d-byte mtu leaves no room for a chunk: a fragment takes %d bytes besides it"
            % (mtu, FRAGMENT_OVERHEAD)
        )
    count = (size + chunk_len - 1) // chunk_len
    if count > MAX_FRAGMENTS:
        raise FrameError(
            "a %d-byte message needs %d fragments at a %d-byte mtu: at most %d"
            % (size, count, mtu, MAX_FRAGMENTS)
        )
    if msg_seq is None:
        msg_seq = frame_seq(frame)
    enc = encoder if encoder is not None else Encoder(mtu)
    view = memoryview(frame)
    pieces = []
    for index in range(count):
        offset = index * chunk_len
        body = {
            FR_MSG: msg_seq,
            FR_INDEX: index,
            FR_COUNT: count,
            FR_CHUNK: view[offset : offset + chunk_len],
        }
        encode_into(enc, signer, KIND_FRAGMENT, node_id, boot, first_seq + index, time_s, body)
        pieces.append(enc.getvalue())
    return pieces


class FrameBuilder:
    """Frames of one node, numbered by its SequenceCounter and cut to its mtu."""

    def __init__(self, signer, node_id, counter, mtu=MTU_DEFAULT):
        _check_u32("node_id", node_id)
        self.signer = signer
        self.node_id = node_id
        self.counter = counter
        self.mtu = mtu
        # Grows (to MAX_MESSAGE_BYTES at most) only when a message needs it.
        self._enc = Encoder(mtu)
        # Fragments are written here while the whole message stays in _enc,
        # so cutting a large message never copies it.
        self._piece_enc = Encoder(mtu)

    def build(self, kind, body, time_s):
        """The frames to send for one message: itself, or its fragments."""
        counter = self.counter
        boot = counter.boot
        seq = counter.seq
        enc = self._enc
        encode_into(enc, self.signer, kind, self.node_id, boot, seq, time_s, body)
        if len(enc) <= self.mtu:
            counter.reserve(1)
            return [enc.getvalue()]
        pieces = fragment(
            self.signer,
            self.node_id,
            boot,
            time_s,
            enc.view(),
            seq + 1,
            self.mtu,
            seq,
            self._piece_enc,
        )
        # Numbers are taken only once every piece exists: a message refused
        # here leaves no gap for the host to count as lost.
        counter.reserve(1 + len(pieces))
        return pieces

    def _batch(self, kind, key, items, time_s):
        if not 1 <= len(items) <= MAX_LIST_ITEMS:
            raise FrameError("a batch carries 1 to %d items, not %d" % (MAX_LIST_ITEMS, len(items)))
        return self.build(kind, {key: items}, time_s)

    def events(self, events, time_s):
        return self._batch(KIND_EVENTS, B_EVENTS, events, time_s)

    def summaries(self, summaries, time_s):
        return self._batch(KIND_SUMMARY, B_SUMMARIES, summaries, time_s)

    def status(self, body, time_s):
        return self.build(KIND_STATUS, body, time_s)

    def update_get(self, body, time_s):
        return self.build(KIND_UPDATE_GET, body, time_s)


def parse_reply(signer, raw, node_id, mtu=MTU_DEFAULT):
    """(kind, body) of a frame the host sent this node: an ack, or a piece of a
    firmware update, checked. Keys an ack body does not define are ignored, so a host
    that adds one does not cut its nodes off."""
    kind, header, body = decode_frame(signer, raw, mtu)
    if kind != KIND_ACK and kind != KIND_UPDATE_PIECE:
        raise FrameError("expected an ack (kind %d) or an update piece (kind %d), got kind %d"
                         % (KIND_ACK, KIND_UPDATE_PIECE, kind))
    if header[H_NODE] != node_id:
        raise FrameError("%s is for node %d, not for this node %d"
                         % ("ack" if kind == KIND_ACK else "update piece", header[H_NODE],
                            node_id))
    if kind == KIND_ACK:
        for key, name, vtype, required in ACK_FIELDS:
            if key in body:
                if vtype == T_UINT:
                    _check_u32(name, body[key], "ack ")
            elif required:
                raise FrameError("ack lacks %s (key %d)" % (name, key))
        return kind, body
    for key in (UP_BUNDLE, UP_OFFSET):
        if key not in body:
            raise FrameError("update piece lacks key %d" % key)
        _check_u32("update piece key %d" % key, body[key])
    data = body.get(UP_DATA)
    if type(data) is not bytes or not 0 < len(data) <= UPDATE_PIECE_BYTES:
        raise FrameError("update piece data must be 1..%d bytes" % UPDATE_PIECE_BYTES)
    return kind, body


def parse_ack(signer, raw, node_id, mtu=MTU_DEFAULT):
    """(acked_boot, acked_seq, contiguous_seq or None, host_time_s) of an ack."""
    kind, body = parse_reply(signer, raw, node_id, mtu)
    if kind != KIND_ACK:
        raise FrameError("expected an ack (kind %d), got kind %d" % (KIND_ACK, kind))
    return body[ACK_BOOT], body[ACK_SEQ], body.get(ACK_CONTIGUOUS), body[ACK_TIME_S]
