# A sensor node for the demo, run under the MicroPython unix port.
#
#   micropython tools/demo_node.py HOST PORT NODE_ID KEY_HEX FLASH_DIR ROLE SEED LOSS
#
# It lives through a simulated day of one sensor role with the real firmware
# modules (CBOR, framing, fragmenting, the boot counter kept in FLASH_DIR) and
# sends its frames over UDP to a Kinsight host, keeping each one until the host
# acks it and sending again what was not acked. LOSS is the share of datagrams
# the simulated radio link drops on the way out. Half way through the day the
# node "reboots": a new boot count, sequence numbers from 0, unacked frames kept.
# The last line printed is a JSON summary for the host side of the demo.

import json
import random
import socket
import sys

from framing import FrameBuilder, FrameError, Signer, frame_seq, parse_ack
from kinsight_wire import (
    ET_DRAW,
    ET_PROLONGED_PRESENCE,
    ET_SIT,
    ET_VISIT,
    EV_AGO_DS,
    EV_DURATION_DS,
    EV_PEAK_FLOW_ML_MIN,
    EV_RESTLESS,
    EV_RISE_DS,
    EV_ROLE,
    EV_TYPE,
    EV_VOLUME_ML,
    RESET_POWER_ON,
    RESET_SOFT,
    ROLE_SEAT,
    ROLE_TAP,
    ROLE_TOILET,
    SM_AGO_S,
    SM_EPISODES,
    SM_OCCUPIED_DS,
    SM_PERIOD_S,
    SM_ROLE,
    SM_VOLUME_ML,
    ST_ACKED,
    ST_DROPPED,
    ST_FIRMWARE,
    ST_FREE_HEAP,
    ST_QUEUE_DEPTH,
    ST_RESET_CAUSE,
    ST_SENT,
    ST_UPTIME_S,
)
from sequence import SequenceCounter

DAY_START_S = 1790035200  # a Sunday, 00:00 UTC
_ROLES = {"seat": ROLE_SEAT, "tap": ROLE_TAP, "toilet": ROLE_TOILET}
_ACK_WAIT_S = 0.05
_MAX_ROUNDS = 400


class Link:
    """UDP to the host, with a simulated lossy radio on the way out."""

    def __init__(self, host, port, loss):
        self.addr = socket.getaddrinfo(host, port)[0][-1]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(_ACK_WAIT_S)
        self.loss = loss
        self.datagrams = 0
        self.dropped = 0

    def send(self, frame):
        self.datagrams += 1
        if random.random() < self.loss:
            self.dropped += 1
            return
        self.sock.sendto(frame, self.addr)

    def receive(self):
        try:
            return self.sock.recv(512)
        except OSError:
            return None


class Node:
    def __init__(self, node_id, key, flash, role, link):
        self.node_id = node_id
        self.signer = Signer(key)
        self.flash = flash
        self.role = role
        self.link = link
        self.outbox = []  # [(boot, seq, frame)], oldest first, kept until acked
        self.acked = 0
        self.resent = 0
        self.boots = []
        self.events = 0
        self.summaries = 0
        self.clock_offset_s = 0
        self.boot(RESET_POWER_ON)

    def boot(self, reset_cause):
        self.counter = SequenceCounter(self.flash + "/boot")
        self.builder = FrameBuilder(self.signer, self.node_id, self.counter)
        self.boots.append(self.counter.boot)
        self.reset_cause = reset_cause
        self.uptime_from_s = None

    def queue(self, frames):
        for frame in frames:
            self.outbox.append((self.counter.boot, frame_seq(frame), frame))

    def send_events(self, events, now_s):
        self.events += len(events)
        self.queue(self.builder.events(events, now_s))

    def send_summary(self, summary, now_s):
        self.send_summaries([summary], now_s)

    def send_summaries(self, summaries, now_s):
        self.summaries += len(summaries)
        self.queue(self.builder.summaries(summaries, now_s))

    def send_status(self, now_s):
        if self.uptime_from_s is None:
            self.uptime_from_s = now_s
        self.queue(self.builder.status({
            ST_FIRMWARE: "demo-0.1",
            ST_UPTIME_S: now_s - self.uptime_from_s,
            ST_RESET_CAUSE: self.reset_cause,
            ST_FREE_HEAP: 90000,
            ST_QUEUE_DEPTH: len(self.outbox),
            ST_SENT: self.link.datagrams,
            ST_ACKED: self.acked,
            ST_DROPPED: 0,
        }, now_s))

    def flush(self):
        """Send everything unacked, wait for acks, repeat until the outbox is empty."""
        first = True
        for _ in range(_MAX_ROUNDS):
            if not self.outbox:
                return True
            if not first:
                self.resent += len(self.outbox)
            first = False
            for _boot, _seq, frame in self.outbox:
                self.link.send(frame)
            self.drain_acks()
        return not self.outbox

    def drain_acks(self):
        while True:
            raw = self.link.receive()
            if raw is None:
                return
            try:
                boot, seq, contiguous, host_time_s = parse_ack(self.signer, raw, self.node_id)
            except FrameError as err:
                print("ignored a bad ack:", err)
                continue
            self.clock_offset_s = host_time_s
            kept = []
            for item in self.outbox:
                b, s = item[0], item[1]
                if b == boot and (s == seq or (contiguous is not None and s <= contiguous)):
                    self.acked += 1
                else:
                    kept.append(item)
            self.outbox = kept


def seat_day():
    t = DAY_START_S + 7 * 3600
    batch = []
    for _ in range(9):
        sit_ds = random.randint(6000, 30000)
        rise_ds = random.randint(18, 45)
        t += random.randint(1200, 3600)
        end = t + sit_ds // 10
        batch.append({EV_TYPE: ET_SIT, EV_ROLE: ROLE_SEAT, EV_AGO_DS: 0,
                      EV_DURATION_DS: sit_ds, EV_RISE_DS: rise_ds,
                      EV_RESTLESS: random.randint(0, 12), "_at": t})
        t = end
    return batch, t


def tap_day():
    t = DAY_START_S + 6 * 3600
    batch = []
    for _ in range(40):
        t += random.randint(600, 1500)
        batch.append({EV_TYPE: ET_DRAW, EV_ROLE: ROLE_TAP, EV_AGO_DS: 0,
                      EV_DURATION_DS: random.randint(30, 200),
                      EV_VOLUME_ML: random.randint(100, 600),
                      EV_PEAK_FLOW_ML_MIN: random.randint(3000, 9000), "_at": t})
    return batch, t


def toilet_day():
    t = DAY_START_S + 5 * 3600
    batch = []
    for _ in range(8):
        t += random.randint(3600, 7200)
        batch.append({EV_TYPE: ET_VISIT, EV_ROLE: ROLE_TOILET, EV_AGO_DS: 0,
                      EV_DURATION_DS: random.randint(900, 4200), "_at": t})
    batch.append({EV_TYPE: ET_PROLONGED_PRESENCE, EV_ROLE: ROLE_TOILET, EV_AGO_DS: 0,
                  EV_DURATION_DS: 18000, "_at": t + 3600})
    return batch, t + 3600


def reboot_midday(node, now_s):
    node.flush()
    node.boot(RESET_SOFT)
    node.send_status(now_s)


def send_in_frames(node, events, per_frame):
    """Events go out in small batches as they close; the tap node holds half a day
    back, as after a long outage, so its batch is fragmented. The node reboots
    half way through the day."""
    pending = []
    for i, event in enumerate(events):
        at = event.pop("_at")
        pending.append((at, event))
        if len(pending) >= per_frame:
            flush_events(node, pending)
            pending = []
        if i == len(events) // 2:
            if pending:
                flush_events(node, pending)
                pending = []
            reboot_midday(node, at + 1)
    if pending:
        flush_events(node, pending)


def flush_events(node, pending):
    now_s = pending[-1][0] + 5
    for at, event in pending:
        event[EV_AGO_DS] = (now_s - at) * 10
    node.send_events([e for _, e in pending], now_s)
    node.flush()


def main():
    host, port, node_id, key_hex, flash, role, seed, loss = sys.argv[1:9]
    random.seed(int(seed))
    try:
        import os

        os.mkdir(flash)
    except OSError:
        pass
    link = Link(host, int(port), float(loss))
    from binascii import unhexlify

    node = Node(int(node_id), unhexlify(key_hex), flash, _ROLES[role], link)
    node.send_status(DAY_START_S)
    node.flush()
    day = {"seat": seat_day, "tap": tap_day, "toilet": toilet_day}[role]
    events, end_s = day()
    per_frame = 20 if role == "tap" else 3
    send_in_frames(node, events, per_frame)
    for quarter in range(4):
        summary = {SM_ROLE: _ROLES[role], SM_AGO_S: 900 * (3 - quarter), SM_PERIOD_S: 900,
                   SM_EPISODES: random.randint(0, 3)}
        if role == "tap":
            summary[SM_VOLUME_ML] = random.randint(0, 900)
        else:
            summary[SM_OCCUPIED_DS] = random.randint(0, 9000)
        node.send_summary(summary, end_s)
    node.send_status(end_s)
    complete = node.flush()
    print(json.dumps({"node": node.node_id, "role": role, "events": node.events,
                      "boots": node.boots, "datagrams": link.datagrams,
                      "dropped_by_link": link.dropped, "resent": node.resent,
                      "acked": node.acked, "unacked": len(node.outbox),
                      "complete": complete}))


if __name__ == "__main__":  # imported by resident_node.py for its Link and Node
    try:
        main()
    except FrameError as err:
        print(json.dumps({"error": str(err)}))
        sys.exit(1)
