"""Outbox under MicroPython: damage in the middle of a segment (worn flash) costs the
damaged frame only, and never makes an unacked frame count as acked."""

# Compiled first, while the 112 KB heap is still in one piece.
from outbox import Outbox  # isort: skip

from runner import eq
from tempdir import TempDir
from test_outbox import frame, segments


def test_after_damage_the_acks_file_is_not_trusted_frames_are_sent_again():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=64, segment_frames=8, flush_every=8)
        for seq in range(8):
            box.push(1, seq, frame(1, seq))
        box.flush()
        box.ack(1, 5, 5)  # 0..5 stored by the host
        box.flush()
        name = folder + "/" + segments(folder)[0]
        with open(name, "rb") as f:
            data = bytearray(f.read())
        start = data.find(b"frame 1/2 ")
        data[start + 3] ^= 0x01  # inside frame 2
        with open(name, "wb") as f:
            f.write(data)
        box = Outbox(folder, max_frames=64, segment_frames=8, flush_every=8)
        # Before the damage the acks hold; after it, a record's index may have moved:
        # better sent twice (the host takes duplicates) than taken as acked.
        eq(box.pending(100), [frame(1, s) for s in range(3, 8)], "resent, never lost")
