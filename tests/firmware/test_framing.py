"""framing under MicroPython: HMAC against RFC 4231, frames against the host's vectors."""

import gc
import json

from fixtures import KEY, SIGNER, events_frame
from framing import (
    AuthError,
    FrameError,
    Signer,
    decode_frame,
    encode_frame,
    fragment,
    hmac_sha256,
    parse_ack,
)
from kinsight_wire import (
    ACK_BOOT,
    ACK_CONTIGUOUS,
    ACK_SEQ,
    ACK_TIME_S,
    H_BOOT,
    H_NODE,
    H_SEQ,
    H_TIME_S,
    H_VERSION,
    KIND_ACK,
    KIND_EVENTS,
    KIND_STATUS,
    PROTOCOL_VERSION,
    ST_FIRMWARE,
    ST_RESET_CAUSE,
    ST_UPTIME_S,
)
from runner import Skip, eq, mentions, raises
from wirecbor import dumps

VECTORS = "shared/vectors/"


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


# RFC 4231 section 4: (key, data, HMAC-SHA-256) of test cases 1-4, 6 and 7.
RFC4231 = (
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
)


def signed(*items):
    """A frame of the CBOR items given, with a right tag: for shape checks."""
    prefix = bytes([0x80 | (len(items) + 1)])
    for item in items:
        prefix += dumps(item)
    return prefix + b"\x48" + SIGNER.tag(prefix)


def header(**change):
    fields = {H_VERSION: PROTOCOL_VERSION, H_NODE: 7, H_BOOT: 3, H_SEQ: 4, H_TIME_S: 1790000000}
    for key, value in change.items():
        key = int(key[1:])
        if value is None:
            del fields[key]
        else:
            fields[key] = value
    return fields


# --- HMAC ------------------------------------------------------------------


def test_hmac_rfc4231():
    for key, data, want in RFC4231:
        eq(hmac_sha256(key, data).hex(), want, "HMAC-SHA256 with a %d-byte key" % len(key))


def test_signer_tag_is_the_truncated_hmac():
    for key, data, want in RFC4231:
        if 16 <= len(key) <= 64:
            signer = Signer(key)
            eq(signer.digest(data).hex(), want, "digest")
            eq(signer.tag(data).hex(), want[:16], "tag")
            eq(signer.verify(data, h(want[:16])), True, "verify")
        else:
            raises(ValueError, Signer, key)


def test_signer_key_length_and_verify():
    for length in (0, 15, 65, 131):
        mentions(raises(ValueError, Signer, bytes(length)), str(length))
    raises(ValueError, Signer, "a text key of thirty-two bytes!!")
    Signer(bytes(16))
    Signer(bytearray(64))
    tag = SIGNER.tag(b"frame")
    eq(SIGNER.verify(b"frame", tag), True, "right tag")
    eq(SIGNER.verify(b"framE", tag), False, "other data")
    eq(SIGNER.verify(b"frame", tag[:7]), False, "short tag")
    eq(SIGNER.verify(b"frame", tag + b"\x00"), False, "long tag")
    for i in range(8):
        bad = bytearray(tag)
        bad[i] ^= 0x01
        eq(SIGNER.verify(b"frame", bytes(bad)), False, "tag byte %d altered" % i)


# --- frames ----------------------------------------------------------------


def test_encode_known_bytes():
    raw = encode_frame(
        SIGNER,
        KIND_STATUS,
        7,
        3,
        13,
        1790000000,
        {ST_FIRMWARE: "x", ST_UPTIME_S: 24, ST_RESET_CAUSE: 1},
    )
    # [3, {1: 1, 2: 7, 3: 3, 4: 13, 5: 1790000000}, {1: "x", 2: 24, 3: 1}], by hand.
    prefix = h("84 03 a5 0101 0207 0303 040d 05 1a 6ab13b80 a3 01 6178 02 1818 03 01")
    eq(raw[:-9].hex(), prefix.hex(), "frame before the tag")
    eq(raw[-9:].hex(), (b"\x48" + hmac_sha256(KEY, prefix)[:8]).hex(), "tag item")


def test_round_trip():
    raw, body = events_frame(5)
    kind, head, back = decode_frame(SIGNER, raw, 250)
    eq(kind, KIND_EVENTS, "kind")
    eq(head, header(_4=30), "header")
    eq(back, body, "body")


def test_every_flipped_bit_is_refused():
    raw, _ = events_frame(2)
    auth = 0
    for i in range(len(raw)):
        for bit in range(8):
            bad = bytearray(raw)
            bad[i] ^= 1 << bit
            exc = raises(FrameError, decode_frame, SIGNER, bytes(bad))
            if isinstance(exc, AuthError):
                auth += 1
    # Flips in the tag or in values that stay well-formed must reach the tag.
    if auth < 8 * 8:
        raise AssertionError("only %d flips were refused by the tag" % auth)


def test_every_truncation_is_refused():
    raw, _ = events_frame(2)
    for n in range(len(raw)):
        raises(FrameError, decode_frame, SIGNER, raw[:n])
    raises(FrameError, decode_frame, SIGNER, raw + b"\x00")


def test_wrong_key_is_auth_error():
    raw, _ = events_frame(1)
    mentions(raises(AuthError, decode_frame, Signer(bytes(32)), raw), "tag")


def test_decode_checks_the_shape():
    body = {1: [{1: 5, 2: 3, 3: 0}]}
    good = signed(KIND_EVENTS, header(), body)
    decode_frame(SIGNER, good)  # the helper itself makes acceptable frames
    cases = (
        (signed(KIND_EVENTS, header(), body, 0), "array of 4"),
        (signed(KIND_EVENTS, header()), "array of 4"),
        (signed("1", header(), body), "kind"),
        (signed(9, header(), body), "kind 9"),
        (signed(KIND_EVENTS, [1, 2], body), "header"),
        (signed(KIND_EVENTS, header(_4=None), body), "header"),
        (signed(KIND_EVENTS, header(_6=0), body), "header"),
        (signed(KIND_EVENTS, header(_1=2), body), "version 2"),
        (signed(KIND_EVENTS, header(_2=-1), body), "node_id"),
        (signed(KIND_EVENTS, header(_3=2**32), body), "boot"),
        (signed(KIND_EVENTS, header(_5="now"), body), "time_s"),
        (signed(KIND_EVENTS, header(), [1, 2]), "body"),
        (dumps([KIND_EVENTS, header(), body, b"1234567"]), "tag"),
        (dumps([KIND_EVENTS, header(), body, "12345678"]), "tag"),
        (dumps([KIND_EVENTS, header(), body, b"123456789"]), "tag"),
        (h("a0"), "array"),
    )
    for raw, word in cases:
        exc = raises(FrameError, decode_frame, SIGNER, raw)
        if isinstance(exc, AuthError):
            raise AssertionError("%s: shape error reported as %r" % (word, exc))
        mentions(exc, word)
    # The tag item in a longer head than 0x48 is not the last 9 bytes.
    prefix = good[:-9]
    long_head = prefix + b"\x58\x08" + SIGNER.tag(prefix)
    mentions(raises(FrameError, decode_frame, SIGNER, long_head), "0x48")


def test_encode_refuses_bad_input():
    ok = {ST_FIRMWARE: "v"}
    for args, word in (
        ((0, 7, 3, 1, 0, ok), "kind"),
        ((8, 7, 3, 1, 0, ok), "kind"),
        ((KIND_STATUS, -1, 3, 1, 0, ok), "node_id"),
        ((KIND_STATUS, 7, 2**32, 1, 0, ok), "boot"),
        ((KIND_STATUS, 7, 3, True, 0, ok), "seq"),
        ((KIND_STATUS, 7, 3, 1, 1.5, ok), "time_s"),
        ((KIND_STATUS, 7, 3, 1, 0, [ok]), "body"),
        ((KIND_STATUS, 7, 3, 1, 0, {1: 0.5}), "float"),
    ):
        mentions(raises(FrameError, encode_frame, SIGNER, *args), word)


# --- acks ------------------------------------------------------------------


def ack(body, node_id=7, kind=KIND_ACK, signer=SIGNER):
    return encode_frame(signer, kind, node_id, 1790000100, 5, 1790000000, body)


def test_parse_ack():
    full = {ACK_BOOT: 3, ACK_SEQ: 13, ACK_CONTIGUOUS: 13, ACK_TIME_S: 1790000002}
    eq(parse_ack(SIGNER, ack(full), 7), (3, 13, 13, 1790000002), "full ack")
    gap = {ACK_BOOT: 3, ACK_SEQ: 20, ACK_TIME_S: 1790000003}
    eq(parse_ack(SIGNER, ack(gap), 7), (3, 20, None, 1790000003), "ack without contiguous")
    mentions(raises(FrameError, parse_ack, SIGNER, ack(full, kind=KIND_EVENTS), 7), "ack")
    mentions(raises(FrameError, parse_ack, SIGNER, ack(full, node_id=8), 7), "node 8")
    for key, word in (
        (ACK_BOOT, "acked_boot"),
        (ACK_SEQ, "acked_seq"),
        (ACK_TIME_S, "host_time_s"),
    ):
        partial = dict(full)
        del partial[key]
        mentions(raises(FrameError, parse_ack, SIGNER, ack(partial), 7), word)
        wrong = dict(full)
        wrong[key] = "x"
        mentions(raises(FrameError, parse_ack, SIGNER, ack(wrong), 7), word)
    wrong = dict(full)
    wrong[ACK_CONTIGUOUS] = -1
    mentions(raises(FrameError, parse_ack, SIGNER, ack(wrong), 7), "contiguous_seq")
    raises(AuthError, parse_ack, SIGNER, ack(full, signer=Signer(bytes(32))), 7)


# --- the host's golden vectors ----------------------------------------------


def load_vectors(name):
    path = VECTORS + name
    try:
        f = open(path)
    except OSError:
        raise Skip("no golden vectors at %s yet" % path) from None
    with f:
        vectors = json.load(f)["vectors"]
    if not vectors:
        raise AssertionError("%s has no vectors" % path)
    return vectors


def from_json(value):
    """A body as the vectors write it: int keys as text, bytes as {"hex": ...}."""
    if type(value) is dict:
        if len(value) == 1 and "hex" in value:
            return bytes.fromhex(value["hex"])
        return {int(k): from_json(v) for k, v in value.items()}
    if type(value) is list:
        return [from_json(v) for v in value]
    return value


def test_golden_frames():
    vectors = load_vectors("frames.json")
    for v in vectors:
        signer = Signer(bytes.fromhex(v["key"]))
        w = v["wire"]
        body = from_json(w["body"])
        raw = encode_frame(signer, w["kind"], w["node_id"], w["boot"], w["seq"], w["time_s"], body)
        eq(raw.hex(), v["hex"], v["name"])
        kind, head, back = decode_frame(signer, bytes.fromhex(v["hex"]), v["mtu"])
        eq(
            (kind, head[H_NODE], head[H_BOOT], head[H_SEQ], head[H_TIME_S]),
            (w["kind"], w["node_id"], w["boot"], w["seq"], w["time_s"]),
            v["name"] + " header",
        )
        eq(back, body, v["name"] + " body")
        if w["kind"] == KIND_ACK:
            b = w["body"]
            eq(
                parse_ack(signer, raw, w["node_id"], v["mtu"]),
                (b["1"], b["2"], b.get("3"), b["4"]),
                v["name"] + " parse_ack",
            )
        gc.collect()


def test_golden_fragments():
    vectors = load_vectors("fragmented.json")
    for v in vectors:
        signer = Signer(bytes.fromhex(v["key"]))
        whole = bytes.fromhex(v["message_hex"])
        pieces = fragment(
            signer, v["node_id"], v["boot"], v["time_s"], whole, v["first_seq"], v["mtu"]
        )
        eq(len(pieces), len(v["fragments"]), v["name"] + " count")
        for i, piece in enumerate(pieces):
            eq(piece.hex(), v["fragments"][i], "%s fragment %d" % (v["name"], i))
        decode_frame(signer, whole)
        gc.collect()


def test_golden_invalid_frames_are_refused():
    vectors = load_vectors("invalid.json")
    checked = 0
    for v in vectors:
        if v["layer"] != "frame":
            continue
        signer = Signer(bytes.fromhex(v["key"]))
        exc = raises(FrameError, decode_frame, signer, bytes.fromhex(v["hex"]), v.get("mtu"))
        # The host tells a bad tag (AuthenticationError) from a bad shape.
        if (v["error"] == "AuthenticationError") != isinstance(exc, AuthError):
            raise AssertionError("%s: host says %s, node raised %r" % (v["name"], v["error"], exc))
        checked += 1
    if not checked:
        raise AssertionError("invalid.json has no frame-layer vectors")
