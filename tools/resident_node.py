# A resident's sensor nodes (seat, tap, toilet, and heart_rate for a wearable) for
# `kinsight demo`, run under the MicroPython unix port.
#
#   micropython tools/resident_node.py CONFIG_JSON
#
# CONFIG_JSON holds {"host", "port", "loss", "seed", "nodes": [[ROLE, NODE_ID, KEY_HEX,
# FLASH], ...], "days": [[T0_S, PREFIX], ...]} (a file: this port's argv items must be
# short). ROLE is seat, tap, toilet or heart_rate. The raw signals of a simulated window
# starting at UTC second T0_S are in PREFIX.seat (uint16 LE ADC counts every 100 ms),
# PREFIX.tap (uint32 LE pulse counts every 250 ms), PREFIX.toilet (one byte 0/1 every
# 250 ms) and PREFIX.heart_rate (one byte, the wearable's bpm, every second; 0: nothing
# received). The real extractors find the events in them, and the heart rate
# extractor closes an interval summary every 15 minutes, as the node's loop has it;
# the nodes frame them with the firmware's FrameBuilder and send them over UDP through
# a lossy link, keeping each frame until the host acks it (demo_node's Link and Node).
# The last line printed is a JSON report: per node, events and summaries sent,
# datagrams, dropped, resent and whether all were acked.

import gc
import json
import random
import sys
from binascii import unhexlify

from demo_node import Link, Node
from flow import FlowExtractor
from kinsight_wire import (
    EV_AGO_DS,
    EV_DURATION_DS,
    EV_ROLE,
    ROLE_HEART_RATE,
    ROLE_SEAT,
    ROLE_TAP,
    ROLE_TOILET,
    SM_AGO_S,
)
from presence import PresenceExtractor
from pressure import PressureExtractor
from rawfile import feed

_ROLES = {"seat": ROLE_SEAT, "tap": ROLE_TAP, "toilet": ROLE_TOILET,
          "heart_rate": ROLE_HEART_RATE}
_PER_FRAME = 5
_SUMMARY_MS = 900000  # the node's summary_s
_SUMMARY_BATCH = 8  # and its summary_batch: intervals to a frame


class Collect:
    def __init__(self):
        self.events = []  # (start_ms from the window's start, event)

    def event(self, start_ms, ev):
        self.events.append((start_ms, ev))

    def urgent(self, start_ms, ev):
        self.events.append((start_ms, ev))


class Intervals:
    """Feeds the heart rate extractor and closes its interval every _SUMMARY_MS of the
    window, as the node's loop does; every _SUMMARY_BATCH intervals go out in a frame
    a few seconds after the last one closed."""

    def __init__(self, extractor, node, t0_s):
        self.extractor = extractor
        self.node = node
        self.t0_s = t0_s
        self.next_ms = _SUMMARY_MS
        self.pending = []  # (end_ms, summary)

    def feed(self, t_ms, sample):
        while t_ms >= self.next_ms:
            self.close()
        self.extractor.feed(t_ms, sample)

    def close(self):
        self.pending.append((self.next_ms, self.extractor.summary(self.next_ms)))
        self.next_ms += _SUMMARY_MS
        if len(self.pending) >= _SUMMARY_BATCH:
            self.send()

    def send(self):
        if not self.pending:
            return
        now_s = self.t0_s + self.pending[-1][0] // 1000 + 5
        batch = []
        for end_ms, summary in self.pending:
            summary[SM_AGO_S] = now_s - self.t0_s - end_ms // 1000
            batch.append(summary)
        self.pending = []
        self.node.send_summaries(batch, now_s)
        self.node.flush()


def heart_rate_day(node, t0_s, prefix):
    """The day's heart rate through the extractor, its summaries sent as they close;
    its urgent events. Each rate goes through the firmware's parser as the wearable's
    notification (0x2A37: uint8 rate, skin contact), in one reused buffer and sample."""
    from heartrate import HeartRateExtractor, HrSample, parse_measurement

    buf = bytearray(b"\x06\x00")
    sample = HrSample()

    def measurement(bpm):
        if not bpm:
            return None  # nothing received: the wearable is off or out of range
        buf[1] = bpm
        return parse_measurement(buf, sample)

    gc.collect()
    sink = Collect()
    intervals = Intervals(HeartRateExtractor(sink), node, t0_s)
    end_ms = feed(prefix + ".heart_rate", 1, 1000, intervals, measurement)
    while intervals.next_ms <= end_ms:
        intervals.close()
    intervals.send()
    return sink.events


def extract(role, prefix):
    gc.collect()
    sink = Collect()
    if role == "seat":
        feed(prefix + ".seat", 2, 100, PressureExtractor(sink, sample_ms=100), int)
    elif role == "tap":
        feed(prefix + ".tap", 4, 250, FlowExtractor(sink, sample_ms=250), int)
    else:
        feed(prefix + ".toilet", 1, 250, PresenceExtractor(sink), bool)
    return sink.events


def send_day(node, role, t0_s, events):
    """Events go out in small batches, each framed a few seconds after its last one
    closed; ages count back from the frame's whole-second timestamp."""
    for at in range(0, len(events), _PER_FRAME):
        part = events[at:at + _PER_FRAME]
        last_ms, last = part[-1]
        now_s = t0_s + (last_ms + last.get(EV_DURATION_DS, 0) * 100) // 1000 + 5
        batch = []
        for start_ms, ev in part:
            ev[EV_ROLE] = ev.get(EV_ROLE, _ROLES[role])
            ev[EV_AGO_DS] = ((now_s - t0_s) * 1000 - start_ms) // 100
            batch.append(ev)
        node.send_events(batch, now_s)
        node.flush()


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    random.seed(cfg["seed"])
    nodes = {}
    links = []
    for role, node_id, key_hex, flash in cfg["nodes"]:
        try:
            import os

            os.mkdir(flash)
        except OSError:
            pass
        link = Link(cfg["host"], cfg["port"], cfg["loss"])  # a socket each: acks come back
        links.append(link)
        nodes[role] = Node(node_id, unhexlify(key_hex), flash, _ROLES[role], link)
    days = cfg["days"]
    first_s = days[0][0]
    for node in nodes.values():
        node.send_status(first_s)
        node.flush()
    found = {}
    end_s = first_s
    for t0_s, prefix in days:
        for role, node in nodes.items():
            if role == "heart_rate":
                events = heart_rate_day(node, t0_s, prefix)
            else:
                events = extract(role, prefix)
            found[role] = found.get(role, 0) + len(events)
            send_day(node, role, t0_s, events)
        end_s = t0_s + 86400
    report = []
    for role, node in nodes.items():
        node.send_status(end_s)
        complete = node.flush()
        report.append({"node": node.node_id, "role": role, "events": node.events,
                       "summaries": node.summaries,
                       "found": found.get(role, 0), "resent": node.resent,
                       "unacked": len(node.outbox), "complete": complete})
    print(json.dumps({"nodes": report, "datagrams": sum(x.datagrams for x in links),
                      "dropped_by_link": sum(x.dropped for x in links)}))


main()
