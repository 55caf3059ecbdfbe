"""ESP-NOW: a gateway node that relays sensor nodes' frames to the host, and
the uplink a sensor node uses to reach that gateway.

``espnow`` is an espnow.ESPNow-like object: recv(timeout_ms) -> (mac, msg) or
(None, None), send(mac, msg) -> True/False, add_peer(mac), del_peer(mac).
The gateway reads each frame's header for its node id (H_NODE) and learns
which mac that node is at; an ack from the host carries the node it is for in
its own header, and goes to that mac. The gateway checks no tags: it holds no
node keys, and the node and the host check every frame themselves.
"""

from micropython import const

from framing import FrameError, frame_header
from kinsight_wire import H_NODE

_RELAY_PER_STEP = const(16)


def frame_node(frame):
    """H_NODE of a frame (for an ack, the node it is for), read from its header."""
    return frame_header(frame)[H_NODE]


class Gateway:
    def __init__(self, espnow, upstream, max_peers=8):
        self.espnow = espnow
        self.upstream = upstream
        self.max_peers = max_peers
        self._peers = []  # [node_id, mac], least recently heard first
        self.forwarded = 0  # frames sent upstream
        self.delivered = 0  # acks sent to a node
        self.bad_frames = 0  # from a node, with no readable header
        self.unroutable = 0  # acks for a node not in the peer table
        self.upstream_errors = 0
        self.evicted = 0
        self.undelivered = 0  # acks the node's radio did not take

    def mac_of(self, node_id):
        for entry in self._peers:
            if entry[0] == node_id:
                return entry[1]
        return None

    def _learn(self, node_id, mac):
        for i, entry in enumerate(self._peers):
            if entry[0] == node_id:
                self._peers.pop(i)
                if entry[1] != mac:
                    self._add_peer(mac)
                entry[1] = mac
                self._peers.append(entry)
                return
        if len(self._peers) == self.max_peers:
            old = self._peers.pop(0)
            self.evicted += 1
            if not [e for e in self._peers if e[1] == old[1]]:
                try:
                    self.espnow.del_peer(old[1])
                except (OSError, AttributeError):
                    pass
        self._add_peer(mac)
        self._peers.append([node_id, mac])

    def _add_peer(self, mac):
        try:
            self.espnow.add_peer(mac)
        except OSError:
            pass  # already a peer

    def step(self):
        """Relays what is waiting each way, without blocking; returns frames moved."""
        moved = 0
        for _ in range(_RELAY_PER_STEP):
            mac, msg = self.espnow.recv(0)
            if msg is None:
                break
            msg = bytes(msg)
            try:
                node_id = frame_node(msg)
            except FrameError:
                self.bad_frames += 1
                continue
            self._learn(node_id, bytes(mac))
            try:
                self.upstream.send(msg)
            except OSError:
                self.upstream_errors += 1
                continue
            self.forwarded += 1
            moved += 1
        for _ in range(_RELAY_PER_STEP):
            ack = self.upstream.receive()
            if ack is None:
                break
            try:
                node_id = frame_node(ack)
            except FrameError:
                self.bad_frames += 1
                continue
            mac = self.mac_of(node_id)
            if mac is None:
                self.unroutable += 1
                continue
            try:
                ok = self.espnow.send(mac, ack)
            except OSError:
                ok = False
            if ok:
                self.delivered += 1
                moved += 1
            else:
                self.undelivered += 1
        return moved


class EspNowUplink:
    """A sensor node's uplink to its gateway: send(frame), receive(), close()."""

    def __init__(self, espnow, gateway_mac):
        self.espnow = espnow
        self.gateway_mac = bytes(gateway_mac)
        self.strangers = 0  # messages from a mac that is not the gateway
        try:
            espnow.add_peer(self.gateway_mac)
        except OSError:
            pass  # already a peer

    def send(self, frame):
        if not self.espnow.send(self.gateway_mac, frame):
            raise OSError("ESP-NOW: the gateway did not take the frame")

    def receive(self):
        mac, msg = self.espnow.recv(0)
        if msg is None:
            return None
        if bytes(mac) != self.gateway_mac:
            self.strangers += 1
            return None
        return bytes(msg)

    def close(self):
        pass
