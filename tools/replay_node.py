# A node that lives a recorded day, run under the MicroPython unix port.
#
#   micropython tools/replay_node.py ROLE SEED loopback OUT
#   micropython tools/replay_node.py ROLE SEED udp HOST PORT NODE_ID KEY_HEX FOLDER
#
# FOLDER holds the node's outbox; with loopback it is OUT + ".outbox", beside the
# frame log, so a run leaves nothing outside the folder its caller chose for OUT.
#
# ROLE is seat, bed, tap, toilet or heart_rate. The raw signal of a typical day (ADC
# counts, load-cell counts, a pulse counter, presence, a wearable's notifications
# through the fake BLE radio) comes from the trace generators with their ground truth;
# the real firmware (extractor, Node, FrameBuilder, Outbox, Forwarder) runs on a
# simulated clock, so a day takes seconds. With
# "udp" the frames go to a Kinsight host; with "loopback OUT" an in-process host
# acks them, writes them to OUT (2-byte length, frame) and the run is measured:
# heap, CPU time, bytes on the air. The last line printed is a JSON report.

import gc
import json
import sys
import time

import traces
from framing import FrameBuilder, Signer, decode_frame, encode_frame
from kinsight_wire import (
    ACK_BOOT,
    ACK_CONTIGUOUS,
    ACK_SEQ,
    ACK_TIME_S,
    H_BOOT,
    H_SEQ,
    H_TIME_S,
    KIND_ACK,
    ROLE_BED,
    ROLE_HEART_RATE,
    ROLE_SEAT,
    ROLE_TAP,
    ROLE_TOILET,
)
from node import Node, Sensor, Sink
from outbox import Outbox
from sequence import SequenceCounter
from uplink import Backoff, Forwarder

DAY_MS = 24 * 3600 * 1000
T0_S = 1790035200  # midnight UTC, the day the node replays
_STEP_MS = 1000
_HEAP_EVERY_MS = 60000  # live heap sampled once a simulated minute
_KEY = bytes(range(32))


class TraceSource:
    """Sensor.read for a trace: the next sample; after the trace, the resting value."""

    def __init__(self, gen, rest):
        self.gen = gen
        self.rest = rest
        self.truth = None
        self.samples = 0

    def read(self):
        if self.gen is not None:
            try:
                _t, value = next(self.gen)
                self.samples += 1
                self.rest = value  # after the trace, the signal stays where it ended
                return value
            except StopIteration as stop:
                self.truth = stop.value
                self.gen = None
        return self.rest


def make_sensor(role, seed, sink):
    if role == "seat":
        from pressure import PressureExtractor

        gen = traces.seat_trace(seed, episodes=10, sit_s=(600, 5400), gap_s=(900, 3600))
        extractor = PressureExtractor(sink, role=ROLE_SEAT, sample_ms=100)
        source = TraceSource(gen, 300)
        return Sensor(ROLE_SEAT, extractor, source.read, 100), source
    if role == "bed":
        from pressure import PressureExtractor, defaults_for

        gen = traces.bed_trace(seed, trips=3)
        extractor = PressureExtractor(sink, role=ROLE_BED, sample_ms=100,
                                      **defaults_for(ROLE_BED, "hx711"))
        source = TraceSource(gen, 0)
        return Sensor(ROLE_BED, extractor, source.read, 100), source
    if role == "tap":
        from flow import FlowExtractor

        gen = traces.flow_trace(seed, draws=40)
        extractor = FlowExtractor(sink, sample_ms=250)
        source = TraceSource(gen, 0)
        return Sensor(ROLE_TAP, extractor, source.read, 250), source
    if role == "toilet":
        from presence import PresenceExtractor

        gen = traces.presence_trace(seed, visits=10, dwell_s=(60, 900))
        extractor = PresenceExtractor(sink, role=ROLE_TOILET)
        source = TraceSource(gen, False)
        return Sensor(ROLE_TOILET, extractor, source.read, 250), source
    if role == "heart_rate":
        return _wearable(seed, sink)
    raise ValueError("no role %r (seat, bed, tap, toilet or heart_rate)" % (role,))


# A day with a chest strap: off the body (out of range) at night, resting at 58 bpm
# with walks (the node's stairs say moving) and dropouts, a strap off for a while.
HR_REST_BPM = 58
HR_DAY = (
    ("dropout", 7 * 3600, 0), ("rest", 7200, 58), ("exercise", 1800, 105),
    ("recover", 600, 58), ("rest", 10800, 59), ("dropout", 1200, 0), ("rest", 7200, 57),
    ("off", 600, 0), ("exercise", 1200, 110), ("recover", 600, 58), ("rest", 14400, 58),
    ("dropout", 21600, 0),
)


class WearableTrace:
    """The trace a fake radio plays; remembers whether its wearer moves now."""

    def __init__(self, seed, clock):
        self.clock = clock  # the radio's, which the replayed day moves on
        self.gen = traces.hr_trace(seed, HR_DAY)
        self.moving = False
        self.truth = {"rest_bpm": HR_REST_BPM}

    def __iter__(self):
        return self

    def __next__(self):
        t, (payload, moving) = next(self.gen)
        self.moving = moving
        return t, payload

    def is_moving(self):
        return self.moving


def _wearable(seed, sink):
    from fake_ble import FakeHeartRateLink, SteppedClock
    from heartrate import HeartRateExtractor
    from wearable import WearableSource

    clock = SteppedClock()
    trace = WearableTrace(seed, clock)
    source = WearableSource(FakeHeartRateLink(clock, trace), sleep_ms=clock.sleep_ms)
    extractor = HeartRateExtractor(sink, role=ROLE_HEART_RATE, source=source)
    extractor.mover = trace.is_moving
    return Sensor(ROLE_HEART_RATE, extractor, source.read, 1000, task=source.run), trace


class LoopbackHost:
    """The radio and a host in one: acks every frame at once and writes each frame sent,
    length first, to a file, for the benchmark to measure on the host side."""

    def __init__(self, signer, node_id, path):
        self.signer = signer
        self.node_id = node_id
        self.log = open(path, "wb")
        self.acks = []
        self.bytes_sent = 0
        self.frames_sent = 0
        self.wakes = 0
        self._awake = False
        self._seq = 0
        self._len = bytearray(2)

    def send(self, frame):
        if not self._awake:
            self.wakes += 1  # a burst of sends is one radio wake
            self._awake = True
        self.frames_sent += 1
        self.bytes_sent += len(frame)
        self._len[0] = len(frame) >> 8
        self._len[1] = len(frame) & 0xFF
        self.log.write(self._len)
        self.log.write(frame)
        _kind, header, _body = decode_frame(self.signer, frame)
        self._seq += 1
        self.acks.append(encode_frame(self.signer, KIND_ACK, self.node_id, 0, self._seq,
                                      header[H_TIME_S], {ACK_BOOT: header[H_BOOT],
                                                         ACK_SEQ: header[H_SEQ],
                                                         ACK_CONTIGUOUS: header[H_SEQ],
                                                         ACK_TIME_S: header[H_TIME_S]}))

    def receive(self):
        if self.acks:
            return self.acks.pop(0)
        self._awake = False
        return None

    def close(self):
        self.log.close()


def main():
    # What the imported modules hold (bytecode, tables), which frozen firmware keeps
    # in flash: the heap figure is what the node's work needs on top of it.
    # asyncio too: the node's loop runs under it (runtime.py), and a board has it frozen.
    import asyncio  # noqa: F401

    gc.collect()
    code_heap = gc.mem_alloc()
    role, seed, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    node_id, key = 101, _KEY
    if mode == "udp":
        import socket

        from uplink import UdpUplink

        host, port = sys.argv[4], int(sys.argv[5])
        node_id, key, folder = int(sys.argv[6]), bytes.fromhex(sys.argv[7]), sys.argv[8]
        uplink = UdpUplink(socket, host, port)
    signer = Signer(key)
    if mode != "udp":
        uplink = LoopbackHost(signer, node_id, sys.argv[4])
        folder = sys.argv[4] + ".outbox"
    _clear(folder)
    sink = Sink()
    sensor, source = make_sensor(role, seed, sink)
    outbox = Outbox(folder)
    forwarder = Forwarder(outbox, uplink, signer, node_id, backoff=Backoff(seed=seed))
    node = Node(FrameBuilder(signer, node_id, SequenceCounter(None)), outbox, forwarder,
                [sensor], sink, clock_base_s=T0_S, follow_host_clock=False)
    if sensor.task is None:
        peak, cpu_us, now = _day(node, code_heap)
    else:
        import asyncio

        peak, cpu_us, now = asyncio.run(_day_with_radio(node, code_heap, sensor, source.clock))
    node.flush_summaries(now)
    node.send_status(now)
    outbox.flush()
    deadline = time.ticks_add(time.ticks_ms(), 30000)
    while outbox.depth and time.ticks_diff(deadline, time.ticks_ms()) > 0:
        forwarder.step(now)
        now += 1000
        if mode == "udp":
            time.sleep_ms(20)
    report = {"role": role, "seed": seed, "events": node.events_sent,
              "frames": node.frames_built, "bytes": node.bytes_built, "unacked": outbox.depth,
              "peak_heap": peak, "code_heap": code_heap, "cpu_us": cpu_us, "sensor_hours": 24,
              "faults": sensor.extractor.faults, "truth": source.truth}
    if mode != "udp":
        report["bytes_sent"] = uplink.bytes_sent
        report["frames_sent"] = uplink.frames_sent
        report["radio_wakes"] = uplink.wakes
    uplink.close()
    print(json.dumps(report))


def _day(node, code_heap):
    peak = 0
    cpu_us = 0
    now = 0
    while now <= DAY_MS:
        started = time.ticks_us()
        node.step(now)
        cpu_us += time.ticks_diff(time.ticks_us(), started)
        if now % _HEAP_EVERY_MS == 0:
            peak = _peak(peak, code_heap)
        now += _STEP_MS
    return peak, cpu_us, now


async def _day_with_radio(node, code_heap, sensor, clock):
    """The day with the sensor's radio task beside the loop, as runtime.run has it; its
    time (the radio's work on the node) counts too."""
    import asyncio

    task = asyncio.create_task(sensor.task())
    peak = 0
    cpu_us = 0
    now = 0
    while now <= DAY_MS:
        started = time.ticks_us()
        clock.now_ms = now
        node.step(now)
        await asyncio.sleep_ms(0)
        cpu_us += time.ticks_diff(time.ticks_us(), started)
        if now % _HEAP_EVERY_MS == 0:
            peak = _peak(peak, code_heap)
        now += _STEP_MS
    task.cancel()
    return peak, cpu_us, now


def _peak(peak, code_heap):
    gc.collect()
    used = gc.mem_alloc() - code_heap
    return used if used > peak else peak


def _clear(folder):
    import os

    try:
        for name in os.listdir(folder):
            os.remove(folder + "/" + name)
    except OSError:
        os.mkdir(folder)


main()
