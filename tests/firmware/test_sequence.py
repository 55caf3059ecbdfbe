"""SequenceCounter under MicroPython: (boot, seq) must never repeat, whatever the flash does."""

import gc
import os

from runner import eq, mentions, raises
from sequence import NEW_LIFE_MIN, SequenceCounter, load_boot
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
        gc.collect()  # a node boots once a process; this test boots hundreds of times
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
        b = first.boot
        eq(first.new_life, True, "a blank node starts a new life")
        if not NEW_LIFE_MIN <= b < 0x3FF00000:
            raise AssertionError("a new life's boot %d is outside 65536..2^30 - 2^20" % b)
        eq(first.next(), (b, 0), "first pair")
        eq(first.next(), (b, 1), "second pair")
        eq(first.reserve(3), 2, "reserve returns the first number")
        eq(first.next(), (b, 5), "after a reservation")
        second = SequenceCounter(path)
        eq((second.boot, second.new_life), (b + 1, False), "second boot")
        eq(second.next(), (b + 1, 0), "seq restarts at 0")
        seen = set()
        eq(boots(path, 5, seen), b + 6, "boot count after five more starts")
        eq(len(seen), 15, "distinct pairs")


def test_a_new_life_never_reuses_an_earlier_lifes_boots():
    # Wiped (provisioned again after a factory reset) or with both copies lost:
    # the node cannot know its earlier boots, so each life starts elsewhere.
    with TempDir() as folder:
        path = folder + "/boot"
        lives = []
        for _ in range(20):
            first = SequenceCounter(path).boot
            last = boots(path, 3, set())
            lives.append((first, last))
            os.remove(path)
            os.remove(path + ".bak")
        for i, (lo, hi) in enumerate(lives):
            for lo2, hi2 in lives[i + 1:]:
                if lo2 <= hi and lo <= hi2:
                    raise AssertionError("lives %r and %r share boots" % ((lo, hi), (lo2, hi2)))


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
        top = boots(path, 4, seen)
        older = read(path + ".bak")
        boots(path, 1, seen)
        # The main copy was replaced, the backup not yet: the larger one wins.
        write(path + ".bak", older)
        eq(SequenceCounter(path).boot, top + 2, "after a cut with the backup behind")
        # On FAT the old main copy is removed before the rename: only the
        # backup is left, holding the count being replaced, never used.
        os.remove(path)
        eq(SequenceCounter(path).boot, top + 3, "after a cut with the main copy missing")
        # A half-written temporary file is ignored.
        write(path + ".tmp", b"99")
        eq(SequenceCounter(path).boot, top + 4, "with a stale temporary file")


def test_no_valid_copy_starts_a_new_life():
    with TempDir() as folder:
        path = folder + "/boot"
        used = boots(path, 2, set())
        for main, backup in ((b"garbage", b""), (b"garbage", None), (None, b"3 00000000\n")):
            for name, data in ((path, main), (path + ".bak", backup)):
                if data is None:
                    if name.split("/")[-1] in os.listdir(folder):
                        os.remove(name)
                else:
                    write(name, data)
            counter = SequenceCounter(path)
            eq(counter.new_life, True, "no valid count: a new life")
            if counter.boot in (used - 1, used):
                raise AssertionError("boot %d reused after corruption" % counter.boot)
            used = counter.boot
            eq(load_boot(path), used, "the new life's boot is persisted")


def test_file_format_is_count_and_crc32():
    # The persisted line is "<count> <crc32 of the digits, hex>\n"; CRC-32 of
    # b"1" is 0x83dcefb7 (zlib's crc32, an independent implementation).
    with TempDir() as folder:
        path = folder + "/boot"
        write(path, b"1 83dcefb7\n")
        write(path + ".bak", b"1 83dcefb7\n")
        eq(SequenceCounter(path).boot, 2, "after boot 1")
        eq(read(path), b"2 1ad5be0d\n", "second boot's file")
        write(path, b"41 00000000\n")
        write(path + ".bak", b"41 00000000\n")
        eq(SequenceCounter(path).new_life, True, "a wrong check is no count")


def test_in_memory_counter():
    counter = SequenceCounter(None)
    eq(counter.boot, 1, "boot")
    eq([counter.next() for _ in range(3)], [(1, 0), (1, 1), (1, 2)], "pairs")
    counter.seq = 0xFFFFFFFF
    eq(counter.next(), (1, 0xFFFFFFFF), "the last number")
    mentions(raises(ValueError, counter.next), "exhausted")
