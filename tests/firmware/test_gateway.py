"""The ESP-NOW gateway with a fake radio: two nodes, acks routed back by node id."""

from framing import FrameBuilder, FrameError, Signer, encode_frame, parse_ack
from gateway import EspNowUplink, Gateway, frame_node
from kinsight_wire import (
    ACK_BOOT,
    ACK_CONTIGUOUS,
    ACK_SEQ,
    ACK_TIME_S,
    ET_FLUSH,
    EV_AGO_DS,
    EV_ROLE,
    EV_TYPE,
    KIND_ACK,
    ROLE_TOILET,
)
from runner import eq, raises
from sequence import SequenceCounter

T = 1790000000
MAC_GW = b"\x02\x00\x00\x00\x00\x01"
MAC_A = b"\x02\x00\x00\x00\x00\x0a"
MAC_B = b"\x02\x00\x00\x00\x00\x0b"


class Air:
    """The radio channel: a queue of (dest mac, src mac, msg)."""

    def __init__(self):
        self.queue = []

    def radio(self, mac):
        return FakeEspNow(self, mac)


class FakeEspNow:
    def __init__(self, air, mac):
        self.air = air
        self.mac = mac
        self.peers = []

    def add_peer(self, mac):
        if mac in self.peers:
            raise OSError("ESP_ERR_ESPNOW_EXIST")
        self.peers.append(mac)

    def del_peer(self, mac):
        self.peers.remove(mac)

    def send(self, mac, msg):
        if mac not in self.peers:
            raise OSError("ESP_ERR_ESPNOW_NOT_FOUND")
        self.air.queue.append((mac, self.mac, bytes(msg)))
        return True

    def recv(self, timeout_ms=0):
        for i, (dest, src, msg) in enumerate(self.air.queue):
            if dest == self.mac:
                self.air.queue.pop(i)
                return src, msg
        return None, None


class FakeUpstream:
    """The host end: remembers frames, and acks are put in by the test."""

    def __init__(self):
        self.frames = []
        self.acks = []

    def send(self, frame):
        self.frames.append(frame)

    def receive(self):
        return self.acks.pop(0) if self.acks else None


def ack_for(signer, node, seq):
    body = {ACK_BOOT: 1, ACK_SEQ: seq, ACK_CONTIGUOUS: seq, ACK_TIME_S: T}
    return encode_frame(signer, KIND_ACK, node, 9, seq, T, body)


def node_frame(builder, i):
    ev = [{EV_TYPE: ET_FLUSH, EV_ROLE: ROLE_TOILET, EV_AGO_DS: i}]
    return builder.events(ev, T)[0]


def test_frames_go_up_and_acks_come_back_to_the_right_node():
    air = Air()
    up = FakeUpstream()
    gw = Gateway(air.radio(MAC_GW), up, max_peers=4)
    signers = {11: Signer(bytes(range(32))), 12: Signer(bytes(range(1, 33)))}
    nodes = {}
    for node, mac in ((11, MAC_A), (12, MAC_B)):
        link = EspNowUplink(air.radio(mac), MAC_GW)
        nodes[node] = (link, FrameBuilder(signers[node], node, SequenceCounter(None)))
    for i in range(3):
        for node in (11, 12):
            link, builder = nodes[node]
            link.send(node_frame(builder, i))
    gw.step()
    eq(len(up.frames), 6, "all six frames upstream")
    eq([frame_node(f) for f in up.frames], [11, 12] * 3, "in the order sent")
    eq(gw.mac_of(11), MAC_A, "node 11's mac learned")
    # The host acks node 12's last frame, then node 11's.
    up.acks = [ack_for(signers[12], 12, 2), ack_for(signers[11], 11, 2)]
    gw.step()
    eq(gw.delivered, 2, "two acks sent")
    raw = nodes[12][0].receive()
    eq(parse_ack(signers[12], raw, 12)[:3], (1, 2, 2), "node 12 got its ack")
    eq(nodes[12][0].receive(), None, "and only its own")
    eq(parse_ack(signers[11], nodes[11][0].receive(), 11)[1], 2, "node 11 got its ack")


def test_acks_for_unknown_nodes_and_junk_frames_are_counted():
    air = Air()
    up = FakeUpstream()
    gw = Gateway(air.radio(MAC_GW), up)
    radio_a = air.radio(MAC_A)
    radio_a.add_peer(MAC_GW)
    radio_a.send(MAC_GW, b"\x01\x02junk")
    up.acks = [ack_for(Signer(bytes(32)), 99, 0), b"\xff"]
    gw.step()
    eq((gw.bad_frames, gw.unroutable, gw.forwarded), (2, 1, 0), "counts")
    raises(FrameError, frame_node, b"\x84\x01")


def test_peer_table_is_bounded_and_evicts_the_least_recent():
    air = Air()
    up = FakeUpstream()
    radio = air.radio(MAC_GW)
    gw = Gateway(radio, up, max_peers=2)
    signer = Signer(bytes(range(32)))
    for node in (1, 2, 1, 3):  # node 2 is the least recently heard when 3 comes
        mac = bytes([2, 0, 0, 0, 0, node])
        r = air.radio(mac)
        r.add_peer(MAC_GW)
        r.send(MAC_GW, node_frame(FrameBuilder(signer, node, SequenceCounter(None)), 0))
        gw.step()
    eq(gw.mac_of(2), None, "node 2 evicted")
    eq(gw.mac_of(1) is not None and gw.mac_of(3) is not None, True, "1 and 3 kept")
    eq(len(radio.peers), 2, "the radio's peer list bounded too")
    eq(gw.evicted, 1, "one eviction")


def test_node_uplink_ignores_other_senders():
    air = Air()
    node = EspNowUplink(air.radio(MAC_A), MAC_GW)
    stranger = air.radio(MAC_B)
    stranger.add_peer(MAC_A)
    stranger.send(MAC_A, b"not from the gateway")
    eq(node.receive(), None, "ignored")
    eq(node.strangers, 1, "counted")


def test_a_failed_radio_send_is_an_oserror():
    class Deaf(FakeEspNow):
        def send(self, mac, msg):
            return False

    link = EspNowUplink(Deaf(Air(), MAC_A), MAC_GW)
    raises(OSError, link.send, b"frame")
