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
    ET_VISIT,
    EV_DURATION_DS,
    EV_ROLE,
    EV_TYPE,
    ROLE_TOILET,
    SM_EPISODES,
    SM_PERIOD_S,
    SM_ROLE,
)
from node import Node, Sensor, Sink
from outbox import Outbox
from sequence import SequenceCounter
from uplink import Backoff, Forwarder, UdpUplink


class Numbered:
    def __init__(self, sink, first_id, period_ms, making):
        self.sink = sink
        self.next_id = first_id
        self.interval_id = first_id
        self.period_ms = period_ms
        self.next_ms = period_ms
        self.making = making
        self.noticed = []
        self.intervals = []

    def feed(self, t_ms, _value):
        if self.making and t_ms >= self.next_ms:
            self.sink.event(t_ms, {EV_TYPE: ET_VISIT, EV_ROLE: ROLE_TOILET,
                                   EV_DURATION_DS: self.next_id})
            self.noticed.append(self.next_id)
            self.next_id += 1
            self.next_ms += self.period_ms

    def summary(self, _now_ms):
        if not self.making:
            return None
        self.interval_id += 1
        self.intervals.append(self.interval_id)
        return {SM_ROLE: ROLE_TOILET, SM_PERIOD_S: 1, SM_EPISODES: self.interval_id}


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
    extractor = Numbered(sink, first_id, period_ms, making)
    sensors = [Sensor(ROLE_TOILET, extractor, lambda: 0, 20)] if making else []
    node = Node(builder, outbox, forwarder, sensors, sink, summary_s=1, summary_batch=4,
                event_wait_s=3, status_s=3600, clock_base_s=int(time.time()),
                journal=Journal(folder + "/journal"), flush_s=1, follow_host_clock=False)
    recover_node(node)
    start = time.ticks_ms()
    while True:
        now = time.ticks_diff(time.ticks_ms(), start)
        node.step(now)
        while extractor.noticed:
            print("noticed %d" % extractor.noticed.pop(0))
        while extractor.intervals:
            print("interval %d" % extractor.intervals.pop(0))
        if not making and (outbox.depth == 0 or now > 120000):
            outbox.flush()
            print("drained %d" % outbox.depth)
            return
        time.sleep_ms(2)


main(sys.argv)
