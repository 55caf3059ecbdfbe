"""The Forwarder's policy: against a fake host that loses, duplicates and forges,
through a day-long outage, and over real UDP to an acking peer."""

import os
import socket

# Compiled first, while the 112 KB heap is still in one piece.
from outbox import Outbox  # isort: skip

from framing import FrameBuilder, Signer, decode_frame, encode_frame
from kinsight_wire import (
    ACK_BOOT,
    ACK_CONTIGUOUS,
    ACK_SEQ,
    ACK_TIME_S,
    ET_VISIT,
    EV_AGO_DS,
    EV_ROLE,
    EV_TYPE,
    H_BOOT,
    H_SEQ,
    KIND_ACK,
    ROLE_TOILET,
)
from runner import eq
from sequence import SequenceCounter
from tempdir import TempDir
from uplink import Backoff, Forwarder, UdpUplink

NODE = 7
KEY = bytes(range(32))
SIGNER = Signer(KEY)
HOST_TIME_S = 1790000000


def make_ack(boot, seq, contiguous, host_seq, signer=SIGNER, node=NODE):
    body = {ACK_BOOT: boot, ACK_SEQ: seq, ACK_TIME_S: HOST_TIME_S + host_seq}
    if contiguous is not None:
        body[ACK_CONTIGUOUS] = contiguous
    return encode_frame(signer, KIND_ACK, node, 1, host_seq, HOST_TIME_S, body)


class FakeHost:
    """An uplink whose far end stores frames of boot 1 and acks them as the real
    host does: the frame's seq, and the contiguous seq. ``lose(i)`` says whether
    the i-th datagram (either way) is lost; ``down`` makes send fail."""

    def __init__(self, lose=None, duplicate_acks=False, junk_every=0):
        self.lose = lose or (lambda i: False)
        self.duplicate_acks = duplicate_acks
        self.junk_every = junk_every
        self.down = False
        self.datagrams = 0
        self.counts = bytearray(400)  # times each seq was received
        self.top = -1  # highest seq received
        self.out_of_order = 0  # first arrivals below an earlier one
        self.contiguous = -1
        self.acks = []
        self.host_seq = 0

    def send(self, frame):
        if self.down:
            raise OSError(113)  # EHOSTUNREACH
        self.datagrams += 1
        if self.lose(self.datagrams):
            return
        _kind, header, _body = decode_frame(SIGNER, frame)
        boot, seq = header[H_BOOT], header[H_SEQ]
        eq(boot, 1, "boot")
        if not self.counts[seq]:
            if seq < self.top:
                self.out_of_order += 1
            self.top = max(self.top, seq)
        self.counts[seq] += 1
        while self.counts[self.contiguous + 1]:
            self.contiguous += 1
        c = self.contiguous
        self.host_seq += 1
        if self.junk_every and self.host_seq % self.junk_every == 0:
            self.acks.append(b"\x84junk")
            self.acks.append(make_ack(boot, seq, c, self.host_seq, Signer(bytes(32))))
            self.acks.append(make_ack(boot, seq, c, self.host_seq, node=NODE + 1))
        ack = make_ack(boot, seq, c if c >= 0 else None, self.host_seq)
        self.datagrams += 1
        if not self.lose(self.datagrams):
            self.acks.append(ack)
            if self.duplicate_acks:
                self.acks.append(ack)

    def receive(self):
        return self.acks.pop(0) if self.acks else None

    def close(self):
        pass


def visit(i):
    return [{EV_TYPE: ET_VISIT, EV_ROLE: ROLE_TOILET, EV_AGO_DS: i}]


def run(forwarder, builder, host, count, steps=2000, step_ms=100):
    now = 0
    for i in range(count):
        for frame in builder.events(visit(i), HOST_TIME_S):
            forwarder.outbox.push(builder.counter.boot, builder.counter.seq - 1, frame)
    for _ in range(steps):
        forwarder.step(now)
        now += step_ms
        if forwarder.outbox.depth == 0:
            return now
    raise AssertionError("not drained: %d left" % forwarder.outbox.depth)


def check_all_arrived(host, count, exactly_once):
    """Every frame 0..count-1 reached the host (exactly once on a perfect link:
    over a lossy one a lost ack makes a resend, which the host takes as a duplicate)."""
    for seq in range(count):
        n = host.counts[seq]
        if n == 0 or (exactly_once and n != 1):
            raise AssertionError("frame %d arrived %d times" % (seq, n))
    eq(host.counts[count], 0, "no other frame")


def test_forwarder_over_a_lossy_link_with_duplicated_and_bogus_acks():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=128, segment_frames=16, flush_every=8)
        builder = FrameBuilder(SIGNER, NODE, SequenceCounter(None))
        host = FakeHost(lose=lambda i: i % 5 == 0, duplicate_acks=True, junk_every=7)
        fwd = Forwarder(box, host, SIGNER, NODE, window=6, backoff=Backoff(100, 800, seed=3))
        run(fwd, builder, host, 60)
        check_all_arrived(host, 60, False)
        eq(fwd.acked, 60, "each frame acked once in the count")
        if fwd.bad_acks < 3 * 3:
            raise AssertionError("bad acks not counted: %d" % fwd.bad_acks)
        eq(fwd.last_host_time_s is not None, True, "host time known")
        if fwd.sent > 2 * 60:
            raise AssertionError("%d sends for 60 frames over a 20%% lossy link" % fwd.sent)


def test_forwarder_backs_off_while_the_link_is_down_then_drains():
    # A frame every 5 minutes for 24 hours with every send failing; a step every
    # 10 seconds; then the link comes back.
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=320, segment_frames=16, flush_every=8)
        builder = FrameBuilder(SIGNER, NODE, SequenceCounter(None))
        host = FakeHost()
        host.down = True
        fwd = Forwarder(box, host, SIGNER, NODE, window=8,
                        backoff=Backoff(1000, 300000, jitter=0.1, seed=5))
        now = 0
        for i in range(288):
            for frame in builder.events(visit(i), HOST_TIME_S):
                box.push(builder.counter.boot, builder.counter.seq - 1, frame)
            for _ in range(30):
                fwd.step(now)
                now += 10000
            if i % 3 == 2:
                box.flush()
        rounds_down = fwd.rounds
        # With a 5-minute cap, a day is at most ~300 rounds, not 8640 steps.
        if rounds_down > 400:
            raise AssertionError("%d rounds while down: no backoff" % rounds_down)
        eq(fwd.sent, 0, "nothing went out")
        eq(box.depth, 288, "every frame kept")
        host.down = False
        for _ in range(2000):
            fwd.step(now)
            now += 10000
            if box.depth == 0:
                break
        check_all_arrived(host, 288, True)
        eq(host.out_of_order, 0, "arrived in order")
        eq(box.depth, 0, "outbox empty")
        eq(box.dropped, 0, "nothing dropped")


def test_forwarder_never_acks_across_boots():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=64, segment_frames=16, flush_every=8)
        for seq in range(3):
            box.push(1, seq, b"boot1-%d" % seq)
        for seq in range(3):
            box.push(2, seq, b"boot2-%d" % seq)

        class AckOnly:
            def __init__(self):
                self.acks = [make_ack(2, 2, 2, 1)]

            def send(self, frame):
                pass

            def receive(self):
                return self.acks.pop() if self.acks else None

        fwd = Forwarder(box, AckOnly(), SIGNER, NODE)
        fwd.step(0)
        eq(fwd.acked, 3, "boot 2 acked")
        eq(box.pending(10), [b"boot1-%d" % s for s in range(3)], "boot 1 still waits")


def test_forwarder_over_udp_to_an_acking_peer():
    peer, port = _bind_peer()
    peer.settimeout(0.5)
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=64, segment_frames=16, flush_every=8)
        builder = FrameBuilder(SIGNER, NODE, SequenceCounter(None))
        link = UdpUplink(socket, "127.0.0.1", port, timeout_ms=50)
        fwd = Forwarder(box, link, SIGNER, NODE, window=4, backoff=Backoff(10, 100, seed=1))
        for i in range(10):
            for frame in builder.events(visit(i), HOST_TIME_S):
                box.push(1, builder.counter.seq - 1, frame)
        got = []
        try:
            for now in range(0, 100000, 100):
                fwd.step(now)
                if box.depth == 0:
                    break
                # The peer: ack whatever arrived, as the host would.
                while True:
                    try:
                        data, addr = peer.recvfrom(300)
                    except OSError:
                        break
                    _k, header, _b = decode_frame(SIGNER, data)
                    if header[H_SEQ] not in got:
                        got.append(header[H_SEQ])
                    peer.sendto(make_ack(1, header[H_SEQ], None, len(got)), addr)
                    peer.settimeout(0)
                peer.settimeout(0.05)
        finally:
            link.close()
            peer.close()
        eq(sorted(got), list(range(10)), "every frame reached the peer")
        eq(box.depth, 0, "all acked")


def _bind_peer():
    for _ in range(20):
        port = 40000 + int.from_bytes(os.urandom(2), "big") % 20000
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            peer.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
            return peer, port
        except OSError:
            peer.close()
    raise AssertionError("no free port")


def test_only_an_ack_that_stores_a_frame_of_this_boot_sets_the_clock():
    with TempDir("box") as folder:
        box = Outbox(folder, max_frames=16, segment_frames=8, flush_every=4)
        for s in range(3):
            box.push(5, s, b"boot5-%d" % s)

        class Replayer:
            def __init__(self):
                self.acks = []

            def send(self, frame):
                pass

            def receive(self):
                return self.acks.pop(0) if self.acks else None

        link = Replayer()
        fwd = Forwarder(box, link, SIGNER, NODE, boot=5)
        # A week-old genuine ack of an earlier boot: nothing of this boot is stored.
        old_s = HOST_TIME_S - 7 * 86400
        week_ago = encode_frame(SIGNER, KIND_ACK, NODE, 1, 3, old_s,
                                {ACK_BOOT: 4, ACK_SEQ: 9, ACK_TIME_S: old_s, ACK_CONTIGUOUS: 9})
        link.acks.append(week_ago)
        fwd.step(0)
        eq((fwd.last_host_time_s, box.depth), (None, 3), "an old boot's ack")
        link.acks.append(make_ack(5, 1, None, 10))
        fwd.step(1)
        eq((fwd.last_host_time_s, box.depth), (HOST_TIME_S + 10, 2), "a new ack of this boot")
        fwd.last_host_time_s = None
        # The same ack again, replayed a minute later: it stores nothing new.
        link.acks.append(make_ack(5, 1, None, 70))
        fwd.step(2)
        eq((fwd.last_host_time_s, box.depth), (None, 2), "a replayed ack")
