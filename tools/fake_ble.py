"""A fake BLE radio for the unix port: a wearable's Heart Rate link, played from a trace.

``FakeHeartRateLink`` has the session(push) coroutine of hal.heart_rate_link.
It plays (t_ms, payload or None) pairs, such as tools/traces.hr_trace's, on a
FakeClock that only moves when someone sleeps on it, so a day of notifications
plays in seconds. A scan takes ``scan_ms`` and finds nothing while the trace
is in a dropout (None: out of range); a dropout while connected ends the
session (the link is lost) and the node must scan again. What the trace sends
while the node scans or waits to retry is lost, as on the air. A strap taken
off stays connected and sends "no contact" payloads.
"""

import asyncio


class FakeClock:
    def __init__(self, now_ms=0):
        self.now_ms = now_ms

    async def sleep_ms(self, ms):
        self.now_ms += ms
        await asyncio.sleep_ms(0)


class SteppedClock:
    """A clock some driver sets (a replayed day's node time): sleeping waits, yielding to
    the other tasks, until the driver has moved it past the end of the sleep."""

    def __init__(self, now_ms=0):
        self.now_ms = now_ms

    async def sleep_ms(self, ms):
        until = self.now_ms + ms
        while self.now_ms < until:
            await asyncio.sleep_ms(0)


class FakeHeartRateLink:
    def __init__(self, clock, trace, scan_ms=1000):
        self._clock = clock
        self._trace = trace  # iterator of (t_ms, payload or None)
        self._scan_ms = scan_ms
        self._next = None
        self.finished = False
        self.connects = 0
        self.not_found = 0
        self.lost = 0

    def _peek(self):
        """The first pair at or after now (those before it were sent unheard)."""
        while True:
            if self._next is None:
                try:
                    self._next = next(self._trace)
                except StopIteration:
                    self.finished = True
                    return None
            if self._next[0] >= self._clock.now_ms:
                return self._next
            self._next = None

    async def session(self, push):
        await self._clock.sleep_ms(self._scan_ms)
        item = self._peek()
        if item is None:
            await asyncio.sleep_ms(0)
            return
        if item[1] is None:
            self.not_found += 1
            raise OSError(116)  # ETIMEDOUT: no wearable answered the scan
        self.connects += 1
        while True:
            item = self._peek()
            if item is None:
                return
            t, payload = item
            self._next = None
            if t > self._clock.now_ms:
                await self._clock.sleep_ms(t - self._clock.now_ms)
            if payload is None:
                self.lost += 1
                return
            push(payload)
