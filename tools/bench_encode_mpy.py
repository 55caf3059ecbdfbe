"""Encode-and-sign benchmark of the firmware's send path, under MicroPython.

    MICROPYPATH=firmware:shared micropython -X heapsize=112K tools/bench_encode_mpy.py [N]

Builds and signs N frames (default 2000), round robin: an events frame of
5 events, a summary frame and a status frame, with the firmware's own
FrameBuilder. The bodies are made once: this times encoding, signing and
numbering, not the making of dicts. The last line is

    encode_us_per_frame=X frames=N peak_alloc_bytes=Y

where Y is the most heap one frame allocates (measured with the collector
held off), the headroom a node needs to send.
"""

import gc
import sys
import time

from framing import FrameBuilder, Signer
from kinsight_wire import (
    ET_DRAW,
    EV_AGO_DS,
    EV_DURATION_DS,
    EV_PEAK_FLOW_ML_MIN,
    EV_ROLE,
    EV_TYPE,
    EV_VOLUME_ML,
    RESET_POWER_ON,
    ROLE_SEAT,
    ROLE_TAP,
    SM_AGO_S,
    SM_EPISODES,
    SM_OCCUPIED_DS,
    SM_PERIOD_S,
    SM_RESTLESS,
    SM_RISE_DS_MAX,
    SM_ROLE,
    ST_ACKED,
    ST_FIRMWARE,
    ST_FREE_HEAP,
    ST_QUEUE_DEPTH,
    ST_RESET_CAUSE,
    ST_RSSI_DBM,
    ST_SENT,
    ST_UPTIME_S,
)
from sequence import SequenceCounter

TIME_S = 1790000000  # past 2**30: a long int on an ESP32, as real clocks are


def typical_bodies():
    events = [
        {
            EV_TYPE: ET_DRAW,
            EV_ROLE: ROLE_TAP,
            EV_AGO_DS: 3000 * i,
            EV_DURATION_DS: 95,
            EV_VOLUME_ML: 240 + 10 * i,
            EV_PEAK_FLOW_ML_MIN: 5400,
        }
        for i in range(5)
    ]
    summaries = [
        {
            SM_ROLE: ROLE_SEAT,
            SM_AGO_S: 900 * i,
            SM_PERIOD_S: 900,
            SM_OCCUPIED_DS: 7200,
            SM_EPISODES: 2,
            SM_RESTLESS: 7,
            SM_RISE_DS_MAX: 31,
        }
        for i in range(2)
    ]
    status = {
        ST_FIRMWARE: "0.1.0",
        ST_UPTIME_S: 86400,
        ST_RESET_CAUSE: RESET_POWER_ON,
        ST_FREE_HEAP: 61440,
        ST_QUEUE_DEPTH: 3,
        ST_SENT: 1234,
        ST_ACKED: 1230,
        ST_RSSI_DBM: -67,
    }
    return events, summaries, status


def main(argv):
    frames = int(argv[1]) if len(argv) > 1 else 2000
    builder = FrameBuilder(Signer(bytes(range(32))), 7, SequenceCounter(None))
    events, summaries, status = typical_bodies()
    sends = (
        lambda: builder.events(events, TIME_S),
        lambda: builder.summaries(summaries, TIME_S),
        lambda: builder.status(status, TIME_S),
    )
    sizes = [len(send()[0]) for send in sends]

    peak = 0
    for send in sends:
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        send()
        peak = max(peak, gc.mem_alloc() - before)
        gc.enable()

    gc.collect()
    start = time.ticks_us()
    for i in range(frames):
        sends[i % 3]()
    elapsed_us = time.ticks_diff(time.ticks_us(), start)

    print("frame_bytes events=%d summary=%d status=%d" % tuple(sizes))
    print(
        "encode_us_per_frame=%.1f frames=%d peak_alloc_bytes=%d"
        % (elapsed_us / frames, frames, peak)
    )


if __name__ == "__main__":
    main(sys.argv)
