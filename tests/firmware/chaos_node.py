# A node for the chaos test: the real Node, Outbox, Journal, SequenceCounter,
# Forwarder and UDP uplink under the MicroPython unix port, on a flash folder
# that survives its process being killed (a power cut).
#
#   micropython chaos_node.py run   HOST PORT NODE KEY_HEX FOLDER FIRST_ID PERIOD_MS
#   micropython chaos_node.py drain HOST PORT NODE KEY_HEX FOLDER
#
# "run" starts as runtime.build does (recovering what the last start left) and
# makes events with ids FIRST_ID.. (an event's duration), one every PERIOD_MS,
# with interval summaries every second (ids in their episode count), printing
# "noticed ID" / "interval ID" once the node step that took it has returned,
# until it is killed. "drain" makes nothing new, forwards until the outbox is
# empty (or 120 s pass) and prints "drained DEPTH".

import socket
import sys
import time

from framing import FrameBuilder, Signer
from journal import Journal, recover_node
from kinsight_wire import (
    ROLE_TOILET,
)
from node import Node, Sensor, Sink
from numbered import Numbered
from outbox import Outbox
from sequence import SequenceCounter
from uplink import Backoff, Forwarder, UdpUplink


def main(argv):
    mode, host, port, node_id, key_hex, folder = argv[1:7]
    making = mode == "run"
    first_id, period_ms = (int(argv[7]), int(argv[8])) if making else (0, 1000)
    try:
        import os

        os.mkdir(folder)
    except OSError:
        pass
    signer = Signer(bytes.fromhex(key_hex))
    counter = SequenceCounter(folder + "/boot")
    builder = FrameBuilder(signer, int(node_id), counter)
    outbox = Outbox(folder + "/outbox", max_frames=512, segment_frames=16, flush_every=8)
    uplink = UdpUplink(socket, host, int(port), timeout_ms=0)
    forwarder = Forwarder(outbox, uplink, signer, int(node_id), window=8,
                          backoff=Backoff(first_ms=30, max_ms=300, seed=counter.boot),
                          boot=counter.boot)
    sink = Sink()
    extractor = Numbered(sink, first_id, 10**9 if making else 0, period_ms)
    sensors = [Sensor(ROLE_TOILET, extractor, lambda: 0, 20)] if making else []
    node = Node(builder, outbox, forwarder, sensors, sink, summary_s=1, summary_batch=4,
                event_wait_s=3, status_s=3600, clock_base_s=int(time.time()),
                journal=Journal(folder + "/journal"), flush_s=1, follow_host_clock=False)
    recover_node(node)
    start = time.ticks_ms()
    while True:
        now = time.ticks_diff(time.ticks_ms(), start)
        node.step(now)
        extractor.say()
        if not making and (outbox.depth == 0 or now > 120000):
            outbox.flush()
            print("drained %d" % outbox.depth)
            return
        time.sleep_ms(2)


main(sys.argv)
