# A resident's three sensor nodes (seat, tap, toilet) for `kinsight demo`, run under
# the MicroPython unix port.
#
#   micropython tools/resident_node.py CONFIG_JSON
#
# CONFIG_JSON holds {"host", "port", "loss", "seed", "nodes": [[ROLE, NODE_ID, KEY_HEX,
# FLASH], ...], "days": [[T0_S, PREFIX], ...]} (a file: this port's argv items must be
# short). ROLE is seat, tap or toilet. The raw signals of a simulated window starting
# at UTC second T0_S are in PREFIX.seat (uint16 LE ADC counts every 100 ms), PREFIX.tap
# (uint32 LE pulse counts every 250 ms) and PREFIX.toilet (one byte 0/1 every 250 ms).
# The real extractors find the events in them; the nodes frame them with the
# firmware's FrameBuilder and send them over UDP through a lossy link, keeping each
# frame until the host acks it (demo_node's Link and Node). The last line printed is a
# JSON report: per node, events sent, datagrams, dropped, resent and whether all were acked.

import gc
import json
import random
import sys
from binascii import unhexlify

from demo_node import Link, Node
from flow import FlowExtractor
from kinsight_wire import EV_AGO_DS, EV_DURATION_DS, EV_ROLE, ROLE_SEAT, ROLE_TAP, ROLE_TOILET
from presence import PresenceExtractor
from pressure import PressureExtractor
from rawfile import feed

_ROLES = {"seat": ROLE_SEAT, "tap": ROLE_TAP, "toilet": ROLE_TOILET}
_PER_FRAME = 5


class Collect:
    def __init__(self):
        self.events = []  # (start_ms from the window's start, event)

    def event(self, start_ms, ev):
        self.events.append((start_ms, ev))

    def urgent(self, start_ms, ev):
        self.events.append((start_ms, ev))


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
            events = extract(role, prefix)
            found[role] = found.get(role, 0) + len(events)
            send_day(node, role, t0_s, events)
        end_s = t0_s + 86400
    report = []
    for role, node in nodes.items():
        node.send_status(end_s)
        complete = node.flush()
        report.append({"node": node.node_id, "role": role, "events": node.events,
                       "found": found.get(role, 0), "resent": node.resent,
                       "unacked": len(node.outbox), "complete": complete})
    print(json.dumps({"nodes": report, "datagrams": sum(x.datagrams for x in links),
                      "dropped_by_link": sum(x.dropped for x in links)}))


main()
