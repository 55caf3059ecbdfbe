"""SLIP (RFC 1055) framing, host side: the same rules as firmware/slip.py.

A frame goes out as END, the frame with END and ESC escaped, END. The decoder
drops, and counts, frames longer than ``max_len`` (``oversized``) and frames
with an escape other than ESC_END or ESC_ESC, or ESC right before END
(``errors``); either way decoding
starts again after the next END. Empty frames are not frames.

>>> encode(b"a\\xc0b\\xdb")
b'\\xc0a\\xdb\\xdcb\\xdb\\xdd\\xc0'
>>> SlipDecoder().feed(encode(b"one") + b"\\xc0tw" + b"o\\xc0")
[b'one', b'two']
"""

from __future__ import annotations

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD


def encode(frame: bytes) -> bytes:
    body = frame.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return b"\xc0" + body + b"\xc0"


class SlipDecoder:
    def __init__(self, max_len: int = 250):
        self.max_len = max_len
        self._buf = bytearray()
        self._esc = False
        self._bad = False
        self.frames = 0
        self.oversized = 0
        self.errors = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The frames ``data`` completes, in order."""
        out: list[bytes] = []
        for byte in data:
            if byte == END:
                if self._esc and not self._bad:
                    self.errors += 1  # ESC then END: the frame is cut
                elif not self._bad and self._buf:
                    out.append(bytes(self._buf))
                    self.frames += 1
                self._buf.clear()
                self._esc = self._bad = False
                continue
            if self._bad:
                continue
            if self._esc:
                self._esc = False
                if byte not in (ESC_END, ESC_ESC):
                    self.errors += 1
                    self._bad = True
                    continue
                byte = END if byte == ESC_END else ESC
            elif byte == ESC:
                self._esc = True
                continue
            if len(self._buf) == self.max_len:
                self.oversized += 1
                self._bad = True
                continue
            self._buf.append(byte)
        return out
