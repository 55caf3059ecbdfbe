# A sensor node for the end-to-end tests, run under the MicroPython unix port:
# the real Outbox, Forwarder and a real uplink against a real Kinsight host.
#
#   micropython link_node.py udp HOST PORT NODE KEY_HEX FOLDER COUNT PERIOD_MS
#   micropython link_node.py serial TTY_PATH NODE KEY_HEX FOLDER COUNT PERIOD_MS
#   micropython link_node.py mqtt HOST PORT USER PASSWORD HOUSEHOLD NODE KEY_HEX FOLDER COUNT
#       PERIOD_MS    (umqtt.simple, from micropython-lib, on MICROPYPATH)
#
# It makes COUNT event frames, one every PERIOD_MS, pushes each to an Outbox in
# FOLDER and forwards them until all are acked (or 60 s pass). It prints
# "acked N" as acks come in, then one JSON line: what it made and what is left.
# The serial TTY is put in raw mode with VMIN=0 VTIME=0, so reads never block.

import json
import select
import socket
import sys
import time

from framing import FrameBuilder, Signer, frame_seq
from kinsight_wire import ET_VISIT, EV_AGO_DS, EV_DURATION_DS, EV_ROLE, EV_TYPE, ROLE_TOILET
from outbox import Outbox
from sequence import SequenceCounter
from uplink import Backoff, Forwarder, UdpUplink
from uplink_serial import SerialUplink

_DEADLINE_MS = 60000


class PtyUart:
    """machine.UART's write/any/read over a tty file on the unix port."""

    def __init__(self, path):
        import termios

        self.f = open(path, "r+b")
        fd = self.f.fileno()
        termios.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[6][5] = 0  # VTIME
        attrs[6][6] = 0  # VMIN: a read returns what is there, at once
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        self.poller = select.poll()
        self.poller.register(self.f, select.POLLIN)

    def write(self, data):
        return self.f.write(data)

    def any(self):
        # A tty cannot say how many bytes wait without an ioctl the unix port
        # lacks: "some" is enough, as read(n) returns what is there (VMIN=0).
        return 256 if self.poller.poll(0) else 0

    def read(self, n):
        data = self.f.read(n)
        return data or None


def main(argv):
    if argv[1] == "udp":
        uplink = UdpUplink(socket, argv[2], int(argv[3]), timeout_ms=0)
        rest = argv[4:]
    elif argv[1] == "mqtt":
        from umqtt.simple import MQTTClient

        from uplink_mqtt import MqttUplink

        host, port, user, password, household = argv[2:7]
        client_id = b"link-node-" + argv[7].encode()

        def client():
            return MQTTClient(client_id, host, int(port), user.encode(), password.encode(), 30)

        uplink = MqttUplink(client, household.encode(), int(argv[7]))
        rest = argv[7:]
    else:
        uplink = SerialUplink(PtyUart(argv[2]))
        rest = argv[3:]
    node, key_hex, folder, count, period_ms = rest
    node, count, period_ms = int(node), int(count), int(period_ms)
    try:
        import os

        os.mkdir(folder)
    except OSError:
        pass
    signer = Signer(bytes.fromhex(key_hex))
    counter = SequenceCounter(folder + "/boot")
    builder = FrameBuilder(signer, node, counter)
    box = Outbox(folder + "/outbox", max_frames=256, segment_frames=16, flush_every=8)
    fwd = Forwarder(box, uplink, signer, node, window=8,
                    backoff=Backoff(first_ms=50, max_ms=400, seed=node))
    start = time.ticks_ms()
    t0 = int(time.time())  # the host's clock: the host files frames by their stamps
    next_make = start
    made = []
    shown = 0
    while True:
        now = time.ticks_ms()
        if len(made) < count and time.ticks_diff(now, next_make) >= 0:
            i = len(made)
            ev = [{EV_TYPE: ET_VISIT, EV_ROLE: ROLE_TOILET, EV_AGO_DS: i, EV_DURATION_DS: 600}]
            for frame in builder.events(ev, t0 + i):
                box.push(counter.boot, frame_seq(frame), frame)
                made.append(frame_seq(frame))
            next_make = time.ticks_add(now, period_ms)
        fwd.step(now)
        if fwd.acked != shown:
            shown = fwd.acked
            print("acked %d" % shown)
        if len(made) >= count and box.depth == 0:
            break
        if time.ticks_diff(now, start) > _DEADLINE_MS:
            break
        time.sleep_ms(5)
    box.flush()
    uplink.close()
    print(json.dumps({"node": node, "boot": counter.boot, "made": made, "sent": fwd.sent,
                      "acked": fwd.acked, "bad_acks": fwd.bad_acks, "depth": box.depth,
                      "dropped": box.dropped, "host_time_s": fwd.last_host_time_s,
                      "reconnects": getattr(uplink, "reconnects", 0)}))


main(sys.argv)
