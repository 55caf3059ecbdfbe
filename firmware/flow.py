"""Water drawn at a tap, from a Hall-effect flow sensor's cumulative pulse count.

``feed(t_ms, total_pulses)`` takes the counter as the hardware keeps it
(machine.Counter, or an IRQ handler's count) every sample_ms; the counting
itself happens in hardware or in the IRQ, so this only sees differences and
keeps up with any pulse rate the counter does (the YF-S201 tops out at 225 Hz).

* A draw starts with the first pulses after a quiet spell and ends once
  ``quiet_ms`` pass without one. It counts only with ``min_volume_ml`` and a
  peak flow of ``min_flow_ml_min``: a single stray pulse or a drip is neither.
* Peak flow is taken over ``window_ms`` (several samples), as one 250 ms
  sample holds too few pulses at low flow to give a rate.
* A leak is water that keeps coming with no pause of ``leak_gap_ms`` for
  ``leak_ms``: a dripping tap, a cistern that never stops filling, a tap left
  running. It is reported once per such run, at once.

Volumes come from pulse counts, rounded to the nearest ml: the error is at
most half a millilitre on top of the sensor's own calibration.
"""

from array import array

from micropython import const

from kinsight_wire import (
    ET_DRAW,
    ET_LEAK,
    ET_SENSOR_FAULT,
    EV_DURATION_DS,
    EV_PEAK_FLOW_ML_MIN,
    EV_ROLE,
    EV_TYPE,
    EV_VOLUME_ML,
    ROLE_TAP,
    SM_EPISODES,
    SM_FAULTS,
    SM_PERIOD_S,
    SM_ROLE,
    SM_VOLUME_ML,
)

_SLOT_MAX = const(0xFFFF)  # window slots are unsigned 16-bit
_SLACK_PULSES = const(2)  # a sample boundary can split a pulse either way


def _check(name, value, low):
    if type(value) is not int or value < low:
        raise ValueError("%s must be an int >= %d, not %r" % (name, low, value))


class FlowExtractor:
    def __init__(
        self,
        sink,
        pulses_per_l=450,
        sample_ms=250,
        counter_bits=32,
        role=ROLE_TAP,
        quiet_ms=5000,
        min_volume_ml=30,
        min_flow_ml_min=500,
        window_ms=1000,
        leak_ms=1800000,
        leak_gap_ms=60000,
        max_hz=300,
        clear_ms=10000,
    ):
        for name, value, low in (
            ("pulses_per_l", pulses_per_l, 1),
            ("sample_ms", sample_ms, 1),
            ("quiet_ms", quiet_ms, 1),
            ("min_volume_ml", min_volume_ml, 0),
            ("min_flow_ml_min", min_flow_ml_min, 0),
            ("window_ms", window_ms, 1),
            ("leak_ms", leak_ms, 1),
            ("leak_gap_ms", leak_gap_ms, 1),
            ("max_hz", max_hz, 1),
            ("clear_ms", clear_ms, 1),
        ):
            _check(name, value, low)
        if counter_bits != 16 and counter_bits != 32:
            raise ValueError("counter_bits must be 16 or 32, not %r" % (counter_bits,))
        if pulses_per_l > 100000:
            raise ValueError("pulses_per_l %r is beyond any flow sensor" % (pulses_per_l,))
        self._sink = sink
        self.role = role
        self._ppl = pulses_per_l
        self._mask = (1 << counter_bits) - 1
        self._quiet_ms = quiet_ms
        self._min_ml = min_volume_ml
        self._min_flow = min_flow_ml_min
        self._leak_ms = leak_ms
        self._leak_gap_ms = leak_gap_ms
        self._max_hz = max_hz
        self._clear_ms = clear_ms
        slots = window_ms // sample_ms
        self._slots = slots if slots > 0 else 1
        self._win_pulses = array("H", bytes(2 * self._slots))
        self._win_ms = array("H", bytes(2 * self._slots))
        self._win_i = 0
        self._win_n = 0
        self.faults = 0
        self._in_fault = False
        self._good_since = 0
        self._last = None
        self._t_last = 0
        self._rate = 0
        self._daily_pulses = 0
        self._in_draw = False
        self._draw_start = 0
        self._draw_pulses = 0
        self._last_pulse_t = 0
        self._peak = 0
        self._run_start = None  # leak watch: flow with no long pause since
        self._run_last = 0
        self._run_pulses = 0
        self._leak_sent = False
        self._reset_interval(0)

    def _reset_interval(self, now_ms):
        self._interval_start = now_ms
        self._interval_pulses = 0
        self._draws = 0
        self._faults_interval = 0

    def _ml(self, pulses):
        ppl = self._ppl
        # Split so that pulses * 1000 never leaves the small ints.
        return pulses // ppl * 1000 + ((pulses % ppl) * 1000 + (ppl >> 1)) // ppl

    @property
    def daily_ml(self):
        return self._ml(self._daily_pulses)

    def new_day(self):
        self._daily_pulses = 0

    def _fault(self, t):
        self._good_since = t
        if not self._in_fault:
            self._in_fault = True
            self.faults += 1
            self._faults_interval += 1
            self._sink.event(t, {EV_TYPE: ET_SENSOR_FAULT, EV_ROLE: self.role})

    def feed(self, t_ms, total_pulses):
        if type(total_pulses) is not int or total_pulses < 0 or total_pulses > self._mask:
            self._fault(t_ms)
            return
        last = self._last
        if last is None:
            self._last = total_pulses
            self._t_last = t_ms
            return
        t_prev = self._t_last
        dt = t_ms - t_prev
        if dt <= 0:
            self._fault(t_ms)
            return
        delta = (total_pulses - last) & self._mask
        self._last = total_pulses
        self._t_last = t_ms
        if delta > self._max_hz * dt // 1000 + _SLACK_PULSES:
            # More than the sensor can give: the counter was reset or glitched.
            # Its pulses are not water; counting restarts from the new value.
            self._fault(t_ms)
            return
        if self._in_fault and t_ms - self._good_since >= self._clear_ms:
            self._in_fault = False
        if delta:
            self._daily_pulses += delta
            self._interval_pulses += delta
            if not self._in_draw:
                self._in_draw = True
                self._draw_start = t_prev
                self._draw_pulses = 0
                self._peak = 0
                self._win_n = 0
            self._draw_pulses += delta
            self._last_pulse_t = t_ms
            if self._run_start is None:
                self._run_start = t_prev
                self._run_pulses = 0
            self._run_last = t_ms
            self._run_pulses += delta
        if self._in_draw:
            self._window(delta, dt)
            if not delta and t_ms - self._last_pulse_t >= self._quiet_ms:
                self._finish()
        run_start = self._run_start
        if run_start is not None:
            if t_ms - self._run_last >= self._leak_gap_ms:
                self._run_start = None
                self._leak_sent = False
            elif not self._leak_sent and self._run_last - run_start >= self._leak_ms:
                self._leak_sent = True
                ev = {EV_TYPE: ET_LEAK, EV_ROLE: self.role}
                ev[EV_DURATION_DS] = (self._run_last - run_start) // 100
                ev[EV_VOLUME_ML] = self._ml(self._run_pulses)
                self._sink.urgent(run_start, ev)

    def _window(self, delta, dt):
        i = self._win_i
        self._win_pulses[i] = delta
        self._win_ms[i] = dt if dt < _SLOT_MAX else _SLOT_MAX
        i += 1
        self._win_i = 0 if i == self._slots else i
        if self._win_n < self._slots:
            self._win_n += 1
            if self._win_n < self._slots:
                return
        pulses = 0
        span = 0
        for j in range(self._slots):
            pulses += self._win_pulses[j]
            span += self._win_ms[j]
        rate = self._ml(pulses * 60000 // span)
        self._rate = rate
        if rate > self._peak:
            self._peak = rate

    def _finish(self):
        self._in_draw = False
        self._rate = 0
        start = self._draw_start
        end = self._last_pulse_t
        pulses = self._draw_pulses
        peak = self._peak
        if peak == 0:  # shorter than one window: its mean flow is its peak
            peak = self._ml(pulses * 60000 // (end - start))
        volume = self._ml(pulses)
        if volume < self._min_ml or peak < self._min_flow:
            return
        self._draws += 1
        ev = {EV_TYPE: ET_DRAW, EV_ROLE: self.role}
        ev[EV_DURATION_DS] = (end - start) // 100
        ev[EV_VOLUME_ML] = volume
        ev[EV_PEAK_FLOW_ML_MIN] = peak
        self._sink.event(start, ev)

    def summary(self, now_ms):
        result = {
            SM_ROLE: self.role,
            SM_PERIOD_S: (now_ms - self._interval_start) // 1000,
            SM_VOLUME_ML: self._ml(self._interval_pulses),
            SM_EPISODES: self._draws,
            SM_FAULTS: self._faults_interval,
        }
        self._reset_interval(now_ms)
        return result

    def reading(self):
        return {
            "raw": self._last,
            "state": "fault" if self._in_fault else ("draw" if self._in_draw else "idle"),
            "flow_ml_min": self._rate,
            "daily_ml": self.daily_ml,
            "faults": self.faults,
        }
