"""wirecbor under MicroPython: expected bytes come from RFC 8949, not from the code."""

import json
import os

from runner import Skip, eq, mentions, raises
from wirecbor import CBORError, Decoder, Encoder, dumps, loads

_U64_MAX = 0xFFFFFFFFFFFFFFFF
_APPENDIX_A_DEFAULT = "../shared/data/cbor/appendix_a.json"
_MIN_APPENDIX_CHECKED = 30


def same(a, b):
    """Equal and of the same types all the way down (True == 1 in Python)."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        if len(a) != len(b):
            return False
        for i in range(len(a)):
            if not same(a[i], b[i]):
                return False
        return True
    if type(a) is dict:
        if len(a) != len(b):
            return False
        for key in a:
            if key not in b or not same(a[key], b[key]):
                return False
            if not any(k == key and type(k) is type(key) for k in b):
                return False
        return True
    return a == b


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


# (value, its encoding as written in RFC 8949 Appendix A or section 3).
KNOWN = (
    (0, "00"),
    (23, "17"),
    (24, "18 18"),
    (100, "18 64"),
    (1000, "19 03e8"),
    (1000000, "1a 000f4240"),
    (1000000000000, "1b 000000e8d4a51000"),
    (_U64_MAX, "1b ffffffffffffffff"),
    (-1, "20"),
    (-100, "38 63"),
    (-1000, "39 03e7"),
    (-_U64_MAX - 1, "3b ffffffffffffffff"),
    (False, "f4"),
    (True, "f5"),
    (None, "f6"),
    (b"", "40"),
    (b"\x01\x02\x03\x04", "44 01020304"),
    ("", "60"),
    ("IETF", "64 49455446"),
    ("\u00fc", "62 c3bc"),
    ("\u6c34", "63 e6b0b4"),
    ([], "80"),
    ([1, [2, 3], [4, 5]], "83 01 82 02 03 82 04 05"),
    ({}, "a0"),
    ({1: 2, 3: 4}, "a2 01 02 03 04"),
    ({"a": 1, "b": [2, 3]}, "a2 6161 01 6162 82 02 03"),
)


def test_known_encodings():
    for value, encoding in KNOWN:
        eq(dumps(value).hex(), h(encoding).hex(), "dumps(%r)" % (value,))
        if not same(loads(h(encoding)), value):
            raise AssertionError("loads(%s) = %r, want %r" % (encoding, loads(h(encoding)), value))


def test_round_trips():
    values = (
        0,
        1,
        -24,
        -25,
        255,
        256,
        65535,
        65536,
        0xFFFFFFFF,
        0x100000000,
        2**31,
        -(2**31) - 1,
        2**63,
        -(2**63) - 1,
        1795750000,
        b"\x00" * 300,
        "x" * 300,
        [None, True, False, "t", b"b", [[]], {}],
        {1: [{1: 1, 2: 2, 3: 4000000000}], 2: "two", 3: b"3"},
        {"z": 1, "aa": 2, -1: 3, 5: 4, False: 6},
        # Kept apart from text keys: MicroPython warns when it compares them.
        {b"k": 5, 7: None, True: 0},
        tuple(range(30)),
    )
    for value in values:
        back = loads(dumps(value))
        want = list(value) if type(value) is tuple else value
        if not same(back, want):
            raise AssertionError("round trip of %r gave %r" % (value, back))


def test_long_int_heads():
    # Big values take the 4- and 8-byte heads; these become long ints on an
    # ESP32, whose small ints stop at 2**30.
    eq(dumps(2**32 - 1), h("1a ffffffff"), "u32 max")
    eq(dumps(2**32), h("1b 0000000100000000"), "2**32")
    eq(dumps(2**64 - 1), h("1b ffffffffffffffff"), "u64 max")
    eq(dumps(-(2**64)), h("3b ffffffffffffffff"), "-2**64")
    eq(dumps(-(2**32)), h("3a ffffffff"), "-2**32")
    eq(loads(h("1b 8000000000000000")), 2**63, "2**63")
    eq(loads(h("3b 8000000000000000")), -(2**63) - 1, "-2**63-1")
    mentions(raises(CBORError, dumps, 2**64), "2**64")
    mentions(raises(CBORError, dumps, -(2**64) - 1), "2**64")


def test_deterministic_key_order():
    # RFC 8949 section 4.2.1 lists keys in this order: 10, 100, -1, "z",
    # "aa", ... false; each written here as the RFC gives its encoding.
    value = {False: 0, "aa": 0, "z": 0, -1: 0, 100: 0, 10: 0}
    eq(dumps(value), h("a6 0a00 186400 2000 617a00 62616100 f400"), "mixed keys")
    eq(dumps({3: 0, 1: 0, 2: 0}), h("a3 0100 0200 0300"), "small int keys")
    eq(dumps({40: 0, 7: 0, 300: 0}), h("a3 0700 182800 19012c00"), "larger int keys")
    eq(dumps({"b": 1, "a": 2}), h("a2 616102 616201"), "text keys")
    # Insertion order must not matter, whatever the dict keeps.
    a = {}
    b = {}
    for k in range(13):
        a[k] = k
        b[12 - k] = 12 - k
    eq(dumps(a), dumps(b), "insertion order")


def test_encoder_reuse_and_growth():
    enc = Encoder(4)
    enc.encode([1, b"\x00" * 100])
    eq(enc.getvalue(), h("82 01 5864") + b"\x00" * 100, "grown buffer")
    enc.reset()
    enc.encode(7)
    eq(enc.getvalue(), h("07"), "after reset")
    eq(bytes(enc.view()), h("07"), "view")


def test_encoder_limit():
    enc = Encoder(4, limit=12)
    enc.encode(b"x" * 10)
    eq(len(enc), 11, "an encoding within the limit")
    enc.reset()
    mentions(raises(CBORError, enc.encode, b"x" * 12), "13 bytes", "12-byte limit")
    enc.reset()
    enc.encode([1] * 10)
    eq(enc.getvalue(), h("8a") + b"\x01" * 10, "growth stops at the limit")


def test_encode_rejects_other_types():
    mentions(raises(CBORError, dumps, 1.5), "float")
    mentions(raises(CBORError, dumps, {1: 0.5}), "float")
    mentions(raises(CBORError, dumps, [set()]), "set")
    mentions(raises(CBORError, dumps, {(1, 2): 0}), "tuple")


def test_truncated():
    for encoding in (
        "",
        "18",
        "19 01",
        "1a 0000",
        "1b 00000000000000",
        "42 01",
        "63 6161",
        "82 01",
        "a1 01",
        "a2 01 02 03",
        "5a 00000001",
        "9b 00000000ffffffff",
    ):
        mentions(raises(CBORError, loads, h(encoding)), "truncated", "offset")


def test_trailing_bytes():
    exc = raises(CBORError, loads, h("01 02"))
    mentions(exc, "trailing", "offset 1")
    mentions(raises(CBORError, loads, h("80 00 00")), "trailing")


def test_indefinite_lengths():
    for encoding in ("5f 41 00 ff", "7f 61 61 ff", "9f ff", "bf ff", "82 01 9f ff"):
        mentions(raises(CBORError, loads, h(encoding)), "indefinite", "offset")
    mentions(raises(CBORError, loads, h("ff")), "break", "offset 0")
    mentions(raises(CBORError, loads, h("1f")), "offset 0")


def test_floats_and_simple_values():
    for encoding in ("f9 3c00", "fa 47c35000", "fb 3ff199999999999a", "82 01 f9 0000"):
        mentions(raises(CBORError, loads, h(encoding)), "float", "offset")
    mentions(raises(CBORError, loads, h("f7")), "undefined")
    for encoding in ("f0", "f8 18", "f8 ff", "e0"):
        mentions(raises(CBORError, loads, h(encoding)), "simple value", "offset")


def test_tags():
    for encoding in ("c0 60", "c1 1a514b67b0", "c2 41 01", "d8 20 60", "d9 d9f7 00"):
        mentions(raises(CBORError, loads, h(encoding)), "tag", "offset 0")
    mentions(raises(CBORError, loads, h("82 00 c1 00")), "tag", "offset 2")


def test_reserved_additional_info():
    for initial in (0x1C, 0x1D, 0x1E, 0x3C, 0x5D, 0x7E, 0x9C, 0xBD, 0xDE, 0xFC, 0xFD, 0xFE):
        mentions(raises(CBORError, loads, bytes([initial])), "reserved", "offset 0")


def test_duplicate_map_keys():
    mentions(raises(CBORError, loads, h("a2 01 00 01 01")), "duplicate", "offset 3")
    mentions(raises(CBORError, loads, h("a2 6161 00 6161 01")), "duplicate")
    # true and 1 are different CBOR keys but one Python dict key.
    mentions(raises(CBORError, loads, h("a2 01 00 f5 01")), "duplicate")


def test_nesting_depth():
    nine = h("81" * 8 + "80")
    eq(len(loads(nine, 9)), 1, "depth 9 allowed by max_depth=9")
    mentions(raises(CBORError, loads, nine), "deeper than 8", "offset 8")
    eq(loads(h("81 80"), 2), [[]], "depth 2")
    raises(CBORError, loads, h("81 80"), 1)
    raises(CBORError, loads, h("a1 01 a1 01 80"), 2)
    eq(loads(h("a1 01 a1 01 00"), 2), {1: {1: 0}}, "maps count as levels")


def test_invalid_utf8():
    for encoding, bad_at in (
        ("61 ff", 1),
        ("61 80", 1),
        ("62 c0 80", 1),  # overlong NUL
        ("62 c3 41", 1),  # lead byte without its continuation
        ("63 e0 80 80", 1),  # overlong
        ("63 ed a0 80", 1),  # UTF-16 surrogate
        ("64 f4 90 80 80", 1),  # above U+10FFFF
        ("64 f5 80 80 80", 1),
        ("63 61 e6 b0", 2),  # cut short at the end
        ("82 00 62 61 c3", 4),
    ):
        mentions(raises(CBORError, loads, h(encoding)), "UTF-8", "offset %d" % bad_at)
    eq(loads(h("64 f0908591")), "\U00010151", "four-byte sequence")


def test_unhashable_keys():
    mentions(raises(CBORError, loads, h("a1 80 00")), "array", "offset 1")
    mentions(raises(CBORError, loads, h("a1 a0 00")), "map", "offset 1")
    mentions(raises(CBORError, loads, h("a2 00 00 81 00 00")), "array", "offset 3")


def test_not_bytes():
    mentions(raises(CBORError, loads, "00"), "str")


def test_decoder_items_and_views():
    dec = Decoder(h("01 6161 80"))
    eq(dec.item(), 1, "first")
    eq(dec.item(), "a", "second")
    eq(dec.item(), [], "third")
    eq(dec.pos, 4, "pos")
    eq(loads(memoryview(h("42 0102"))), b"\x01\x02", "memoryview input")
    eq(loads(bytearray(h("62 c3bc"))), "\u00fc", "bytearray input")


# --- RFC 8949 Appendix A ---------------------------------------------------


class _Unparsed(Exception):
    pass


def _skip_space(text, pos):
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return pos


def _diag_item(text, pos):
    """Reads one item of diagnostic notation in the wire subset, or raises _Unparsed."""
    if pos >= len(text):
        raise _Unparsed(text)
    if text.startswith("h'", pos):
        end = text.find("'", pos + 2)
        if end < 0:
            raise _Unparsed(text)
        return bytes.fromhex(text[pos + 2 : end]), end + 1
    c = text[pos]
    if c == '"':
        end = text.find('"', pos + 1)
        if end < 0 or "\\" in text[pos + 1 : end]:
            raise _Unparsed(text)
        return text[pos + 1 : end], end + 1
    if c == "[" or c == "{":
        is_map = c == "{"
        close = "}" if is_map else "]"
        result = {} if is_map else []
        pos = _skip_space(text, pos + 1)
        if pos < len(text) and text[pos] == close:
            return result, pos + 1
        while True:
            item, pos = _diag_item(text, _skip_space(text, pos))
            pos = _skip_space(text, pos)
            if is_map:
                if pos >= len(text) or text[pos] != ":":
                    raise _Unparsed(text)
                value, pos = _diag_item(text, _skip_space(text, pos + 1))
                pos = _skip_space(text, pos)
                result[item] = value
            else:
                result.append(item)
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            if pos < len(text) and text[pos] == close:
                return result, pos + 1
            raise _Unparsed(text)
    if c == "-" or "0" <= c <= "9":
        end = pos + 1 if c == "-" else pos
        while end < len(text) and "0" <= text[end] <= "9":
            end += 1
        if end == pos or text[end - 1] == "-":
            raise _Unparsed(text)
        return int(text[pos:end]), end
    for word, value in (("true", True), ("false", False), ("null", None)):
        if text.startswith(word, pos):
            return value, pos + len(word)
    raise _Unparsed(text)


def parse_diagnostic(text):
    value, pos = _diag_item(text, _skip_space(text, 0))
    if _skip_space(text, pos) != len(text):
        raise _Unparsed(text)
    return value


def in_subset(value):
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is bytes:
        return True
    if kind is int:
        return -_U64_MAX - 1 <= value <= _U64_MAX
    if kind is list:
        return all(in_subset(v) for v in value)
    if kind is dict:
        return all(
            type(k) not in (list, dict) and in_subset(k) and in_subset(v) for k, v in value.items()
        )
    return False


def test_diagnostic_parser():
    # The filter below trusts this parser, so it is checked on its own.
    eq(parse_diagnostic("{1: 2, 3: 4}"), {1: 2, 3: 4}, "int map")
    eq(parse_diagnostic("[1, h'0102', \"a\", -5, {}]"), [1, b"\x01\x02", "a", -5, {}], "list")
    eq(parse_diagnostic("h''"), b"", "empty bytes")
    for text in (
        "Infinity",
        "-Infinity",
        "NaN",
        "undefined",
        "simple(16)",
        "1(1363896240)",
        "23(h'01020304')",
        "(_ h'0102', h'030405')",
        "[1, 2",
    ):
        raises(_Unparsed, parse_diagnostic, text)
    eq(in_subset(1.5), False, "float")
    eq(in_subset(2**64), False, "2**64")
    eq(in_subset([1, {"a": b""}]), True, "nested")


def test_rfc8949_appendix_a():
    path = os.getenv("KINSIGHT_APPENDIX_A") or _APPENDIX_A_DEFAULT
    try:
        with open(path) as f:
            entries = json.load(f)
    except OSError:
        raise Skip("no RFC 8949 Appendix A vectors at %s" % path) from None
    checked = rejected = 0
    for entry in entries:
        data = bytes.fromhex(entry["hex"])
        if "decoded" in entry:
            value = entry["decoded"]
        else:
            try:
                value = parse_diagnostic(entry["diagnostic"])
            except _Unparsed:
                # What this parser cannot read is outside the subset:
                # Infinity, NaN, undefined, simple(n), tags n(...), (_ ...).
                mentions(raises(CBORError, loads, data), "offset")
                rejected += 1
                continue
        if not in_subset(value):
            raises(CBORError, loads, data)
            rejected += 1
        elif not entry["roundtrip"]:
            # In Appendix A the only entries in the subset that do not round
            # trip are the ones with indefinite lengths.
            mentions(raises(CBORError, loads, data), "indefinite")
            rejected += 1
        else:
            got = loads(data)
            if not same(got, value):
                raise AssertionError("loads(%s) = %r, want %r" % (entry["hex"], got, value))
            eq(dumps(value).hex(), entry["hex"], "dumps(%r)" % (value,))
            checked += 1
    if checked < _MIN_APPENDIX_CHECKED:
        raise AssertionError(
            "only %d Appendix A entries were checked in the subset (%d rejected)"
            % (checked, rejected)
        )
    eq(checked + rejected, len(entries), "every entry accounted for")
