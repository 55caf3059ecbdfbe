# Runs under MicroPython: feeds raw signals from binary files through the firmware's
# extractors and prints one JSON line per event (not a test module; see test_sim_raw.py).
#
#   micropython sim_raw_feed.py SEAT_FILE TAP_FILE TOILET_FILE
#
# SEAT_FILE: uint16 little-endian ADC counts every 100 ms; TAP_FILE: uint32 LE pulse
# counts every 250 ms; TOILET_FILE: one byte (0/1) every 250 ms. Times from 0.

import json
import sys

from flow import FlowExtractor
from kinsight_wire import EV_DURATION_DS, EV_RISE_DS, EV_TYPE, EV_VOLUME_ML
from presence import PresenceExtractor
from pressure import PressureExtractor
from rawfile import feed


class Sink:
    def __init__(self, name):
        self.name = name

    def event(self, start_ms, ev):
        print(json.dumps({"sensor": self.name, "start_ms": start_ms, "type": ev[EV_TYPE],  # noqa: T201
                          "duration_ds": ev.get(EV_DURATION_DS), "volume_ml": ev.get(EV_VOLUME_ML),
                          "rise_ds": ev.get(EV_RISE_DS)}))

    def urgent(self, start_ms, ev):
        self.event(start_ms, ev)


def main():
    feed(sys.argv[1], 2, 100, PressureExtractor(Sink("seat"), sample_ms=100), int)
    feed(sys.argv[2], 4, 250, FlowExtractor(Sink("tap"), sample_ms=250), int)
    feed(sys.argv[3], 1, 250, PresenceExtractor(Sink("toilet")), bool)
    print(json.dumps({"done": True}))  # noqa: T201


main()
