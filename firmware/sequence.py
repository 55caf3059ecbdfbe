"""The node's (boot, seq) counter: the pair must never repeat.

The host tells duplicates and replays apart from new frames by (H_BOOT,
H_SEQ) alone, so a boot count that went backwards would make it refuse real
frames. The count is therefore persisted before any number is handed out,
in two copies, each replaced atomically (write a temporary file, then rename):

* ``path`` and ``path + ".bak"`` both hold the latest count once a start is
  done, so one corrupt copy (a torn write, a worn flash page) still leaves
  the latest count in the other;
* they are replaced one after the other, so a power cut while one is being
  written leaves the other with the previous count, which is then read back
  as the largest valid value; the count being written was never used.

Each copy is one line, ``<count> <crc32 of the count's digits, 8 hex>\\n``,
so a truncated or altered file is recognised and never read as a number.

A node with no valid count (blank, provisioned again after a factory reset,
or both copies lost or corrupt) cannot know which boots it used before, so
it starts a new life at a random boot number (``NEW_LIFE_MIN`` up to 2^30):
its frames are then new to the host, never taken for replays of an earlier
life's, whose boots were counted up from elsewhere.
"""

import os
from binascii import crc32

from micropython import const

from kinsight_wire import U32_MAX

_BACKUP_SUFFIX = ".bak"
_TEMP_SUFFIX = ".tmp"
_MAX_FILE_BYTES = const(32)  # a valid line: 10 digits, a space, 8 hex digits, "\n"
# A new life's first boot: 65536 up to 2^30 - 2^20, so that boot counts stay small
# ints on the ESP32 (31 bits: no heap for their arithmetic) for a million boots.
NEW_LIFE_MIN = const(0x10000)
_NEW_LIFE_SPAN = const(0x3FEF0000)


def _encode_count(count):
    digits = str(count).encode()
    return b"%s %08x\n" % (digits, crc32(digits) & 0xFFFFFFFF)


def _parse_count(data):
    """The count in ``data``, or None if it is not one valid line."""
    if len(data) < 11 or data[-1:] != b"\n":
        return None
    parts = data[:-1].split(b" ")
    if len(parts) != 2:
        return None
    digits, check = parts
    if not 1 <= len(digits) <= 10 or len(check) != 8:
        return None
    for c in digits:
        if c < 0x30 or c > 0x39:
            return None
    if len(digits) > 1 and digits[0] == 0x30:
        return None
    if b"%08x" % (crc32(digits) & 0xFFFFFFFF) != check:
        return None
    count = int(digits)
    return count if count <= U32_MAX else None


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _read(path):
    """(present, count or None) of one copy."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except OSError:
        return _exists(path), None
    return True, _parse_count(data)


def _replace(path, data):
    temp = path + _TEMP_SUFFIX
    with open(temp, "wb") as f:
        f.write(data)
    try:
        # Atomic on LittleFS and POSIX, which replace the target.
        os.rename(temp, path)
    except OSError:
        # FAT refuses to rename onto an existing file; the other copy covers
        # the moment when this one is missing.
        os.remove(path)
        os.rename(temp, path)


def load_boot(path):
    """The largest valid persisted boot count: None when there is none (nothing
    persisted, or every copy corrupt)."""
    best = None
    for name in (path, path + _BACKUP_SUFFIX):
        count = _read(name)[1]
        if count is not None and (best is None or count > best):
            best = count
    return best


def new_life_boot():
    """A random first boot for a node that cannot know its earlier boots."""
    r = os.urandom(4)
    return NEW_LIFE_MIN + ((r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3]) % _NEW_LIFE_SPAN)


def store_boot(path, count):
    data = _encode_count(count)
    _replace(path, data)
    _replace(path + _BACKUP_SUFFIX, data)


class SequenceCounter:
    """Hands out (boot, seq): boot is raised and persisted at construction; with
    no valid count a new life starts (``new_life`` is then True).

    ``path`` None gives an in-memory counter with boot 1, for tests and
    benchmarks.
    """

    def __init__(self, path):
        self.path = path
        self.new_life = False
        if path is None:
            boot = 1
        else:
            last = load_boot(path)
            if last is None:
                boot = new_life_boot()
                self.new_life = True
            else:
                boot = last + 1
            if boot > U32_MAX:
                raise ValueError("boot count in %s is exhausted" % path)
            store_boot(path, boot)
        self.boot = boot
        self.seq = 0

    def reserve(self, count):
        """Takes ``count`` consecutive sequence numbers; returns the first."""
        first = self.seq
        if first + count - 1 > U32_MAX:
            raise ValueError("sequence numbers of boot %d are exhausted: restart" % self.boot)
        self.seq = first + count
        return first

    def next(self):
        return self.boot, self.reserve(1)
