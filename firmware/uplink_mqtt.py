"""The MQTT link (mechanism): frames published on kinsight/<household>/<node>/up at
QoS 1, the host's acks read from kinsight/<household>/<node>/down, through
micropython-lib's MQTT client (umqtt.simple, installed on the board with mip, see
boards/package.json).

    def client():
        return MQTTClient(b"node-101", "192.168.1.10", user=b"n101", password=b"...")
    uplink = MqttUplink(client, b"h-7", 101)     # a sensor node
    uplink = MqttUplink(client, b"h-7")          # a gateway: each frame's own node

It has the uplinks' interface (uplink.UdpUplink): send(frame) raises OSError when
the frame could not go out, receive() gives one frame or None without waiting,
close(). A broken connection is dropped and made again on the next use, so a
broker that comes back is used again; the Forwarder's policy (retries, backoff)
stays what it is. Kinsight's own acks are the guarantee, MQTT only carries.
"""

from micropython import const

from framing import FrameError, frame_header
from kinsight_wire import H_NODE

_ACKS_HELD = const(8)  # acks read while publishing, until receive() takes them


class MqttUplink:
    def __init__(self, make_client, household, node_id=None, prefix=b"kinsight"):
        self.make_client = make_client
        self.node_id = node_id
        self._base = bytes(prefix) + b"/" + bytes(household) + b"/"
        self._down = self._base + (b"+" if node_id is None else b"%d" % node_id) + b"/down"
        self._client = None
        self._acks = []
        self.reconnects = 0
        self.dropped_acks = 0  # more acks at once than held: the node resends, no harm

    def _on_message(self, topic, msg):
        if len(self._acks) == _ACKS_HELD:
            self._acks.pop(0)
            self.dropped_acks += 1
        self._acks.append(bytes(msg))

    def _connected(self):
        if self._client is None:
            client = self.make_client()
            client.set_callback(self._on_message)
            try:
                client.connect()
                client.subscribe(self._down, 1)
            except Exception as err:  # umqtt says a refusal with MQTTException
                try:
                    client.sock.close()
                except Exception:
                    pass
                raise OSError("MQTT: %r" % (err,)) from None
            self._client = client
        return self._client

    def _drop(self):
        if self._client is not None:
            try:
                self._client.sock.close()
            except Exception:
                pass
            self._client = None
            self.reconnects += 1

    def _topic(self, frame):
        node = self.node_id
        if node is None:
            try:
                node = frame_header(frame)[H_NODE]
            except FrameError:
                raise OSError("MQTT: a frame with no readable header") from None
        return self._base + b"%d/up" % node

    def send(self, frame):
        topic = self._topic(frame)
        try:
            self._connected().publish(topic, frame, False, 1)
        except OSError:
            self._drop()
            raise
        except Exception as err:  # umqtt's own checks (a broken stream)
            self._drop()
            raise OSError("MQTT: %r" % (err,)) from None

    def receive(self):
        if not self._acks:
            try:
                self._connected().check_msg()
            except Exception:  # OSError, or umqtt's checks: start afresh next time
                self._drop()
                return None
        return self._acks.pop(0) if self._acks else None

    def close(self):
        if self._client is not None:
            try:
                self._client.disconnect()
            except Exception:
                pass
            self._client = None
