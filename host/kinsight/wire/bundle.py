"""Firmware bundles: the files of an update over the air, as the node unpacks them.

A bundle is ``BUNDLE_MAGIC`` and then, per file, its name's length (1 byte), the
name, its length (4 bytes, big-endian) and its bytes (``frames.cddl``). The node
streams it from flash into a slot, so the format needs no index and no decoding
in memory; ``kinsight ota`` packs one.

>>> data = pack({"runtime.mpy": b"M\\x06", "node.mpy": b"M\\x06..."})
>>> data[:4], sorted(unpack(data))
(b'KSB1', ['node.mpy', 'runtime.mpy'])
>>> unpack(data[:-1])
Traceback (most recent call last):
...
kinsight.errors.BundleError: bundle: runtime.mpy is cut short (1 of 2 bytes)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import kinsight_wire as wire

from ..errors import BundleError

#: Modules that stay with the board's image and never travel in a bundle: the loader
#: that rolls a failed update back (main.py, otaboot.py) and the hardware layer.
BOARD_MODULES = frozenset({"main", "boot", "otaboot", "hal"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.(mpy|py)$")


def check_name(name: str) -> None:
    if len(name.encode()) > wire.BUNDLE_NAME_MAX or not _NAME.match(name):
        raise BundleError(f"bundle: {name!r} is not a module file name (letters, digits and "
                          f"_, .py or .mpy, at most {wire.BUNDLE_NAME_MAX} bytes)")
    if name.rsplit(".", 1)[0] in BOARD_MODULES:
        raise BundleError(f"bundle: {name} stays with the board's image (the loader and the "
                          "hardware layer are never updated over the air): leave it out")


def pack(files: Mapping[str, bytes]) -> bytes:
    """The bundle of ``files`` (file name -> contents), in name order."""
    if not files:
        raise BundleError("bundle: no files")
    stems = [n.rsplit(".", 1)[0] for n in files]
    if "runtime" not in stems:
        raise BundleError("bundle: no runtime module (runtime.py or runtime.mpy), which the "
                          "node starts")
    if len(set(stems)) != len(stems):
        raise BundleError("bundle: a module is there both as .py and as .mpy")
    out = bytearray(wire.BUNDLE_MAGIC)
    for name in sorted(files):
        check_name(name)
        raw = name.encode()
        out += bytes([len(raw)]) + raw + len(files[name]).to_bytes(4, "big") + files[name]
    if len(out) > wire.MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle: {len(out)} bytes is over {wire.MAX_BUNDLE_BYTES}")
    return bytes(out)


def unpack(data: bytes) -> dict[str, bytes]:
    """The files of a bundle, checked as the node checks them."""
    magic = wire.BUNDLE_MAGIC
    if data[:len(magic)] != magic:
        raise BundleError("bundle: it does not start with KSB1")
    files: dict[str, bytes] = {}
    at = len(magic)
    while at < len(data):
        n = data[at]
        name = data[at + 1:at + 1 + n].decode(errors="replace")
        at += 1 + n
        if at + 4 > len(data):
            raise BundleError(f"bundle: {name} has no length")
        size = int.from_bytes(data[at:at + 4], "big")
        at += 4
        body = data[at:at + size]
        if len(body) != size:
            raise BundleError(f"bundle: {name} is cut short ({len(body)} of {size} bytes)")
        check_name(name)
        files[name] = body
        at += size
    return files
