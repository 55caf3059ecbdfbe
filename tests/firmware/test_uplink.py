"""Backoff, and UdpUplink over real UDP sockets on 127.0.0.1."""

import gc
import os
import socket

from framing import FrameError, Signer, decode_frame, encode_frame
from kinsight_wire import ACK_BOOT, ACK_CONTIGUOUS, ACK_SEQ, ACK_TIME_S, KIND_ACK
from runner import eq, mentions, raises
from uplink import Backoff, UdpUplink

NODE = 7
KEY = bytes(range(32))
SIGNER = Signer(KEY)
HOST_TIME_S = 1790000000


def make_ack(boot, seq, contiguous, host_seq, signer=SIGNER, node=NODE):
    body = {ACK_BOOT: boot, ACK_SEQ: seq, ACK_TIME_S: HOST_TIME_S + host_seq}
    if contiguous is not None:
        body[ACK_CONTIGUOUS] = contiguous
    return encode_frame(signer, KIND_ACK, node, 1, host_seq, HOST_TIME_S, body)


def test_backoff_doubles_to_the_cap_with_bounded_jitter():
    b = Backoff(first_ms=100, max_ms=1000, factor=2, jitter=0, seed=1)
    eq([b.next_delay_ms() for _ in range(6)], [100, 200, 400, 800, 1000, 1000], "no jitter")
    b.reset()
    eq(b.next_delay_ms(), 100, "after reset")
    j1 = Backoff(first_ms=1000, max_ms=8000, jitter=0.25, seed=42)
    j2 = Backoff(first_ms=1000, max_ms=8000, jitter=0.25, seed=42)
    seq1 = [j1.next_delay_ms() for _ in range(8)]
    eq(seq1, [j2.next_delay_ms() for _ in range(8)], "same seed, same delays")
    bases = [1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000]
    for i in range(8):
        got, base = seq1[i], bases[i]
        if not 0.75 * base <= got <= 1.25 * base:
            raise AssertionError("delay %d outside 25%% of %d" % (got, base))
    if len(set(seq1[3:])) == 1:
        raise AssertionError("jitter did not spread the delays: %r" % seq1)
    other = Backoff(first_ms=1000, max_ms=8000, jitter=0.25, seed=43)
    if [other.next_delay_ms() for _ in range(8)] == seq1:
        raise AssertionError("another seed gave the same delays")
    mentions(raises(ValueError, Backoff, 0), "first_ms")


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


def test_udp_uplink_over_real_sockets_on_loopback():
    gc.collect()
    peer, port = _bind_peer()
    peer.settimeout(1)
    link = UdpUplink(socket, "127.0.0.1", port, timeout_ms=200)
    try:
        eq(link.receive(), None, "nothing yet")
        link.send(b"hello")
        data, addr = peer.recvfrom(64)
        eq(data, b"hello", "the peer got the datagram")
        ack = make_ack(1, 0, 0, 1)
        peer.sendto(ack, addr)
        eq(link.receive(), ack, "the reply")
        # An error drops the socket; the next use makes a new one.
        link._sock.close()
        raises(OSError, link.send, b"x")
        eq(link.reconnects, 1, "dropped once")
        link.send(b"again")
        eq(peer.recvfrom(64)[0], b"again", "sent on a new socket")
    finally:
        link.close()
        peer.close()


def test_a_frame_for_another_node_is_a_bad_ack():
    raises(FrameError, decode_frame, Signer(bytes(32)), make_ack(1, 0, 0, 1))
