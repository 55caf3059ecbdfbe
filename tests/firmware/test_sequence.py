"""SequenceCounter under MicroPython: (boot, seq) must never repeat, whatever the flash does."""

import os

from runner import eq, mentions, raises
from sequence import SequenceCounter
from tempdir import TempDir


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def boots(path, count, seen):
    """Starts the node ``count`` times, taking a few numbers each time."""
    for _ in range(count):
        counter = SequenceCounter(path)
        for _ in range(3):
            pair = counter.next()
            if pair in seen:
                raise AssertionError("(boot, seq) %r was handed out twice" % (pair,))
            seen.add(pair)
    return counter.boot


def test_boot_count_rises_and_seq_restarts():
    with TempDir() as folder:
        path = folder + "/boot"
        first = SequenceCounter(path)
        eq(first.boot, 1, "first boot on a blank node")
        eq(first.next(), (1, 0), "first pair")
        eq(first.next(), (1, 1), "second pair")
        eq(first.reserve(3), 2, "reserve returns the first number")
        eq(first.next(), (1, 5), "after a reservation")
        second = SequenceCounter(path)
        eq(second.boot, 2, "second boot")
        eq(second.next(), (2, 0), "seq restarts at 0")
        seen = set()
        eq(boots(path, 5, seen), 7, "boot count after five more starts")
        eq(len(seen), 15, "distinct pairs")


def test_both_copies_hold_the_latest_count():
    with TempDir() as folder:
        path = folder + "/boot"
        for _ in range(3):
            SequenceCounter(path)
        eq(read(path), read(path + ".bak"), "the two copies")
        eq(sorted(os.listdir(folder)), ["boot", "boot.bak"], "no temporary file left")


def test_a_torn_or_altered_copy_never_rolls_back():
    with TempDir() as folder:
        path = folder + "/boot"
        seen = set()
        top = boots(path, 3, seen)
        for name in (path, path + ".bak"):
            good = read(name)
            # Every truncation, as a power cut mid-write would leave it...
            for n in range(len(good)):
                write(name, good[:n])
                top_before = top
                top = boots(path, 1, seen)
                if top <= top_before:
                    raise AssertionError("boot went from %d to %d" % (top_before, top))
                good = read(name)
            # ...and every single altered byte, as worn flash might.
            for i in range(len(good)):
                bad = bytearray(good)
                bad[i] ^= 0x04
                write(name, bytes(bad))
                top_before = top
                top = boots(path, 1, seen)
                if top <= top_before:
                    raise AssertionError("boot went from %d to %d" % (top_before, top))
                good = read(name)


def test_power_cut_between_the_two_copies():
    with TempDir() as folder:
        path = folder + "/boot"
        seen = set()
        boots(path, 4, seen)
        older = read(path + ".bak")
        boots(path, 1, seen)
        # The main copy was replaced, the backup not yet: the larger one wins.
        write(path + ".bak", older)
        eq(SequenceCounter(path).boot, 6, "after a cut with the backup behind")
        # On FAT the old main copy is removed before the rename: only the
        # backup is left, holding the count being replaced, never used.
        os.remove(path)
        eq(SequenceCounter(path).boot, 7, "after a cut with the main copy missing")
        # A half-written temporary file is ignored.
        write(path + ".tmp", b"99")
        eq(SequenceCounter(path).boot, 8, "with a stale temporary file")


def test_no_valid_copy_is_an_error_naming_the_file():
    with TempDir() as folder:
        path = folder + "/boot"
        boots(path, 2, set())
        write(path, b"garbage")
        write(path + ".bak", b"")
        exc = raises(ValueError, SequenceCounter, path)
        mentions(exc, path, "corrupt")
        os.remove(path + ".bak")
        mentions(raises(ValueError, SequenceCounter, path), path)
        os.remove(path)
        write(path + ".bak", b"3 00000000\n")
        mentions(raises(ValueError, SequenceCounter, path), path + ".bak")


def test_file_format_is_count_and_crc32():
    # The persisted line is "<count> <crc32 of the digits, hex>\n"; CRC-32 of
    # b"1" is 0x83dcefb7 (zlib's crc32, an independent implementation).
    with TempDir() as folder:
        path = folder + "/boot"
        SequenceCounter(path)
        eq(read(path), b"1 83dcefb7\n", "first boot's file")
        write(path, b"41 00000000\n")
        write(path + ".bak", b"41 00000000\n")
        raises(ValueError, SequenceCounter, path)


def test_in_memory_counter():
    counter = SequenceCounter(None)
    eq(counter.boot, 1, "boot")
    eq([counter.next() for _ in range(3)], [(1, 0), (1, 1), (1, 2)], "pairs")
    counter.seq = 0xFFFFFFFF
    eq(counter.next(), (1, 0xFFFFFFFF), "the last number")
    mentions(raises(ValueError, counter.next), "exhausted")
