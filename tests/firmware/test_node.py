"""Node: what it frames and when, under MicroPython, with a scripted extractor."""

from framing import FrameBuilder, Signer, decode_frame
from kinsight_wire import (
    B_EVENTS,
    B_SUMMARIES,
    ET_PROLONGED_PRESENCE,
    ET_VISIT,
    EV_AGO_DS,
    EV_DURATION_DS,
    EV_ROLE,
    EV_TYPE,
    H_BOOT,
    H_SEQ,
    H_TIME_S,
    KIND_EVENTS,
    KIND_FRAGMENT,
    KIND_STATUS,
    KIND_SUMMARY,
    ROLE_TOILET,
    SM_AGO_S,
    SM_EPISODES,
    SM_PERIOD_S,
    SM_ROLE,
    ST_CONFIG_ERROR,
    ST_DROPPED,
    ST_QUEUE_DEPTH,
    ST_SAFE_MODE,
)
from node import Node, Sensor, Sink
from runner import eq
from sequence import SequenceCounter

KEY = bytes(range(32))
SIGNER = Signer(KEY)
BASE_S = 1790000000


class ScriptedExtractor:
    """Emits the events of a script at their times: start_ms, duration_ms, urgent."""

    def __init__(self, sink, script):
        self.sink = sink
        self.script = list(script)
        self.fed = 0
        self.last_summary_ms = 0

    def feed(self, t_ms, value):
        self.fed += 1
        while self.script and self.script[0][0] + self.script[0][1] <= t_ms:
            start_ms, duration_ms, urgent = self.script.pop(0)
            ev = {EV_TYPE: ET_PROLONGED_PRESENCE if urgent else ET_VISIT, EV_ROLE: ROLE_TOILET,
                  EV_DURATION_DS: duration_ms // 100}
            (self.sink.urgent if urgent else self.sink.event)(start_ms, ev)

    def summary(self, now_ms):
        period_s = (now_ms - self.last_summary_ms) // 1000
        self.last_summary_ms = now_ms
        return {SM_ROLE: ROLE_TOILET, SM_PERIOD_S: period_s, SM_EPISODES: 1}


class ListOutbox:
    buffered = 0  # frames are on "flash" the moment they are pushed

    def __init__(self):
        self.frames = []
        self.flushes = 0
        self.dropped = 2

    @property
    def depth(self):
        return len(self.frames)

    def push(self, boot, seq, frame):
        header = decode_frame(SIGNER, frame)[1]
        eq((header[H_BOOT], header[H_SEQ]), (boot, seq), "boot and seq given to push")
        self.frames.append(frame)

    def flush(self):
        self.flushes += 1


def make(script, **kw):
    sink = Sink()
    extractor = ScriptedExtractor(sink, script)
    outbox = ListOutbox()
    builder = FrameBuilder(SIGNER, 7, SequenceCounter(None))
    settings = {"summary_s": 900, "summary_batch": 2, "event_wait_s": 600, "status_s": 3600}
    settings.update(kw)
    node = Node(builder, outbox, None, [Sensor(ROLE_TOILET, extractor, lambda: 0, 100)], sink,
                clock_base_s=BASE_S, **settings)
    return node, outbox, extractor


def decoded(outbox):
    return [decode_frame(SIGNER, f) for f in outbox.frames]


def test_samples_at_the_sensor_rate_whatever_the_step():
    node, _, extractor = make([])
    for now in (0, 50, 1000, 1001, 60000):
        node.step(now)
    eq(extractor.fed, 601)  # samples at 0, 100, ..., 60000 ms


def test_status_first_then_events_in_batches_with_their_age():
    script = [(10000 * i, 2000, False) for i in range(1, 9)]
    node, outbox, _ = make(script)
    for now in range(0, 100001, 500):
        node.step(now)
    frames = decoded(outbox)
    eq([k for k, _, _ in frames], [KIND_STATUS, KIND_EVENTS])
    kind, header, body = frames[1]
    events = body[B_EVENTS]
    eq(len(events), 8)
    sent_s = header[H_TIME_S]
    for i, ev in enumerate(events):
        start_s = BASE_S + 10 * (i + 1)
        eq(sent_s * 10 - ev[EV_AGO_DS], start_s * 10, "start of event %d" % i)
    eq(node.events_sent, 8)


def test_an_urgent_event_leaves_at_once_and_is_flushed():
    node, outbox, _ = make([(5000, 30000, True)])
    for now in range(0, 40001, 100):
        node.step(now)
        if outbox.flushes:
            break
    eq(now, 35000)
    kind, _, body = decoded(outbox)[-1]
    eq((kind, body[B_EVENTS][0][EV_TYPE]), (KIND_EVENTS, ET_PROLONGED_PRESENCE))


def test_a_lone_event_waits_ten_minutes_at_most():
    node, outbox, _ = make([(1000, 1000, False)])
    for now in range(0, 700001, 1000):
        node.step(now)
    kinds = [k for k, _, _ in decoded(outbox)]
    eq(kinds.count(KIND_EVENTS), 1)


def test_summaries_every_interval_sent_in_batches():
    node, outbox, _ = make([])
    for now in range(0, 3600001, 10000):
        node.step(now)
    frames = [b[B_SUMMARIES] for k, _, b in decoded(outbox) if k == KIND_SUMMARY]
    eq(len(frames), 2)  # two intervals to a frame
    eq([[(s[SM_PERIOD_S], s[SM_AGO_S]) for s in f] for f in frames],
       [[(900, 900), (900, 0)]] * 2)
    node.step(4500000)
    node.flush_summaries(4600000)
    frames = [b[B_SUMMARIES] for k, _, b in decoded(outbox) if k == KIND_SUMMARY]
    eq([(s[SM_PERIOD_S], s[SM_AGO_S]) for s in frames[-1]], [(900, 100)])


def test_status_reports_config_errors_and_safe_mode_without_sampling():
    long_error = "roles[0].pin: 99 is not a GPIO of esp32-devkitc; " + "é" * 40
    node, outbox, extractor = make([], config_error=long_error, safe_mode=True)
    for now in range(0, 7200001, 60000):
        node.step(now)
    statuses = [b for k, _, b in decoded(outbox) if k == KIND_STATUS]
    eq(len(statuses), 3)
    eq(extractor.fed, 0)
    eq(statuses[0][ST_SAFE_MODE], 1)
    text = statuses[0][ST_CONFIG_ERROR]
    eq(text.startswith("roles[0].pin: 99"), True)
    eq(len(text.encode()) <= 64, True)
    eq(statuses[0][ST_DROPPED], 2)
    eq(statuses[1][ST_QUEUE_DEPTH], 1)


def test_the_clock_follows_the_host():
    node, _, _ = make([])
    node.set_clock(BASE_S + 3600, 10000)
    eq(node.unix_s(10000), BASE_S + 3600)
    eq(node.unix_s(70000), BASE_S + 3660)


def test_fragments_are_queued_with_their_own_sequence_numbers():
    sink = Sink()
    extractor = ScriptedExtractor(sink, [(1000 * i, 500, False) for i in range(1, 9)])
    outbox = ListOutbox()
    builder = FrameBuilder(SIGNER, 7, SequenceCounter(None), 100)  # a small MTU
    node = Node(builder, outbox, None, [Sensor(ROLE_TOILET, extractor, lambda: 0, 100)], sink,
                clock_base_s=BASE_S)
    for now in range(0, 20001, 100):
        node.step(now)
    kinds = [k for k, _, _ in decoded(outbox)]
    eq(kinds[0], KIND_STATUS)
    eq(len(kinds) > 3, True)  # the batch of 8 events went out in pieces
    eq(set(kinds[1:]), {KIND_FRAGMENT})
