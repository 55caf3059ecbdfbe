"""Outbox under MicroPython: nothing flushed is ever lost, across reboots, tears and outages."""

import gc
import os

from outbox import Outbox, OutboxError
from runner import eq, mentions, raises
from tempdir import TempDir


def frame(boot, seq):
    """A stand-in frame: unique per (boot, seq), of varying length up to 250."""
    text = b"frame %d/%d " % (boot, seq)
    return text + b"x" * ((boot * 7 + seq * 13) % (250 - len(text)))


def segments(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("q"))


def drain(box, arrived, window=8, rounds=10000):
    """Sends pending frames to a perfect host that acks each one; arrived[i] counts
    the arrivals of the i-th frame made (boot b, seq s is frame (b - 1) * 96 + s)."""
    for _ in range(rounds):
        batch = box.pending(window)
        if not batch:
            return
        for f in batch:
            boot, seq = (int(x) for x in f.split(b" ")[1].split(b"/"))
            arrived[(boot - 1) * 96 + seq] += 1
            box.ack(boot, seq, None)
    raise AssertionError("outbox did not drain")


def test_push_pending_ack_depth():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=64, segment_frames=8, flush_every=4)
        for seq in range(10):
            box.push(1, seq, frame(1, seq))
        eq(box.depth, 10, "depth")
        eq(box.pending(3), [frame(1, s) for s in range(3)], "three oldest")
        eq(box.ack(1, 6, 2), 4, "contiguous 0..2 and the frame 6")
        eq(box.depth, 6, "depth after the ack")
        eq(box.pending(100), [frame(1, s) for s in (3, 4, 5, 7, 8, 9)], "the rest, in order")
        eq(box.ack(1, 6, 2), 0, "a repeated ack changes nothing")
        eq(box.ack(1, 9, 9), 6, "everything")
        eq(box.depth, 0, "empty")
        eq(box.pending(5), [], "nothing to send")


def test_a_newer_boot_never_acks_an_older_one():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=64, segment_frames=8, flush_every=4)
        for seq in range(5):
            box.push(1, seq, frame(1, seq))
        for seq in range(5):
            box.push(2, seq, frame(2, seq))
        eq(box.ack(2, 4, 4), 5, "boot 2 acks only its own")
        eq(box.pending(100), [frame(1, s) for s in range(5)], "boot 1 still waits")
        eq(box.ack(1, 0, None), 1, "an ack without contiguous acks just its frame")


def test_flushed_frames_survive_a_reboot_and_unflushed_ones_are_the_only_loss():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=128, segment_frames=16, flush_every=8)
        for seq in range(21):  # 16 go to flash with the buffer's two flushes
            box.push(1, seq, frame(1, seq))
        eq(box.writes, 2, "two batched writes")
        # Power lost now: the 5 buffered frames are what it costs.
        box = Outbox(folder, max_frames=128, segment_frames=16, flush_every=8)
        eq(box.pending(100), [frame(1, s) for s in range(16)], "every flushed frame")
        for seq in range(5):
            box.push(2, seq, frame(2, seq))
        box.flush()
        box = Outbox(folder, max_frames=128, segment_frames=16, flush_every=8)
        want = [frame(1, s) for s in range(16)] + [frame(2, s) for s in range(5)]
        eq(box.pending(100), want, "after a clean flush and reboot, oldest first")
        eq(box.torn, 0, "no tear")


def test_ack_progress_is_kept_across_reboots():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=128, segment_frames=16, flush_every=16)
        for seq in range(40):
            box.push(1, seq, frame(1, seq))
        box.flush()
        eq(len(segments(folder)), 3, "segments of 16, 16 and 8")
        box.ack(1, 20, 20)
        eq(len(segments(folder)), 2, "the fully acked first segment is deleted at once")
        box.flush()  # writes the ack progress
        box = Outbox(folder, max_frames=128, segment_frames=16, flush_every=16)
        eq(box.pending(100), [frame(1, s) for s in range(21, 40)], "resumes after 20")
        # Acks not yet flushed are forgotten by a reboot: at most that many resent.
        box.ack(1, 30, 30)
        box = Outbox(folder, max_frames=128, segment_frames=16, flush_every=16)
        got = box.pending(100)
        eq(got[0], frame(1, 21), "resent from the last flushed progress")
        eq(len(got), 19, "frames 21..39")
        if len(got) - 9 > 16:
            raise AssertionError("more than one segment resent")


def test_ack_file_never_applies_to_a_reused_segment_id():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=64, segment_frames=16, flush_every=16)
        for seq in range(16):
            box.push(1, seq, frame(1, seq))
        box.ack(1, 4, 4)
        box.flush()  # acks file: segment 0 = boot 1 seq 0.., bits 0..4
        box.ack(1, 15, 15)  # segment 0 deleted, acks file left stale
        eq(segments(folder), [], "no segment left")
        box = Outbox(folder, max_frames=64, segment_frames=16, flush_every=16)
        for seq in range(16):
            box.push(2, seq, frame(2, seq))
        box.flush()
        eq(segments(folder), ["q00000000"], "the id was taken again")
        box = Outbox(folder, max_frames=64, segment_frames=16, flush_every=16)
        eq(box.depth, 16, "no frame of boot 2 taken as acked")


def test_a_torn_segment_keeps_every_record_before_the_tear():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=128, segment_frames=8, flush_every=8)
        for seq in range(20):
            box.push(1, seq, frame(1, seq))
        box.flush()
        last = folder + "/" + segments(folder)[-1]
        with open(last, "rb") as f:
            whole = f.read()
        # The last segment holds 4 records; cut it at every length, as a power
        # loss mid-append would, and flip single bytes, as worn flash might.
        cuts = 0
        for n in range(len(whole)):
            with open(last, "wb") as f:
                f.write(whole[:n])
            box = Outbox(folder, max_frames=128, segment_frames=8, flush_every=8)
            got = box.pending(100)
            kept = len(got) - 16
            if not 0 <= kept <= 4 or got != [frame(1, s) for s in range(16 + kept)]:
                raise AssertionError("cut at %d: got %d frames" % (n, len(got)))
            cuts += 1
        eq(cuts, len(whole), "every cut tried")
        for i in range(0, len(whole), 7):
            bad = bytearray(whole)
            bad[i] ^= 0x10
            with open(last, "wb") as f:
                f.write(bad)
            box = Outbox(folder, max_frames=128, segment_frames=8, flush_every=8)
            eq(box.torn, 1, "the damaged record is found")
            # One flipped byte costs the one frame it is in, not the rest of the segment.
            got = box.pending(100)
            lost = [s for s in range(20) if frame(1, s) not in got]
            eq(len(lost), 1, "byte %d flipped: frames lost" % i)
            eq(got, [frame(1, s) for s in range(20) if s not in lost], "the others, in order")
        # After a tear, new frames go to a new segment and nothing is lost.
        with open(last, "wb") as f:
            f.write(whole[: len(whole) - 3])
        box = Outbox(folder, max_frames=128, segment_frames=8, flush_every=8)
        eq(box.torn, 1, "one torn tail")
        box.push(2, 0, frame(2, 0))
        box.flush()
        box = Outbox(folder, max_frames=128, segment_frames=8, flush_every=8)
        want = [frame(1, s) for s in range(19)] + [frame(2, 0)]
        eq(box.pending(100), want, "before the tear, then the new frame")


def test_bounded_queue_drops_the_oldest_segment_and_counts():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=64, segment_frames=16, flush_every=8)
        for seq in range(200):
            box.push(1, seq, frame(1, seq))
        box.flush()
        if box.depth > 64:
            raise AssertionError("depth %d over max_frames" % box.depth)
        eq(box.dropped + box.depth, 200, "every frame queued or counted as dropped")
        got = box.pending(1000)
        eq(got, [frame(1, s) for s in range(200 - len(got), 200)], "the newest kept, in order")
        if len(segments(folder)) > 4:
            raise AssertionError("too many segment files: %r" % segments(folder))
        # Acked frames in a dropped segment are not lost frames.
        box = Outbox(folder, max_frames=64, segment_frames=16, flush_every=8)
        first = 200 - box.depth
        box.ack(1, first, first)
        for seq in range(16):
            box.push(2, seq, frame(2, seq))
        box.flush()
        eq(box.dropped, 15, "one segment dropped: 16 frames, one of them acked")


def test_writes_are_batched():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=1024, segment_frames=32, flush_every=16)
        for seq in range(1000):
            box.push(1, seq, frame(1, seq))
        box.flush()
        print("writes for 1000 frames, flush_every=16: %d" % box.writes)
        if box.writes > 70:
            raise AssertionError("%d writes for 1000 frames" % box.writes)
        eq(box.depth, 1000, "all queued")
        box = None  # a reboot: the old outbox is gone before the new one is made
        gc.collect()
        box = Outbox(folder, max_frames=1024, segment_frames=32, flush_every=16)
        eq(box.depth, 1000, "all on flash")
        # Frames acked while still buffered are never written at all.
        before = box.writes
        for seq in range(100):
            box.push(2, seq, frame(2, seq))
            box.ack(2, seq, seq)
        box.flush()
        eq(box.writes, before, "no write for frames acked in RAM")


def test_a_day_long_outage_loses_nothing_within_max_frames():
    # A frame every 5 minutes for 24 hours, every send failing; the node
    # flushes every 15 minutes and reboots every 8 hours. Then the link returns.
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=320, segment_frames=16, flush_every=8)
        boot, seq, made = 1, 0, 0
        for minute in range(0, 24 * 60, 5):
            box.push(boot, seq, frame(boot, seq))
            made += 1
            seq += 1
            box.pending(8)  # sent into the void
            if minute % 15 == 10:
                box.flush()
            if minute % 480 == 475:  # 96 frames a boot
                box.flush()
                box = None
                gc.collect()
                box = Outbox(folder, max_frames=320, segment_frames=16, flush_every=8)
                boot, seq = boot + 1, 0
        eq(made, 288, "frames made")
        eq(box.dropped, 0, "nothing dropped")
        eq(box.depth, 288, "all waiting")
        arrived = bytearray(288)
        drain(box, arrived)
        eq(bytes(arrived), bytes([1]) * 288, "each frame arrived exactly once")
        eq(box.depth, 0, "empty")
        box.flush()
        eq(segments(folder), [], "no segment left on flash")


def test_bad_arguments_are_named():
    with TempDir("box") as folder:
        mentions(raises(OutboxError, Outbox, folder, 16, 16, 4), "max_frames")
        mentions(raises(OutboxError, Outbox, folder, 64, 33, 4), "segment_frames")
        mentions(raises(OutboxError, Outbox, folder, 64, 16, 0), "flush_every")
        box = Outbox(folder, 64, 16, 4)
        mentions(raises(OutboxError, box.push, 1, 0, b"x" * 251), "251")
        mentions(raises(OutboxError, box.push, 1, 0, b""), "frame")
        mentions(raises(OutboxError, box.push, -1, 0, b"x"), "boot")

