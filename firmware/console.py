"""What the running node says on its console (a board's UART 0, the REPL's serial line).

    [12.3][I][uplink] host answers: 1 frames acked

One line each: the seconds since the program started (to a tenth), a level
(D, I, W, E), a tag and a short message. ``kinsight-field logs --follow`` reads
them without sending a byte, so the program keeps running; any serial terminal
shows them too. The log file ``kinsight-field logs`` shows is fieldapi's, and
stays as it is: these lines cost no flash writes.

A line is printed piece by piece (print writes its arguments one after another),
so it builds no string longer than its message, and only once the rate limit lets
it through. The limit is a token bucket: a burst of ``_BURST`` lines, then one
every ``_REFILL_MS``; a fault that repeats cannot flood the UART or slow the loop,
and the lines held back are counted and said. Printing allocates: never from an
interrupt handler.

``Watch`` is the loop's side: ``step(now_ms)`` costs one comparison per tick and
looks at the node once a second (uplink up and down, reconnects, sensor faults,
events noticed, a summary every minute).
"""

import gc
import sys
import time

from micropython import const

from kinsight_wire import EV_ROLE, EV_TYPE, EVENT_TYPES, RESET_CAUSES, ROLES

DEBUG = const(0)
INFO = const(1)
WARN = const(2)
ERROR = const(3)
_LETTERS = "DIWE"
_BURST = const(10)
_REFILL_MS = const(2000)
_CHECK_MS = const(1000)
_FIRST_SUMMARY_MS = const(10000)  # an installer watching a fresh boot hears soon
_SUMMARY_MS = const(60000)
_DOWN_MS = const(30000)  # queued frames and no ack for this long: the uplink is down
_EVENTS_SHOWN = const(4)  # per check: the rest are counted


def name(table, code):
    for value, text in table:
        if value == code:
            return text
    return str(code)


class Log:
    """Rate-limited console lines; ``out`` is a stream (None: the console itself)."""

    def __init__(self, out=None, clock=time.ticks_ms, burst=_BURST, refill_ms=_REFILL_MS):
        self.out = sys.stdout if out is None else out
        self.clock = clock
        self.refill_ms = refill_ms
        self.cap_ms = burst * refill_ms
        self.credit_ms = self.cap_ms
        self.held = 0  # lines the limit held back since the last one printed
        self.ms = 0  # uptime, accumulated: ticks_ms() wraps every 12 days
        self._last = clock()

    def _now(self):
        t = self.clock()
        passed = time.ticks_diff(t, self._last)
        self._last = t
        self.ms += passed
        credit = self.credit_ms + passed
        self.credit_ms = credit if credit < self.cap_ms else self.cap_ms

    def allowed(self):
        """Whether a line may go now; one that may not is counted as held back."""
        self._now()
        if self.credit_ms < self.refill_ms:
            self.held += 1
            return False
        self.credit_ms -= self.refill_ms
        if self.held:
            held, self.held = self.held, 0
            self._print(WARN, "log", "%d lines held back (rate limit)" % held)
        return True

    def _print(self, level, tag, message):
        ms = self.ms
        print("[", ms // 1000, ".", ms % 1000 // 100, "][", _LETTERS[level], "][", tag, "] ",
              message, sep="", file=self.out)

    def line(self, level, tag, message, args=None):
        """One line; ``message % args`` is formatted only when it is printed."""
        if not self.allowed():
            return False
        self._print(level, tag, message if args is None else message % args)
        return True

    def info(self, tag, message, args=None):
        return self.line(INFO, tag, message, args)

    def warn(self, tag, message, args=None):
        return self.line(WARN, tag, message, args)

    def error(self, tag, message, args=None):
        return self.line(ERROR, tag, message, args)


def boot(log, cfg, version, reset_cause, boot_no, safe_mode, attempts, crashes):
    """The boot summary: who the node is, how it came up, what stopped it last."""
    roles = ", ".join("%s (%s)" % (r["role"], r["sensor"]) for r in cfg["roles"]) or "none"
    up = cfg["uplink"]
    where = "%s:%s" % (up["host"], up["port"]) if "host" in up else ""
    log.info("boot", "Kinsight %s, node %d on %s, reset %s, boot %d",
             (version, cfg["node_id"], cfg["board"]["name"], name(RESET_CAUSES, reset_cause),
              boot_no))
    log.info("boot", "roles %s; uplink %s %s", (roles, up["type"], where))
    if safe_mode:
        log.warn("boot", "safe mode after %d failed boots: status only, sensors off",
                 (attempts - 1,))
    if crashes:
        c = crashes[-1]
        log.warn("crash", "last of %d: %s (%s, after a %s reset)",
                 (len(crashes), c["what"], c["trace"] or "no trace", c["reset_cause"]))


class Watch:
    """The node's loop, as the console tells it: state changes, faults, a summary."""

    def __init__(self, log, node):
        self.log = log
        self.node = node
        self.next_ms = 0
        self.summary_ms = _FIRST_SUMMARY_MS
        self.acked = 0
        self.reconnects = 0
        self.up = None  # None until the host first answers or stays silent
        self.last_ack_ms = 0
        # events noticed so far, framed or waiting (a recovered journal's among them)
        self.noticed = node.events_sent + len(node.sink.events)
        self.faults = [0] * len(node.sensors)

    def step(self, now_ms):
        if now_ms < self.next_ms:
            return
        self.next_ms = now_ms + _CHECK_MS
        if self.node.forwarder is not None:
            self._uplink(now_ms)
        self._sensors()
        if now_ms >= self.summary_ms:
            self.summary_ms = now_ms + _SUMMARY_MS
            self.summary(now_ms)

    def _uplink(self, now_ms):
        log = self.log
        fw = self.node.forwarder
        if fw.acked > self.acked:
            self.last_ack_ms = now_ms
            if self.up is not True:
                log.info("uplink", "host answers: %d frames acked", (fw.acked,))
            self.up = True
            self.acked = fw.acked
        elif (self.up is not False and self.node.outbox.depth
              and now_ms - self.last_ack_ms >= _DOWN_MS):
            log.warn("uplink", "no ack for %d s: %d frames waiting, %d send errors",
                     ((now_ms - self.last_ack_ms) // 1000, self.node.outbox.depth,
                      fw.send_errors))
            self.up = False
        reconnects = getattr(fw.uplink, "reconnects", 0)
        if reconnects > self.reconnects:
            self.reconnects = reconnects
            log.warn("uplink", "connection made again (%d so far)", (reconnects,))

    def _sensors(self):
        node = self.node
        sensors = node.sensors
        for i in range(len(sensors)):
            faults = getattr(sensors[i].extractor, "faults", 0)
            if faults > self.faults[i]:
                self.faults[i] = faults
                self.log.warn(name(ROLES, sensors[i].role), "sensor fault (%d so far): check "
                              "its wiring", (faults,))
        waiting = node.sink.events
        noticed = node.events_sent + len(waiting)
        new = noticed - self.noticed
        if new <= 0:
            return
        self.noticed = noticed
        shown = new if new < len(waiting) else len(waiting)
        if shown > _EVENTS_SHOWN:
            shown = _EVENTS_SHOWN
        for _, ev in waiting[len(waiting) - shown:]:
            self.log.info("event", "%s %s", (name(ROLES, ev.get(EV_ROLE)),
                                             name(EVENT_TYPES, ev.get(EV_TYPE))))
        if new > shown:
            self.log.info("event", "%d more noticed", (new - shown,))

    def summary(self, now_ms):
        node = self.node
        fw = node.forwarder
        self.log.info("node", "up %d s, boot %d%s, queue %d, sent %d, acked %d, events %d, "
                      "free heap %d",
                      (now_ms // 1000, node.builder.counter.boot,
                       ", SAFE MODE" if node.safe_mode else "", node.outbox.depth,
                       fw.sent if fw is not None else 0, fw.acked if fw is not None else 0,
                       self.noticed, gc.mem_free()))
