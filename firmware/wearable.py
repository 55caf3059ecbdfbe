"""A wearable's heart rate notifications, from its BLE link to the node's loop.

The link (hal.heart_rate_link on a board, a fake radio on the unix port) has
one coroutine, ``session(push)``: find the wearable, connect, subscribe to the
Heart Rate Measurement (0x2A37) and call ``push(data)`` for every
notification until the link is lost (it returns or raises OSError /
asyncio's TimeoutError, ValueError). ``WearableSource.run()`` keeps sessions going, waiting
longer after each one that brought nothing (the strap is off or out of
range: scanning costs the radio time that ESP-NOW and Wi-Fi share).

Notifications wait in a ring of a few fixed buffers until the loop's
``read()`` takes them one at a time, parsed into one reused HrSample, so the
steady state allocates nothing of ours.
"""

import asyncio

from micropython import const

from heartrate import HrSample, parse_measurement

_RING = const(4)  # a notification a second, read four times a second
_PAYLOAD_MAX = const(64)
_RETRY_MIN_MS = const(2000)
_RETRY_MAX_MS = const(60000)


class WearableSource:
    def __init__(self, link, sleep_ms=None):
        self._link = link
        self._sleep_ms = sleep_ms or asyncio.sleep_ms
        self._buf = [bytearray(_PAYLOAD_MAX) for _ in range(_RING)]
        self._len = bytearray(_RING)
        self._head = 0  # next to read
        self._count = 0
        self._sample = HrSample()
        self.attempts = 0  # sessions started: scans for the wearable
        self.received = 0
        self.overrun = 0  # notifications lost to a full ring
        self.bad = 0  # payloads that do not parse
        self.connected = False
        self.last_error = None

    def push(self, data):
        n = len(data)
        if n > _PAYLOAD_MAX:
            self.bad += 1
            return
        if self._count == _RING:
            self.overrun += 1
            return
        slot = (self._head + self._count) % _RING
        self._buf[slot][:n] = data
        self._len[slot] = n
        self._count += 1
        self.received += 1

    def read(self):
        """The next notification as an HrSample (reused), or None."""
        while self._count:
            slot = self._head
            self._head = (slot + 1) % _RING
            self._count -= 1
            try:
                return parse_measurement(self._buf[slot], self._sample, self._len[slot])
            except ValueError:
                self.bad += 1
        return None

    async def run(self):
        wait = _RETRY_MIN_MS
        while True:
            before = self.received
            self.connected = True
            self.attempts += 1
            try:
                await self._link.session(self.push)
            # ValueError: aioble's own, for a characteristic without the notify
            # descriptor; any of these only ends this session.
            except (OSError, asyncio.TimeoutError, ValueError) as exc:
                self.last_error = exc
            self.connected = False
            if self.received > before:
                wait = _RETRY_MIN_MS
            else:
                wait = wait * 2 if wait < _RETRY_MAX_MS // 2 else _RETRY_MAX_MS
            await self._sleep_ms(wait)
