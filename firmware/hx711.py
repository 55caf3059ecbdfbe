"""HX711 24-bit load-cell ADC, bit-banged over two pins.

The pins are built by the caller (hal or a board file), so this module needs
no ``machine``: ``pd_sck_pin`` an output, ``dout_pin`` an input, each with
``value()`` / ``value(v)``.

A conversion is ready when DOUT goes low. 24 clock pulses shift it out, MSB
first, as two's complement; 1, 2 or 3 more pulses choose the next
conversion's input: channel A gain 128, channel B gain 32, channel A gain 64.
PD_SCK held high for over 60 us powers the chip down, so a read must not be
interrupted for that long mid-word (a long IRQ would corrupt it): read it
from the main loop, not from a handler that other IRQs can delay.
"""

import time

from micropython import const

_BITS = const(24)
_SIGN = const(0x800000)
_WRAP = const(0x1000000)
_READY_TIMEOUT_MS = const(200)  # slowest rate is 10 samples/s: two periods

# gain -> extra pulses after the 24 data bits
_GAINS = ((128, 1), (32, 2), (64, 3))


class HX711:
    def __init__(self, pd_sck_pin, dout_pin, gain=128):
        self._sck = pd_sck_pin
        self._dout = dout_pin
        self._extra = 0
        for g, extra in _GAINS:
            if g == gain:
                self._extra = extra
        if not self._extra:
            raise ValueError("gain must be 128, 64 or 32, not %r" % (gain,))
        self.gain = gain
        self._sck.value(0)

    def ready(self):
        return self._dout.value() == 0

    def read(self):
        """The next conversion as a signed 24-bit int; OSError if none comes."""
        start = time.ticks_ms()
        while not self.ready():
            if time.ticks_diff(time.ticks_ms(), start) > _READY_TIMEOUT_MS:
                raise OSError("HX711 not ready: check its wiring and power")
        sck = self._sck
        dout = self._dout
        value = 0
        for _ in range(_BITS):
            sck.value(1)
            sck.value(0)
            value = (value << 1) | dout.value()
        for _ in range(self._extra):
            sck.value(1)
            sck.value(0)
        if value & _SIGN:
            value -= _WRAP
        return value

    def power_down(self):
        self._sck.value(0)
        self._sck.value(1)

    def power_up(self):
        # The chip wakes with channel A gain 128; the next read sets the gain again.
        self._sck.value(0)
