"""A sensor node's work, one step at a time: sample, extract, frame, queue, forward.

``Node`` is pure code driven by ``step(now_ms)`` with milliseconds since start,
so the same loop runs on an ESP32 (``run`` below, under asyncio, with the
hardware from hal) and on the unix port in the tests and benchmarks, where a
simulated clock replays a recorded day in seconds.

Radio time is battery and a node's budget is 4 KB a day, so frames are kept
full: events leave when a batch of 8 is ready or the oldest has waited
``event_wait_s`` (30 minutes by default); urgent ones (a possible fall, a leak,
sitting far too long) are framed and pushed to the queue the moment they are
known. Every ``summary_s`` (15 minutes) each sensor closes its interval; the
intervals leave together, ``summary_batch`` (8) of them to a frame. Every
``status_s`` (3 hours) the node sends its diagnostics.

With a ``journal`` (see journal.py) every event and closed interval is on flash
as soon as it is known, not only once it is framed, and the outbox is flushed
at least every ``flush_s`` seconds: a reset or a power cut costs at most the last
few seconds. ``journal.recover_node`` frames, at the next start, what the last
one left.
"""

from micropython import const

from kinsight_wire import (
    EV_AGO_DS,
    MAX_LIST_ITEMS,
    SM_AGO_S,
    ST_ACKED,
    ST_BUNDLE,
    ST_BUNDLE_FAILED,
    ST_CONFIG_ERROR,
    ST_CRASH_CAUSE,
    ST_CRASH_TIME_S,
    ST_CRASH_WHAT,
    ST_CRASHES,
    ST_DROPPED,
    ST_FIRMWARE,
    ST_FREE_HEAP,
    ST_LARGEST_BLOCK,
    ST_QUEUE_DEPTH,
    ST_RESET_CAUSE,
    ST_RSSI_DBM,
    ST_SAFE_MODE,
    ST_SENT,
    ST_UPTIME_S,
)

FIRMWARE_VERSION = "0.2.0"
# The journal's files (journal.py), one per kind of item waiting to be framed.
EVENTS = "events"
SUMMARIES = "summaries"
KINDS = (EVENTS, SUMMARIES)
_EVENT_BATCH = const(8)  # events per frame: a batch of 8 fits one 250-byte frame
_MAX_TEXT = const(64)


class Sink:
    """Where extractors put what they noticed, until the node frames it."""

    def __init__(self, capacity=MAX_LIST_ITEMS):
        self.capacity = capacity
        self.events = []  # (start_ms, event dict)
        self.urgent_events = []
        self.overflow = 0

    def event(self, start_ms, ev):
        if len(self.events) >= self.capacity:
            self.overflow += 1  # the node frames long before this; counted, not silent
            return
        self.events.append((start_ms, ev))

    def urgent(self, start_ms, ev):
        self.urgent_events.append((start_ms, ev))


class Sensor:
    """One configured sensor: where its samples come from and what extracts its events."""

    def __init__(self, role, extractor, read, sample_ms, task=None):
        self.role = role
        self.extractor = extractor
        self.read = read  # () -> the raw sample the extractor's feed() takes
        self.sample_ms = sample_ms
        self.next_ms = 0
        self.task = task  # a coroutine function runtime runs beside the loop (a radio link)


class Node:
    def __init__(self, builder, outbox, forwarder, sensors, sink, summary_s=900,
                 summary_batch=8, event_wait_s=1800, status_s=10800, clock_base_s=0,
                 reset_cause=0, config_error=None, safe_mode=False, diagnostics=None,
                 follow_host_clock=True, journal=None, flush_s=5, updater=None,
                 crash_report=None, crash_reported=None):
        self.builder = builder
        self.outbox = outbox
        self.forwarder = forwarder
        self.sensors = sensors
        self.sink = sink
        self.summary_ms = summary_s * 1000
        self.summary_batch = summary_batch
        self.event_wait_ms = event_wait_s * 1000
        self.status_ms = status_s * 1000
        self.summaries = []  # (end_ms, summary dict) not yet framed
        self.clock_base_s = clock_base_s  # unix seconds at now_ms == 0
        self.reset_cause = reset_cause
        self.config_error = config_error
        self.safe_mode = safe_mode
        self.diagnostics = diagnostics  # () -> dict of extra ST_* values (heap, RSSI)
        # A replayed day keeps its own clock; a real node sets its clock from the host's.
        self.follow_host_clock = follow_host_clock
        self.journal = journal
        self.flush_ms = flush_s * 1000
        self.next_flush_ms = self.flush_ms
        self._noted = 0  # sink events already in the journal
        self._last_pushed = None  # (boot, seq) of the last frame queued
        self.recovered = 0  # items the last start left, framed by journal.recover_node
        self.next_summary_ms = self.summary_ms
        self.next_status_ms = 0
        self.oldest_event_ms = None
        self.frames_built = 0
        self.bytes_built = 0
        self.events_sent = 0
        self.updater = updater  # update.Updater, when the node takes updates over the air
        # (count, time_s, reset cause, what) of crashes the host has not been told of,
        # and what to call once a status frame telling of them is on flash.
        self.crash_report = crash_report
        self.crash_reported = crash_reported

    def unix_s(self, now_ms):
        return self.clock_base_s + now_ms // 1000

    def set_clock(self, host_time_s, now_ms):
        """The host's clock, from an ack: node time follows it from now on."""
        self.clock_base_s = host_time_s - now_ms // 1000

    def step(self, now_ms):
        """Do everything that is due at now_ms."""
        if not self.safe_mode:
            for sensor in self.sensors:
                feed = sensor.extractor.feed
                read = sensor.read
                t = sensor.next_ms
                step = sensor.sample_ms
                while t <= now_ms:
                    feed(t, read())
                    t += step
                sensor.next_ms = t
            self._events(now_ms)
            if now_ms >= self.next_summary_ms:
                self._summaries(now_ms)
                self.next_summary_ms += self.summary_ms
        if now_ms >= self.next_status_ms:
            self.send_status(now_ms)
            self.next_status_ms = now_ms + self.status_ms
        if self.forwarder is not None:
            self.forwarder.step(now_ms)
            if self.updater is not None:
                self.updater.step(now_ms, self)
            host_time_s = getattr(self.forwarder, "last_host_time_s", None)
            if host_time_s and self.follow_host_clock:
                self.set_clock(host_time_s, now_ms)
                self.forwarder.last_host_time_s = None
        if now_ms >= self.next_flush_ms:
            if self.outbox.buffered:
                self.outbox.flush()
            self.next_flush_ms = now_ms + self.flush_ms

    def _note(self, kind, ms, item):
        if self.journal is not None:
            self.journal.note(kind, (self.clock_base_s * 1000 + ms), item)

    def commit(self, kind):
        """The frames just queued carry every item of ``kind`` noted so far."""
        journal = self.journal
        if journal is None or self._last_pushed is None:
            return
        journal.framing(kind, self._last_pushed[0], self._last_pushed[1])
        self.outbox.flush()
        journal.framed(kind)

    def _events(self, now_ms):
        sink = self.sink
        if sink.urgent_events:
            urgent, sink.urgent_events = sink.urgent_events, []
            self._send_events(urgent, now_ms)
            self.outbox.flush()  # a possible fall must not wait for a batch
        events = sink.events
        if not events:
            self.oldest_event_ms = None
            self._noted = 0
            return
        for i in range(self._noted, len(events)):
            self._note(EVENTS, events[i][0], events[i][1])
        self._noted = len(events)
        if self.oldest_event_ms is None:
            self.oldest_event_ms = now_ms
        if len(events) >= _EVENT_BATCH or now_ms - self.oldest_event_ms >= self.event_wait_ms:
            sink.events = []
            self.oldest_event_ms = None
            self._noted = 0
            if self.journal is not None:
                self.outbox.flush()  # the batch's frames then reach flash together
            self._send_events(events, now_ms)
            self.commit(EVENTS)

    def _send_events(self, pending, now_ms):
        batch = []
        # Ages count back from the frame's own timestamp, a whole second, so the host
        # puts each start back to within a decisecond.
        frame_ms = now_ms - now_ms % 1000
        for start_ms, ev in pending:
            ago_ds = (frame_ms - start_ms) // 100
            ev[EV_AGO_DS] = ago_ds if ago_ds > 0 else 0
            batch.append(ev)
        for at in range(0, len(batch), _EVENT_BATCH):
            part = batch[at:at + _EVENT_BATCH]
            self._queue(self.builder.events, part, now_ms)
            self.events_sent += len(part)

    def _summaries(self, now_ms):
        for sensor in self.sensors:
            summary = sensor.extractor.summary(now_ms)
            self.summaries.append((now_ms, summary))
            self._note(SUMMARIES, now_ms, summary)
        if len(self.summaries) >= self.summary_batch * len(self.sensors):
            self.flush_summaries(now_ms)

    def flush_summaries(self, now_ms):
        """Frame the intervals closed so far (also before a reboot or a deep sleep)."""
        pending, self.summaries = self.summaries, []
        if not pending:
            return
        batch = []
        for end_ms, summary in pending:
            summary[SM_AGO_S] = (now_ms - end_ms) // 1000
            batch.append(summary)
        if self.journal is not None:
            self.outbox.flush()
        for at in range(0, len(batch), MAX_LIST_ITEMS):
            self._queue(self.builder.summaries, batch[at:at + MAX_LIST_ITEMS], now_ms)
        self.commit(SUMMARIES)

    def send_status(self, now_ms):
        body = {
            ST_FIRMWARE: FIRMWARE_VERSION,
            ST_UPTIME_S: now_ms // 1000,
            ST_RESET_CAUSE: self.reset_cause,
            ST_QUEUE_DEPTH: self.outbox.depth,
            ST_DROPPED: self.outbox.dropped + self.sink.overflow,
        }
        if self.forwarder is not None:
            body[ST_SENT] = self.forwarder.sent
            body[ST_ACKED] = self.forwarder.acked
        if self.config_error:
            body[ST_CONFIG_ERROR] = _clip(self.config_error)
        if self.safe_mode:
            body[ST_SAFE_MODE] = 1
        updater = self.updater
        if updater is not None:
            if updater.running:
                body[ST_BUNDLE] = updater.running
            if updater.failed:
                body[ST_BUNDLE_FAILED] = updater.failed
        crash = self.crash_report
        if crash is not None:
            body[ST_CRASHES] = crash[0]
            body[ST_CRASH_TIME_S] = crash[1]
            body[ST_CRASH_CAUSE] = crash[2]
            body[ST_CRASH_WHAT] = _clip(crash[3])
        if self.diagnostics is not None:
            for key, value in self.diagnostics().items():
                if value is not None:
                    body[key] = value
        self._queue(self.builder.status, body, now_ms)
        if crash is not None:
            self.outbox.flush()  # told once it is on flash: a reset now still sends it
            self.crash_report = None
            if self.crash_reported is not None:
                self.crash_reported()

    def update_get(self, body, now_ms):
        """Queue a request for pieces of a firmware update (update.Updater asks)."""
        self._queue(self.builder.update_get, body, now_ms)
        self.outbox.flush()

    def _queue(self, build, content, now_ms):
        counter = self.builder.counter
        first = counter.seq
        self.push(build(content, self.unix_s(now_ms)), first)

    def push(self, frames, first):
        boot = self.builder.counter.boot
        # A message too large for one frame took `first` itself; its fragments follow.
        seq = first if len(frames) == 1 else first + 1
        for frame in frames:
            self.outbox.push(boot, seq, frame)
            self._last_pushed = (boot, seq)
            seq += 1
            self.frames_built += 1
            self.bytes_built += len(frame)


def _clip(text):
    """At most MAX_TEXT_BYTES of UTF-8, cut on a character boundary."""
    data = text.encode()
    if len(data) <= _MAX_TEXT:
        return text
    data = data[:_MAX_TEXT]
    while data and (data[-1] & 0xC0) == 0x80:
        data = data[:-1]
    if data and data[-1] >= 0xC0:
        data = data[:-1]
    return data.decode()


def default_diagnostics(hal, wlan=None):
    """Status values only the hardware knows."""
    def read():
        return {
            ST_FREE_HEAP: hal.free_heap(),
            ST_LARGEST_BLOCK: hal.largest_free_block(),
            ST_RSSI_DBM: hal.rssi_dbm(wlan) if wlan is not None else None,
        }
    return read
