"""CBOR (RFC 8949) for the Kinsight wire subset, sized for a MicroPython node.

The subset: integers from -2**64 to 2**64-1, byte strings, text strings,
definite-length arrays and maps, false, true and null. Nothing else is ever
sent, so the decoder rejects everything else rather than guessing.

dumps() writes the deterministic encoding of RFC 8949 section 4.2.1 (shortest
heads, map keys in bytewise order of their encodings), because a frame's tag is
computed over its bytes and host and node must agree on exactly one encoding.
"""

import struct

from micropython import const

# Major types, already shifted into the high three bits of the initial byte.
MT_UINT = const(0x00)
MT_NEGINT = const(0x20)
MT_BYTES = const(0x40)
MT_TEXT = const(0x60)
MT_ARRAY = const(0x80)
MT_MAP = const(0xA0)
_MT_TAG = const(0xC0)
_MT_SIMPLE = const(0xE0)

_FALSE = const(0xF4)
_TRUE = const(0xF5)
_NULL = const(0xF6)

_AI_1 = const(24)
_AI_2 = const(25)
_AI_4 = const(26)
_AI_8 = const(27)
_AI_INDEFINITE = const(31)

# Above small-int range on a 32-bit port, so not const(): a long int literal.
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_U32_MAX = 0xFFFFFFFF

# Int maps whose keys all lie below this are walked key by key instead of
# being sorted, which keeps encoding a frame free of temporary lists.
_SMALL_KEY_LIMIT = const(32)

_MAJOR_NAMES = (
    "unsigned integer",
    "negative integer",
    "byte string",
    "text string",
    "array",
    "map",
    "tag",
    "simple value",
)


class CBORError(ValueError):
    pass


class Encoder:
    """Writes CBOR into one bytearray that is reused and only ever grows.

    ``limit`` (None: no limit) caps the encoding, so an oversized message
    fails before the buffer grows to hold it.
    """

    def __init__(self, capacity=256, limit=None):
        self._buf = bytearray(capacity)
        self._n = 0
        self.limit = limit

    def reset(self):
        self._n = 0

    def __len__(self):
        return self._n

    def view(self):
        """The bytes written so far, without copying them."""
        return memoryview(self._buf)[: self._n]

    def getvalue(self):
        return bytes(memoryview(self._buf)[: self._n])

    def _room(self, count):
        need = self._n + count
        limit = self.limit
        if limit is not None and need > limit:
            raise CBORError("encoding needs %d bytes, over the %d-byte limit" % (need, limit))
        size = len(self._buf)
        if need <= size:
            return
        # Doubling keeps many small writes cheap; one big write (a fragment
        # chunk, a padded body) takes just what it needs, as RAM is scarce.
        size = max(need, 2 * size)
        if limit is not None and size > limit:
            size = limit
        grown = bytearray(size)
        memoryview(grown)[: self._n] = memoryview(self._buf)[: self._n]
        self._buf = grown

    def raw(self, data):
        count = len(data)
        self._room(count)
        n = self._n
        self._buf[n : n + count] = data
        self._n = n + count

    def head(self, major, value):
        """Writes the shortest head of ``major`` (shifted) carrying ``value``."""
        n = self._n
        if value < 24:
            self._room(1)
            self._buf[n] = major | value
            self._n = n + 1
        elif value < 0x100:
            self._room(2)
            buf = self._buf
            buf[n] = major | _AI_1
            buf[n + 1] = value
            self._n = n + 2
        elif value < 0x10000:
            self._room(3)
            struct.pack_into(">BH", self._buf, n, major | _AI_2, value)
            self._n = n + 3
        elif value <= _U32_MAX:
            self._room(5)
            struct.pack_into(">BI", self._buf, n, major | _AI_4, value)
            self._n = n + 5
        else:
            self._room(9)
            struct.pack_into(">BQ", self._buf, n, major | _AI_8, value)
            self._n = n + 9

    def encode(self, obj):
        if obj is None:
            self._simple(_NULL)
        elif obj is True:
            self._simple(_TRUE)
        elif obj is False:
            self._simple(_FALSE)
        else:
            kind = type(obj)
            if kind is int:
                if obj >= 0:
                    if obj > _U64_MAX:
                        raise CBORError("integer %d is above 2**64-1" % obj)
                    self.head(MT_UINT, obj)
                else:
                    obj = -1 - obj
                    if obj > _U64_MAX:
                        raise CBORError("integer %d is below -2**64" % (-1 - obj))
                    self.head(MT_NEGINT, obj)
            elif kind is bytes or kind is bytearray or kind is memoryview:
                self.head(MT_BYTES, len(obj))
                self.raw(obj)
            elif kind is str:
                data = obj.encode()
                self.head(MT_TEXT, len(data))
                self.raw(data)
            elif kind is list or kind is tuple:
                self.head(MT_ARRAY, len(obj))
                for item in obj:
                    self.encode(item)
            elif kind is dict:
                self._map(obj)
            else:
                raise CBORError("cannot encode a %s" % kind.__name__)

    def _simple(self, byte):
        self._room(1)
        self._buf[self._n] = byte
        self._n += 1

    def _map(self, obj):
        self.head(MT_MAP, len(obj))
        top = -1
        for key in obj:
            if type(key) is not int or key < 0 or key >= _SMALL_KEY_LIMIT:
                top = _SMALL_KEY_LIMIT
                break
            if key > top:
                top = key
        if top < _SMALL_KEY_LIMIT:
            # Small unsigned keys encode in one byte each, so numeric order is
            # the bytewise order of their encodings.
            for key in range(top + 1):
                if key in obj:
                    self.head(MT_UINT, key)
                    self.encode(obj[key])
            return
        pairs = []
        for key in obj:
            kind = type(key)
            if kind is list or kind is tuple or kind is dict:
                raise CBORError("map key %r is a %s: keys must be scalars" % (key, kind.__name__))
            scratch = Encoder(16)
            scratch.encode(key)
            pairs.append((scratch.getvalue(), key))
        pairs.sort(key=_first)
        for encoded, key in pairs:
            self.raw(encoded)
            self.encode(obj[key])


def _first(pair):
    return pair[0]


def dumps(obj):
    enc = Encoder(64)
    enc.encode(obj)
    return enc.getvalue()


def utf8_error(data, start, end):
    """Offset of the first byte of ``data[start:end]`` that breaks UTF-8, or -1.

    MicroPython's own check accepts overlong forms, surrogates and code
    points above U+10FFFF, which the host's decoder refuses, so the node
    checks the well-formed byte sequences of Unicode table 3-7 itself.
    """
    i = start
    while i < end:
        c = data[i]
        if c < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            follow = 1
        elif c == 0xE0:
            follow = 2
            lo = 0xA0
        elif c == 0xED:
            follow = 2
            hi = 0x9F
        elif 0xE1 <= c <= 0xEF:
            follow = 2
        elif c == 0xF0:
            follow = 3
            lo = 0x90
        elif 0xF1 <= c <= 0xF3:
            follow = 3
        elif c == 0xF4:
            follow = 3
            hi = 0x8F
        else:
            return i
        if i + follow >= end:
            return i
        c = data[i + 1]
        if c < lo or c > hi:
            return i
        for j in range(i + 2, i + follow + 1):
            if data[j] & 0xC0 != 0x80:
                return i
        i += follow + 1
    return -1


class Decoder:
    """Reads items one at a time from ``data``; ``pos`` is the next offset."""

    def __init__(self, data, max_depth=8):
        kind = type(data)
        if kind is not bytes and kind is not bytearray and kind is not memoryview:
            raise CBORError("can only decode bytes, not a %s" % kind.__name__)
        self._data = data
        self._end = len(data)
        self._max_depth = max_depth
        self.pos = 0

    def _need(self, count, at):
        if self.pos + count > self._end:
            raise CBORError(
                "truncated: item at offset %d needs %d more bytes, %d left"
                % (at, count, self._end - self.pos)
            )

    def item(self, depth=0):
        """Decodes the next item; ``depth`` counts the containers around it."""
        data = self._data
        at = self.pos
        self._need(1, at)
        initial = data[at]
        self.pos = at + 1
        major = initial & 0xE0
        info = initial & 0x1F
        if major == _MT_SIMPLE:
            return self._simple(info, at)
        if info < 24:
            value = info
        elif info == _AI_1:
            self._need(1, at)
            value = data[self.pos]
            self.pos += 1
        elif info == _AI_2:
            self._need(2, at)
            value = (data[self.pos] << 8) | data[self.pos + 1]
            self.pos += 2
        elif info == _AI_4:
            self._need(4, at)
            value = struct.unpack_from(">I", data, self.pos)[0]
            self.pos += 4
        elif info == _AI_8:
            self._need(8, at)
            value = struct.unpack_from(">Q", data, self.pos)[0]
            self.pos += 8
        elif info == _AI_INDEFINITE:
            raise CBORError(
                "indefinite length %s at offset %d: definite lengths only"
                % (_MAJOR_NAMES[major >> 5], at)
            )
        else:
            raise CBORError("reserved additional info %d at offset %d" % (info, at))
        if major == MT_UINT:
            return value
        if major == MT_NEGINT:
            return -1 - value
        if major == MT_BYTES or major == MT_TEXT:
            self._need(value, at)
            start = self.pos
            self.pos = start + value
            if major == MT_BYTES:
                return bytes(data[start : self.pos])
            bad = utf8_error(data, start, self.pos)
            if bad >= 0:
                raise CBORError(
                    "invalid UTF-8 at offset %d in the text string at offset %d" % (bad, at)
                )
            return str(data[start : self.pos], "utf-8")
        if major == _MT_TAG:
            raise CBORError("tag %d at offset %d: tags are not allowed" % (value, at))
        depth += 1
        if depth > self._max_depth:
            raise CBORError(
                "%s at offset %d nests deeper than %d"
                % (_MAJOR_NAMES[major >> 5], at, self._max_depth)
            )
        if major == MT_ARRAY:
            # Every item takes at least one byte: a huge count in a short
            # frame must not allocate a huge list.
            self._need(value, at)
            items = [None] * value
            for i in range(value):
                items[i] = self.item(depth)
            return items
        self._need(2 * value, at)
        result = {}
        for _ in range(value):
            key_at = self.pos
            self._need(1, key_at)
            key_major = data[key_at] & 0xE0
            if key_major == MT_ARRAY or key_major == MT_MAP:
                raise CBORError(
                    "map key at offset %d is %s, which cannot be a key"
                    % (key_at, "an array" if key_major == MT_ARRAY else "a map")
                )
            key = self.item(depth)
            # True == 1 in Python, so such keys collide here too.
            if key in result:
                raise CBORError("duplicate map key %r at offset %d" % (key, key_at))
            result[key] = self.item(depth)
        return result

    def _simple(self, info, at):
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        if info == _AI_INDEFINITE:
            raise CBORError("break (0xff) at offset %d outside an indefinite item" % at)
        if 25 <= info <= 27:
            raise CBORError("float at offset %d: floats are not allowed" % at)
        if 28 <= info <= 30:
            raise CBORError("reserved additional info %d at offset %d" % (info, at))
        if info == 23:
            raise CBORError("undefined at offset %d is not allowed" % at)
        if info == _AI_1:
            self._need(1, at)
            raise CBORError(
                "simple value %d at offset %d is not allowed" % (self._data[self.pos], at)
            )
        raise CBORError("simple value %d at offset %d is not allowed" % (info, at))


def loads(data, max_depth=8):
    dec = Decoder(data, max_depth)
    obj = dec.item()
    if dec.pos != len(data):
        raise CBORError(
            "trailing bytes: %d after the item that ends at offset %d"
            % (len(data) - dec.pos, dec.pos)
        )
    return obj
