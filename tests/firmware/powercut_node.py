# A node that is power-cut at random: the real Node, Outbox, Journal and
# SequenceCounter under the MicroPython unix port, on a flash folder that
# survives the cut (the process is killed with SIGKILL from outside).
#
#   micropython powercut_node.py FOLDER FIRST_ID COUNT PERIOD_MS
#
# It starts as runtime.build does (recovering what the last start left), then makes
# COUNT events, ids FIRST_ID.., one every PERIOD_MS of its own clock, with interval
# summaries every second; each id is printed ("noticed ID", "interval ID") once the
# node step that took it has returned. Nothing is sent: every frame stays in the
# outbox. With COUNT 0 it prints every event and interval id in the outbox's
# frames ("queued ID", "queued-interval ID"; reading them acks them: the last run).

import sys
import time

from framing import FrameBuilder, Signer, decode_frame
from journal import Journal, recover_node
from kinsight_wire import (
    B_EVENTS,
    B_SUMMARIES,
    EV_DURATION_DS,
    H_BOOT,
    H_SEQ,
    KIND_EVENTS,
    KIND_SUMMARY,
    ROLE_TOILET,
    SM_EPISODES,
)
from node import Node, Sensor, Sink
from numbered import Numbered
from outbox import Outbox
from sequence import SequenceCounter

SIGNER = Signer(bytes(range(32)))



def main(argv):
    folder, first_id, count, period_ms = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    try:
        import os

        os.mkdir(folder)
    except OSError:
        pass
    outbox = Outbox(folder + "/outbox", max_frames=512, segment_frames=16, flush_every=8)
    builder = FrameBuilder(SIGNER, 9, SequenceCounter(folder + "/boot"))
    sink = Sink()
    extractor = Numbered(sink, first_id, count, period_ms)
    node = Node(builder, outbox, None, [Sensor(ROLE_TOILET, extractor, lambda: 0, 20)], sink,
                summary_s=1, summary_batch=4, event_wait_s=3, status_s=3600,
                clock_base_s=1790000000, journal=Journal(folder + "/journal"), flush_s=1)
    recover_node(node)
    if count == 0:
        # Read oldest first, a few at a time, acking (in RAM) what was read: the heap
        # cannot hold the whole queue at once.
        print("recovered %d" % node.recovered)
        while outbox.depth:
            for frame in outbox.pending(4):
                kind, header, body = decode_frame(SIGNER, frame)
                if kind == KIND_EVENTS:
                    for e in body[B_EVENTS]:
                        print("queued %d" % e[EV_DURATION_DS])
                elif kind == KIND_SUMMARY:
                    for sm in body[B_SUMMARIES]:
                        print("queued-interval %d" % sm[SM_EPISODES])
                outbox.ack(header[H_BOOT], header[H_SEQ])
        return
    start = time.ticks_ms()
    while extractor.next_id < extractor.last_id:
        node.step(time.ticks_diff(time.ticks_ms(), start))
        extractor.say()
        time.sleep_ms(5)
    print("done")


main(sys.argv)
