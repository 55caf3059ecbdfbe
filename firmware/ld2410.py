"""HLK-LD2410 24 GHz radar: parser of its UART report frames (basic mode).

A report frame, as the module sends it unasked about ten times a second:

    F4 F3 F2 F1 | length (u16 LE) | data | F8 F7 F6 F5

Basic target data (length 13):

    02 AA | state | move cm (u16 LE) | move energy | still cm (u16 LE) |
    still energy | detect cm (u16 LE) | 55 | 00

state: 0 none, 1 moving, 2 stationary, 3 both. The final byte is called a
check byte in HLK's protocol note but is always 0x00 in basic reports; it is
checked as such. Engineering-mode reports (type 01) are valid frames but are
skipped without a result; any other type or a broken inner layout is an error.

Bytes go through one fixed buffer. When a frame turns out broken (wrong
length, wrong tail, wrong layout) it is counted in ``errors`` and the bytes
after its header are examined again, because a truncated frame swallows the
head of the next one. Bytes outside any frame are counted in ``skipped``.
"""

from micropython import const

_BUF_LEN = const(64)
_HEAD_LEN = const(6)  # header + length
_TAIL_LEN = const(4)
_MAX_DATA = const(_BUF_LEN - _HEAD_LEN - _TAIL_LEN)
_BASIC = const(0x02)
_ENGINEERING = const(0x01)
_BASIC_LEN = const(13)
_HEADER = b"\xf4\xf3\xf2\xf1"
_TAIL = b"\xf8\xf7\xf6\xf5"


class LD2410Parser:
    def __init__(self):
        self._buf = bytearray(_BUF_LEN)
        self._n = 0
        self._need = 0  # whole frame length, once the length field is in
        self.errors = 0
        self.skipped = 0
        self.frames = 0
        self._out = None

    def feed(self, data):
        """Reports completed by ``data``: a list of (state, move_cm, move_energy,
        still_cm, still_energy, detect_cm)."""
        out = []
        self._out = out
        for byte in data:
            self._push(byte)
        self._out = None
        return out

    def _push(self, byte):
        buf = self._buf
        n = self._n
        if n < 4:
            if byte == _HEADER[n]:
                buf[n] = byte
                self._n = n + 1
            else:
                self.skipped += n + 1
                # The header's four bytes differ, so only this byte can start one.
                if byte == _HEADER[0]:
                    buf[0] = byte
                    self._n = 1
                    self.skipped -= 1
                else:
                    self._n = 0
            return
        buf[n] = byte
        n += 1
        self._n = n
        if n == _HEAD_LEN:
            length = buf[4] | (buf[5] << 8)
            if length == 0 or length > _MAX_DATA:
                self._broken()
                return
            self._need = _HEAD_LEN + length + _TAIL_LEN
            return
        if n < _HEAD_LEN or n < self._need:
            return
        if buf[n - 4] != 0xF8 or buf[n - 3] != 0xF7 or buf[n - 2] != 0xF6 or buf[n - 1] != 0xF5:
            self._broken()
            return
        length = n - _HEAD_LEN - _TAIL_LEN
        kind = buf[6]
        if kind == _BASIC:
            if length != _BASIC_LEN or buf[7] != 0xAA or buf[17] != 0x55 or buf[18] != 0x00:
                self._broken()
                return
            state = buf[8]
            if state > 3:
                self._broken()
                return
            report = (
                state,
                buf[9] | (buf[10] << 8),
                buf[11],
                buf[12] | (buf[13] << 8),
                buf[14],
                buf[15] | (buf[16] << 8),
            )
            if self._out is not None:
                self._out.append(report)
        elif kind != _ENGINEERING:
            self._broken()
            return
        self.frames += 1
        self._n = 0
        self._need = 0

    def _broken(self):
        """Drops the frame's first byte and runs the rest through again."""
        self.errors += 1
        n = self._n
        self._n = 0
        self._need = 0
        buf = self._buf
        # _push only writes below the position being read, so the rescan can
        # work in place; each nested rescan is at least 6 bytes shorter, so the
        # recursion stays under _BUF_LEN / 6 levels.
        for i in range(1, n):
            self._push(buf[i])
