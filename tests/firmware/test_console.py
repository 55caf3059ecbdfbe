"""The console log under MicroPython: its lines, its rate limit, and what the loop's
watch says of a real node (a real outbox, forwarder and pressure extractor, an uplink
that answers or stays silent)."""

import gc
import io
import time

from console import Log, Watch, boot
from kinsight_wire import RESET_HARD, ROLE_SEAT
from runner import eq
from tempdir import TempDir

NODE = 7
KEY = bytes(range(32))
TICKS_PERIOD = time.ticks_add(0, -1) + 1  # ticks_ms() wraps here (2^30 on an ESP32)


class Clock:
    def __init__(self, start=0):
        self.t = start

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t = (self.t + ms) % TICKS_PERIOD


def _log(start=0, **kw):
    clock = Clock(start)
    out = io.StringIO()
    return Log(out, clock, **kw), clock, out


def _lines(out):
    return [line for line in out.getvalue().split("\n") if line]


def test_a_line_has_uptime_level_tag_and_message():
    log, clock, out = _log()
    clock.advance(12345)
    eq(log.info("uplink", "host answers: %d frames acked", (3,)), True)
    log.warn("seat", "sensor fault")
    clock.advance(60000)
    log.error("config", "a %s message is printed as it is", None)
    eq(_lines(out), ["[12.3][I][uplink] host answers: 3 frames acked",
                     "[12.3][W][seat] sensor fault",
                     "[72.3][E][config] a %s message is printed as it is"])


def test_uptime_counts_on_across_the_ticks_wrap():
    log, clock, out = _log(start=TICKS_PERIOD - 500)
    clock.advance(1200)  # ticks_ms() went past its period back to 700
    log.info("node", "up")
    eq(_lines(out), ["[1.2][I][node] up"])


def test_a_burst_then_one_line_per_refill_and_the_held_back_are_said():
    log, clock, out = _log(burst=3, refill_ms=1000)
    said = [log.info("t", "line %d", (i,)) for i in range(5)]
    eq(said, [True, True, True, False, False])
    # Held back lines are not even formatted: a bad argument costs nothing.
    eq(log.info("t", "%d", ("not a number",)), False)
    clock.advance(999)
    eq(log.info("t", "still too soon"), False)
    clock.advance(1)
    eq(log.info("t", "after a refill"), True)
    eq(_lines(out)[3:], ["[1.0][W][log] 4 lines held back (rate limit)",
                         "[1.0][I][t] after a refill"])
    clock.advance(3600 * 1000)  # a quiet hour refills the burst, no more
    eq([log.info("t", "x") for _ in range(4)], [True, True, True, False])


class Uplink:
    """The host, in memory: what it got, and acks for it when it answers."""

    def __init__(self):
        self.answers = True
        self.got = []
        self.replies = []
        self.reconnects = 0
        self.signer = None

    def send(self, frame):
        self.got.append(frame)

    def receive(self):
        return self.replies.pop(0) if self.replies else None

    def ack(self, boot, seq, host_seq):
        from framing import encode_frame
        from kinsight_wire import ACK_BOOT, ACK_CONTIGUOUS, ACK_SEQ, ACK_TIME_S, KIND_ACK

        body = {ACK_BOOT: boot, ACK_SEQ: seq, ACK_CONTIGUOUS: seq, ACK_TIME_S: 1790000000}
        self.replies.append(encode_frame(self.signer, KIND_ACK, NODE, 1, host_seq, 1790000000,
                                         body))


def _node(folder, uplink, read):
    # Imported here: the log's own tests need none of the node, on a board-sized heap.
    from framing import FrameBuilder, Signer
    from node import Node, Sensor, Sink
    from outbox import Outbox
    from pressure import PressureExtractor
    from sequence import SequenceCounter
    from uplink import Backoff, Forwarder

    gc.collect()  # the imports' garbage out of the way of the node's buffers
    signer = Signer(KEY)
    uplink.signer = signer
    counter = SequenceCounter(None)
    outbox = Outbox(folder + "/outbox", max_frames=64, segment_frames=8, flush_every=4)
    forwarder = Forwarder(outbox, uplink, signer, NODE, backoff=Backoff(seed=1),
                          boot=counter.boot)
    sink = Sink()
    extractor = PressureExtractor(sink, role=ROLE_SEAT, sample_ms=100)
    node = Node(FrameBuilder(signer, NODE, counter, 250), outbox, forwarder,
                [Sensor(ROLE_SEAT, extractor, read, 100)], sink, status_s=300)
    return node


def _run(node, watch, uplink, start_ms, end_ms):
    for now in range(start_ms, end_ms, 100):
        node.step(now)
        if uplink.answers and node._last_pushed is not None:
            boot, seq = node._last_pushed
            uplink.ack(boot, seq, now // 100 + 1)
        watch.step(now)


def test_the_watch_says_the_uplink_faults_events_and_a_summary():
    level = [300]
    with TempDir() as folder:
        uplink = Uplink()
        node = _node(folder, uplink, lambda: level[0])
        log, clock, out = _log(burst=50)
        watch = Watch(log, node)
        _run(node, watch, uplink, 0, 9000)
        eq([line[line.index("]") + 1:] for line in _lines(out)],
           ["[I][uplink] host answers: 1 frames acked"], "first ack, then quiet")
        uplink.answers = False
        node.send_status(9000)  # a frame the host never acks
        level[0] = 2000  # someone sits down for 15 s...
        _run(node, watch, uplink, 9000, 24000)
        level[0] = 300  # ...and gets up
        _run(node, watch, uplink, 24000, 45000)
        uplink.reconnects = 2
        level[0] = 0  # the divider's wire comes off: the ADC reads its rail
        _run(node, watch, uplink, 45000, 80000)
        said = [line[line.index("]") + 1:] for line in _lines(out)]
        summary = said[1].split(", ")
        eq(summary[:3], ["[I][node] up 10 s", "boot 1", "queue 1"], "the first summary, at 10 s")
        eq(int(summary[3].split()[1]) >= 2, True, "the first status, sent again: " + said[1])
        eq(summary[4:6], ["acked 1", "events 0"], said[1])
        eq(summary[6].startswith("free heap "), True)
        eq("[I][event] seat sit" in said, True, "the sit: %r" % said)
        eq("[W][uplink] no ack for 30 s: 1 frames waiting, 0 send errors" in said, True,
           "the uplink went down: %r" % said)
        eq("[W][uplink] connection made again (2 so far)" in said, True)
        eq("[W][seat] sensor fault (1 so far): check its wiring" in said, True)
        eq(said.count("[W][uplink] no ack for 30 s: 1 frames waiting, 0 send errors"), 1,
           "said once, not every second")
        uplink.answers = True
        _run(node, watch, uplink, 80000, 90000)
        eq(_lines(out)[-1].endswith("[I][uplink] host answers: 2 frames acked"), True,
           "back up: %r" % _lines(out)[-1])


def test_the_boot_summary_says_the_node_safe_mode_and_the_last_crash():
    log, clock, out = _log()
    cfg = {"node_id": 12, "board": {"name": "esp32-devkitc"},
           "roles": [{"role": "seat", "sensor": "fsr"}, {"role": "tap", "sensor": "flow"}],
           "uplink": {"type": "udp", "host": "192.168.1.10", "port": 5683}}
    crash = {"time_s": 1, "reset_cause": "power_on", "what": "MemoryError: out",
             "trace": 'File "sensors.py", line 30'}
    boot(log, cfg, "0.2.0", RESET_HARD, 41, True, 4, [crash, crash])
    eq(_lines(out), [
        "[0.0][I][boot] Kinsight 0.2.0, node 12 on esp32-devkitc, reset hard, boot 41",
        "[0.0][I][boot] roles seat (fsr), tap (flow); uplink udp 192.168.1.10:5683",
        "[0.0][W][boot] safe mode after 3 failed boots: status only, sensors off",
        '[0.0][W][crash] last of 2: MemoryError: out (File "sensors.py", line 30, after a '
        "power_on reset)"])
