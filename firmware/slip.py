"""SLIP (RFC 1055) framing for frames over a byte stream (a UART).

A frame goes out as END, the frame with END and ESC escaped, END: the
leading END ends whatever line noise came before it. The decoder drops, and
counts, frames longer than ``max_len`` (``oversized``) and frames with an
escape other than ESC_END or ESC_ESC, or ESC right before END
(``errors``); either way decoding starts again after the next END. Empty
frames (two ENDs in a row) are not frames.

host/kinsight/slip.py is the host's copy of this decoder; a test feeds both
the same byte streams and checks they agree.
"""

from micropython import const

END = const(0xC0)
ESC = const(0xDB)
ESC_END = const(0xDC)
ESC_ESC = const(0xDD)

_MAX_LEN = const(250)


def encode(frame):
    extra = 0
    for byte in frame:
        if byte == END or byte == ESC:
            extra += 1
    out = bytearray(len(frame) + extra + 2)
    out[0] = END
    pos = 1
    for byte in frame:
        if byte == END:
            out[pos] = ESC
            out[pos + 1] = ESC_END
            pos += 2
        elif byte == ESC:
            out[pos] = ESC
            out[pos + 1] = ESC_ESC
            pos += 2
        else:
            out[pos] = byte
            pos += 1
    out[pos] = END
    return bytes(out)


class SlipDecoder:
    def __init__(self, max_len=_MAX_LEN):
        self.max_len = max_len
        self._buf = bytearray(max_len)
        self._pos = 0
        self._esc = False
        self._bad = False  # the frame being read is dropped at its END
        self.frames = 0
        self.oversized = 0
        self.errors = 0

    def feed(self, data):
        """The frames that ``data`` completes, as bytes, in order."""
        out = []
        buf = self._buf
        for byte in data:
            if byte == END:
                if self._esc and not self._bad:
                    self.errors += 1  # ESC then END: the frame is cut
                elif not self._bad and self._pos:
                    out.append(bytes(buf[: self._pos]))
                    self.frames += 1
                self._pos = 0
                self._esc = False
                self._bad = False
                continue
            if self._bad:
                continue
            if self._esc:
                self._esc = False
                if byte == ESC_END:
                    byte = END
                elif byte == ESC_ESC:
                    byte = ESC
                else:
                    self.errors += 1
                    self._bad = True
                    continue
            elif byte == ESC:
                self._esc = True
                continue
            if self._pos == self.max_len:
                self.oversized += 1
                self._bad = True
                continue
            buf[self._pos] = byte
            self._pos += 1
        return out
