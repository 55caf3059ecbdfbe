# An ESP-NOW gateway forwarding to an MQTT broker, for the end-to-end tests, run under
# the MicroPython unix port: two sensor nodes (the real Outbox and Forwarder over the
# ESP-NOW uplink, on a fake radio) and the real Gateway whose upstream is the
# MqttUplink in gateway mode (each frame on its own node's topic) on umqtt.simple.
#
#   micropython gateway_mqtt_node.py HOST PORT USER PASSWORD HOUSEHOLD FOLDER COUNT
#       NODE:KEY_HEX NODE:KEY_HEX
#
# Prints one JSON line: per node, what it made and what was acked.

import json
import os
import sys
import time

from umqtt.simple import MQTTClient

from framing import FrameBuilder, Signer, frame_seq
from gateway import EspNowUplink, Gateway
from kinsight_wire import ET_VISIT, EV_AGO_DS, EV_DURATION_DS, EV_ROLE, EV_TYPE, ROLE_TOILET
from outbox import Outbox
from sequence import SequenceCounter
from test_gateway import MAC_GW, Air
from uplink import Backoff, Forwarder
from uplink_mqtt import MqttUplink

_DEADLINE_MS = 60000


def main(argv):
    host, port, user, password, household, folder, count = argv[1:8]
    count = int(count)
    try:
        os.mkdir(folder)
    except OSError:
        pass
    air = Air()

    def client():
        return MQTTClient(b"gateway-test", host, int(port), user.encode(), password.encode(),
                          30)

    gateway = Gateway(air.radio(MAC_GW), MqttUplink(client, household.encode()))
    nodes = []
    for i, spec in enumerate(argv[8:]):
        node_id, key_hex = spec.split(":")
        node_id = int(node_id)
        signer = Signer(bytes.fromhex(key_hex))
        where = "%s/%d" % (folder, node_id)
        try:
            os.mkdir(where)
        except OSError:
            pass
        counter = SequenceCounter(where + "/boot")
        box = Outbox(where + "/outbox", max_frames=128, segment_frames=16, flush_every=8)
        mac = b"\x02\x00\x00\x00\x01" + bytes([i])
        fwd = Forwarder(box, EspNowUplink(air.radio(mac), MAC_GW), signer, node_id,
                        window=8, backoff=Backoff(first_ms=50, max_ms=400, seed=node_id))
        nodes.append([node_id, FrameBuilder(signer, node_id, counter), counter, box, fwd, []])
    t0 = int(time.time())
    start = time.ticks_ms()
    while True:
        now = time.ticks_ms()
        for _node_id, builder, counter, box, fwd, made in nodes:
            if len(made) < count:
                i = len(made)
                ev = [{EV_TYPE: ET_VISIT, EV_ROLE: ROLE_TOILET, EV_AGO_DS: i,
                       EV_DURATION_DS: 600}]
                for frame in builder.events(ev, t0 + i):
                    box.push(counter.boot, frame_seq(frame), frame)
                    made.append(frame_seq(frame))
            fwd.step(now)
        gateway.step()
        if all(len(n[5]) >= count and n[3].depth == 0 for n in nodes):
            break
        if time.ticks_diff(now, start) > _DEADLINE_MS:
            break
        time.sleep_ms(5)
    out = {"forwarded": gateway.forwarded, "delivered": gateway.delivered, "nodes": {}}
    for node_id, _builder, counter, box, fwd, made in nodes:
        out["nodes"][str(node_id)] = {"boot": counter.boot, "made": len(made),
                                      "acked": fwd.acked, "depth": box.depth}
    print(json.dumps(out))


main(sys.argv)
