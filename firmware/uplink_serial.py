"""Frames over a serial line (a machine.UART), SLIP-framed.

``uart`` is anything with ``write(bytes)``, ``any()`` (bytes waiting) and
``read(n)`` (up to n bytes, or None): machine.UART on the node, a pty-backed
object in the tests. Same interface as uplink.UdpUplink: send(frame),
receive() -> one frame or None, close().
"""

from micropython import const

from slip import SlipDecoder, encode

_READ_MAX = const(256)
_QUEUE_MAX = const(8)
_READ_BUDGET = const(1024)


class SerialUplink:
    def __init__(self, uart, max_len=250):
        self.uart = uart
        self.decoder = SlipDecoder(max_len)
        self._queue = []  # frames decoded, not yet returned; at most _QUEUE_MAX
        self.overflow = 0  # frames dropped because receive() was not called soon enough

    def send(self, frame):
        data = encode(frame)
        view = memoryview(data)
        done = 0
        while done < len(data):
            n = self.uart.write(view[done:])
            if not n:
                raise OSError("serial write took no bytes")
            done += n

    def receive(self):
        budget = _READ_BUDGET  # bytes read per call at most, so a chatty line cannot hog
        while not self._queue and budget > 0:
            waiting = self.uart.any()
            if not waiting:
                break
            data = self.uart.read(min(waiting, _READ_MAX))
            if not data:
                break
            budget -= len(data)
            for frame in self.decoder.feed(data):
                if len(self._queue) == _QUEUE_MAX:
                    self._queue.pop(0)
                    self.overflow += 1
                self._queue.append(frame)
        if self._queue:
            return self._queue.pop(0)
        return None

    def close(self):
        pass
