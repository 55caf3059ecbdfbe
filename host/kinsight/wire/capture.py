"""Capture files: frames as they arrived, for replay through the same ingest path.

Format (all integers big-endian)::

    file   = magic record*
    magic  = "KSCAP" 0x00 0x01 0x0A      8 bytes: name, NUL, format version 1, LF
    record = received_ms:u64  length:u16  frame:length bytes

``received_ms`` is the host's clock when the frame arrived (ms since 1970 UTC);
``length`` is 1..65535. A file ends exactly after its last record: anything
else (a wrong magic, a record cut short, a time after the year 9999) makes the
whole file invalid, and ``read_capture`` says where. ``kinsight listen --capture
FILE`` appends to one.

>>> import io
>>> buf = io.BytesIO()
>>> w = CaptureWriter(buf)
>>> w.write(b"\\x84\\x01", received_ms=5)
>>> parse_capture(buf.getvalue(), "example.kcap")
[(b'\\x84\\x01', 5)]
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from ..errors import CaptureError

MAGIC = b"KSCAP\x00\x01\n"
_RECORD = struct.Struct(">QH")
# 9999-12-31T23:59:59.999Z: later than any clock, and past it a u64 stamp overflows the
# store's 64-bit signed integers and Python's datetimes.
MAX_RECEIVED_MS = 253_402_300_799_999


class CaptureWriter:
    """Appends records to an open binary file (writes the magic if it is empty)."""

    def __init__(self, fp: BinaryIO):
        self.fp = fp
        if fp.tell() == 0:
            fp.write(MAGIC)

    @classmethod
    def open(cls, path: str | Path) -> CaptureWriter:
        fp = open(path, "ab")  # noqa: SIM115 - closed by close()
        return cls(fp)

    def write(self, frame: bytes, received_ms: int) -> None:
        if not 1 <= len(frame) <= 0xFFFF:
            raise ValueError(f"a captured frame must be 1..65535 bytes, not {len(frame)}")
        self.fp.write(_RECORD.pack(received_ms, len(frame)) + frame)

    def flush(self) -> None:
        self.fp.flush()

    def close(self) -> None:
        self.fp.close()


def write_capture(path: str | Path, records: list[tuple[bytes, int]]) -> None:
    """Write (frame, received_ms) records to a new capture file."""
    with open(path, "wb") as fp:
        w = CaptureWriter(fp)
        for frame, received_ms in records:
            w.write(frame, received_ms)


def read_capture(path: str | Path) -> list[tuple[bytes, int]]:
    """All (frame, received_ms) records of a capture file, or CaptureError."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_capture(data, str(path))


def parse_capture(data: bytes, name: str = "capture") -> list[tuple[bytes, int]]:
    if not data.startswith(MAGIC):
        if data[:5] == MAGIC[:5] and len(data) >= 7:
            raise CaptureError(f"{name}: capture format version {data[6]} is not supported")
        raise CaptureError(f"{name}: not a Kinsight capture file (it does not start with "
                           f"{MAGIC[:5].decode()})")
    out = []
    pos = len(MAGIC)
    end = len(data)
    while pos < end:
        if end - pos < _RECORD.size:
            raise CaptureError(f"{name}: record at byte {pos} is cut short ({end - pos} bytes "
                               f"left, a record head is {_RECORD.size})")
        received_ms, length = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        if length == 0:
            raise CaptureError(f"{name}: record at byte {pos - _RECORD.size} has length 0")
        if received_ms > MAX_RECEIVED_MS:
            raise CaptureError(f"{name}: record at byte {pos - _RECORD.size} has received_ms "
                               f"{received_ms}, after the year 9999")
        if end - pos < length:
            raise CaptureError(f"{name}: record at byte {pos - _RECORD.size} is cut short "
                               f"(needs {length} bytes, {end - pos} left)")
        out.append((data[pos:pos + length], received_ms))
        pos += length
    return out
