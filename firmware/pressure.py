"""Seat and bed occupancy from a force sensor (FSR on the ADC, or an HX711 load cell).

Fed ``feed(t_ms, raw)`` once per sample. Out come sitting (or in-bed)
episodes with the sit-to-stand rise time and a restlessness count, out-of-bed
episodes between bed episodes, an urgent "sat too long", and sensor faults.

How it decides, in the order the samples meet it:

* A median of three drops single-sample spikes (ADC glitches, a knock on the
  chair) before anything else sees them; it delays everything by one sample.
* ``d`` is the load above the empty baseline. The baseline follows the sensor
  only while the seat is empty: slowly (drift, a cushion), and downwards
  fast when the load falls well below it (the node may have started with
  someone seated).
* Occupied when ``d`` rises over ``on_delta``; the episode is only left when
  ``d`` stays under ``off_delta`` (hysteresis) for ``gap_ms``, so a brief lift
  does not split it; an episode shorter than ``min_episode_ms`` is a lean and
  is dropped.
* Rise time: while seated, the seated level ``L`` follows the steady load. The
  last sample at that level (within ``L/8``) and the first back at the empty
  level (within ``L/8``) bound 3/4 of a linear fall, so the rise is their
  distance times 4/3: the 0..100 % time of a 12.5..87.5 % measurement, which
  noise hardly moves. The episode ends where that fall reaches empty.
* Restlessness: a departure from ``L`` by more than ``shift_delta`` that lasts
  ``move_min_ms`` and comes back. The final rise never comes back, so it is not
  counted.

Values at the ADC's rails (0 or full scale) are held back, not used: a rail
value that lasts ``stuck_ms`` is an unplugged or shorted sensor. Wire the FSR
divider so an empty seat reads clear of 0 and a seated person below full scale,
or the two cannot be told from a fault.
"""

from micropython import const

from kinsight_wire import (
    ET_IN_BED,
    ET_OUT_OF_BED,
    ET_SENSOR_FAULT,
    ET_SIT,
    ET_SIT_TOO_LONG,
    EV_DURATION_DS,
    EV_RESTLESS,
    EV_RISE_DS,
    EV_ROLE,
    EV_TYPE,
    ROLE_BED,
    ROLE_SEAT,
    SM_EPISODES,
    SM_FAULTS,
    SM_OCCUPIED_DS,
    SM_PERIOD_S,
    SM_RESTLESS,
    SM_RISE_DS_MAX,
    SM_ROLE,
)

_FRAC = const(4)  # fraction bits of the baseline and the seated level
_DRIFT_SHIFT_EMPTY = const(9)  # the empty baseline follows with a 512-sample time constant
_DOWN_SHIFT = const(4)  # but a clear drop below it within a couple of seconds
_LEVEL_SHIFT = const(5)  # seated level follows a steady load in seconds...
_DRIFT_SHIFT = const(8)  # ...and a load held away from it (a new posture) slowly
_BAND_SHIFT = const(3)  # "at the level" / "at empty": within L/8 of it
# Scaled values stay below this so that, with the fraction bits, every sum is a
# small int on the ESP32 (31 bits).
_VALUE_LIMIT = const(1 << 20)
_FOUR_THIRDS_Q8 = const(341)  # 256 * 4/3: 75 % of a linear fall -> all of it
_EIGHTH_Q8 = const(32)
_SETTLE_MS = const(2000)  # sitting down takes about a second

_EMPTY = const(0)
_SEATED = const(1)
_LEAVING = const(2)  # under off_delta: a dip or a rise, not known yet
_GONE = const(3)  # back at empty: waiting out gap_ms in case of a return

STATE_NAMES = ("empty", "seated", "leaving", "gone")


def _positive(name, value):
    if type(value) is not int or value <= 0:
        raise ValueError("%s must be a positive int, not %r" % (name, value))
    return value


class PressureExtractor:
    def __init__(
        self,
        sink,
        role=ROLE_SEAT,
        sample_ms=100,
        on_delta=400,
        off_delta=250,
        shift_delta=300,
        min_episode_ms=10000,
        gap_ms=5000,
        move_min_ms=500,
        rise_max_ms=15000,
        too_long_ms=None,
        out_min_ms=120000,
        out_max_ms=10800000,
        adc_min=0,
        adc_max=4095,
        scale=1,
        stuck_ms=30000,
        clear_ms=10000,
    ):
        if role != ROLE_SEAT and role != ROLE_BED:
            raise ValueError("role must be ROLE_SEAT or ROLE_BED, not %r" % (role,))
        for name, value in (
            ("sample_ms", sample_ms),
            ("on_delta", on_delta),
            ("off_delta", off_delta),
            ("shift_delta", shift_delta),
            ("gap_ms", gap_ms),
            ("move_min_ms", move_min_ms),
            ("rise_max_ms", rise_max_ms),
            ("out_min_ms", out_min_ms),
            ("out_max_ms", out_max_ms),
            ("scale", scale),
            ("stuck_ms", stuck_ms),
            ("clear_ms", clear_ms),
        ):
            _positive(name, value)
        if off_delta >= on_delta:
            raise ValueError("off_delta %r must be below on_delta %r" % (off_delta, on_delta))
        if type(min_episode_ms) is not int or min_episode_ms < 0:
            raise ValueError("min_episode_ms must be an int >= 0, not %r" % (min_episode_ms,))
        if too_long_ms is None:
            too_long_ms = 4 * 3600 * 1000 if role == ROLE_SEAT else 0
        if type(too_long_ms) is not int or too_long_ms < 0:
            raise ValueError("too_long_ms must be an int >= 0 (0: off), not %r" % (too_long_ms,))
        if out_max_ms <= out_min_ms:
            raise ValueError("out_max_ms %r must be above out_min_ms %r" % (out_max_ms, out_min_ms))
        if type(adc_min) is not int or type(adc_max) is not int or adc_min >= adc_max:
            raise ValueError("adc_min %r must be an int below adc_max %r" % (adc_min, adc_max))
        if max(-adc_min, adc_max) // scale >= _VALUE_LIMIT:
            raise ValueError("scale %r leaves values above 2**20: raise it" % (scale,))
        self._sink = sink
        self.role = role
        self._sample_ms = sample_ms
        self._on = on_delta
        self._off = off_delta
        self._shift = shift_delta
        self._min_ms = min_episode_ms
        self._gap_ms = gap_ms
        self._move_ms = move_min_ms
        self._rise_max_ms = rise_max_ms
        self._too_long_ms = too_long_ms
        self._out_min_ms = out_min_ms
        self._out_max_ms = out_max_ms
        self._adc_min = adc_min
        self._adc_max = adc_max
        self._scale = scale
        self._stuck_ms = stuck_ms
        self._clear_ms = clear_ms
        self._type = ET_SIT if role == ROLE_SEAT else ET_IN_BED
        self.faults = 0
        self._raw = None
        self._base = None  # empty level << _FRAC, from the first good sample
        self._state = _EMPTY
        self._primed = 0  # samples in the median filter
        self._m1 = self._m2 = 0
        self._t1 = 0
        self._bad_since = None
        self._in_fault = False
        self._good_since = None
        self._last_end = None  # end of the previous episode (out-of-bed)
        self._ep_start = 0
        self._interval_start = None
        self._reset_interval(0)
        self._new_episode(0, 0)

    def _reset_interval(self, now_ms):
        self._interval_start = now_ms
        self._occ_ms = 0
        self._episodes = 0
        self._restless = 0
        self._rise_max_ds = 0
        self._faults_interval = 0

    def _new_episode(self, t, d):
        self._ep_start = t
        self._confirmed = False
        self._counted_to = t
        self._level = d << _FRAC
        self._t_hi = t
        self._level_hi = d
        self._t_off = t
        self._t_end = t
        self._rise_ms = -1
        self._moves = 0
        self._in_move = False
        self._move_start = t
        self._too_long_sent = False

    # --- samples

    def feed(self, t_ms, raw):
        self._raw = raw
        if type(raw) is not int or raw < self._adc_min or raw > self._adc_max:
            self._bad(t_ms, True)
            return
        if raw == self._adc_min or raw == self._adc_max:
            self._bad(t_ms, False)
            return
        self._bad_since = None
        if self._in_fault:
            if self._good_since is None:
                self._good_since = t_ms
            if t_ms - self._good_since < self._clear_ms:
                return
            self._in_fault = False
            self._primed = 0
        v = raw // self._scale
        if self._primed < 2:
            self._m2 = self._m1
            self._m1 = v
            self._t1 = t_ms
            self._primed += 1
            return
        a = self._m2
        b = self._m1
        if a > b:
            a, b = b, a
        m = a if v <= a else (b if v >= b else v)
        t_mid = self._t1
        self._m2 = self._m1
        self._m1 = v
        self._t1 = t_ms
        self._step(t_mid, m)

    def _bad(self, t, impossible):
        self._good_since = None
        if self._bad_since is None:
            self._bad_since = t
        lasting = t - self._bad_since >= self._stuck_ms
        if (impossible or lasting) and not self._in_fault:
            self._in_fault = True
            self.faults += 1
            self._faults_interval += 1
            self._sink.event(self._bad_since, {EV_TYPE: ET_SENSOR_FAULT, EV_ROLE: self.role})
        if lasting and self._state != _EMPTY:
            # No trustworthy load for stuck_ms: whatever episode was running
            # has no known end, so it is dropped rather than guessed.
            self._state = _EMPTY
            self._primed = 0

    def _step(self, t, v):
        base = self._base
        if base is None:
            base = self._base = v << _FRAC
        d = v - (base >> _FRAC)
        state = self._state
        if state == _EMPTY:
            if d > self._on:
                self._new_episode(t, d)
                self._state = _SEATED
                return
            diff = (v << _FRAC) - base
            if diff >= 0:
                self._base = base + (diff >> _DRIFT_SHIFT_EMPTY)
            else:
                # Fast only for a clear drop, or the baseline would ride the
                # bottom of the noise.
                shift = _DOWN_SHIFT if d < -self._off else _DRIFT_SHIFT_EMPTY
                self._base = base - ((-diff) >> shift)
            return
        if state == _SEATED:
            self._seated(t, d)
            if d >= self._off:
                return
            self._t_off = t
            state = self._state = _LEAVING
        elif d > self._on:
            self._state = _SEATED  # a dip: the same episode goes on
            self._seated(t, d)
            return
        if state == _LEAVING:
            level = self._level_hi
            band = level >> _BAND_SHIFT
            if d <= band:
                # Each band was crossed half a sample, on average, inside the
                # span between the two samples.
                half = self._sample_ms >> 1
                span = t - self._t_hi - 2 * half
                if span < 0:
                    span = 0
                rise = (span * _FOUR_THIRDS_Q8) >> 8
                self._rise_ms = rise
                self._t_end = self._t_hi + half - ((rise * _EIGHTH_Q8) >> 8) + rise
                self._state = _GONE
            elif t - self._t_off > self._rise_max_ms:
                # The load never came back to empty (something left on the
                # seat?): the episode ends where it left, rise unknown.
                self._rise_ms = -1
                self._t_end = self._t_off
                self._state = _GONE
            return
        if t - self._t_off >= self._gap_ms:
            self._finish()
            self._state = _EMPTY

    def _seated(self, t, d):
        start = self._ep_start
        if t - start < _SETTLE_MS:
            # Still sitting down: the level is found, not followed, and the
            # climb to it is no movement.
            self._level += ((d << _FRAC) - self._level) >> 1
            self._t_hi = t
            self._level_hi = d
            return
        level = self._level >> _FRAC
        dev = d - level
        band = level >> _BAND_SHIFT
        if dev >= -band:
            self._t_hi = t
            self._level_hi = level
        # Only a load close to the level moves it at a pace: a fall that has
        # begun must not drag the level down with it and so delay t_hi.
        half_band = band >> 1
        shift = _LEVEL_SHIFT if -half_band <= dev <= half_band else _DRIFT_SHIFT
        diff = (d << _FRAC) - self._level
        self._level += diff >> shift if diff >= 0 else -((-diff) >> shift)
        if dev < 0:
            dev = -dev
        if not self._in_move:
            if dev > self._shift:
                self._in_move = True
                self._move_start = t
        elif dev < self._shift >> 1:
            self._in_move = False
            if t - self._move_start >= self._move_ms:
                self._moves += 1
                if self._confirmed:
                    self._restless += 1
        if not self._confirmed and t - start >= self._min_ms:
            self._confirm()
        if (
            self._confirmed
            and self._too_long_ms
            and not self._too_long_sent
            and t - start >= self._too_long_ms
        ):
            self._too_long_sent = True
            ev = {EV_TYPE: ET_SIT_TOO_LONG, EV_ROLE: self.role}
            ev[EV_DURATION_DS] = (t - start) // 100
            self._sink.urgent(start, ev)

    def _confirm(self):
        self._confirmed = True
        self._restless += self._moves
        last = self._last_end
        if self.role == ROLE_BED and last is not None:
            out_ms = self._ep_start - last
            if self._out_min_ms <= out_ms <= self._out_max_ms:
                ev = {EV_TYPE: ET_OUT_OF_BED, EV_ROLE: self.role, EV_DURATION_DS: out_ms // 100}
                self._sink.event(last, ev)

    def _finish(self):
        start = self._ep_start
        end = self._t_end
        if end < self._t_off:
            end = self._t_off
        if not self._confirmed:
            if end - start < self._min_ms:
                return  # a lean, or a bag put down for a moment
            self._confirm()
        counted = self._counted_to if self._counted_to > start else start
        if end > counted:
            self._occ_ms += end - counted
        self._episodes += 1
        ev = {EV_TYPE: self._type, EV_ROLE: self.role}
        ev[EV_DURATION_DS] = (end - start) // 100
        ev[EV_RESTLESS] = self._moves
        if self._rise_ms >= 0:
            rise_ds = (self._rise_ms + 50) // 100
            ev[EV_RISE_DS] = rise_ds
            if rise_ds > self._rise_max_ds:
                self._rise_max_ds = rise_ds
        self._last_end = end
        self._sink.event(start, ev)

    # --- reports

    def summary(self, now_ms):
        if self._confirmed and self._state != _EMPTY:
            upto = now_ms if self._state == _SEATED else self._t_off
            counted = self._counted_to if self._counted_to > self._ep_start else self._ep_start
            if upto > counted:
                self._occ_ms += upto - counted
                self._counted_to = upto
        result = {
            SM_ROLE: self.role,
            SM_PERIOD_S: (now_ms - self._interval_start) // 1000,
            SM_OCCUPIED_DS: self._occ_ms // 100,
            SM_EPISODES: self._episodes,
            SM_RESTLESS: self._restless,
            SM_RISE_DS_MAX: self._rise_max_ds,
            SM_FAULTS: self._faults_interval,
        }
        self._reset_interval(now_ms)
        return result

    def reading(self):
        base = self._base
        return {
            "raw": self._raw,
            "state": "fault" if self._in_fault else STATE_NAMES[self._state],
            "baseline": None if base is None else base >> _FRAC,
            "level": self._level >> _FRAC if self._state != _EMPTY else 0,
            "faults": self.faults,
        }


def defaults_for(role, sensor):
    """Constructor settings for a role and sensor that config.json may then override.

    An FSR on the 12-bit ADC uses the defaults above. An HX711 load cell under a
    mattress gives signed 24-bit counts, scaled down by 64 into the ADC-sized steps
    the thresholds are in; a sleeper shifts far more weight than a sitter, so the
    bed's thresholds are wider.
    """
    options = {}
    if sensor == "hx711":
        options = {"adc_min": -0x800000, "adc_max": 0x7FFFFF, "scale": 64}
    if role == ROLE_BED:
        options.update(on_delta=1500, off_delta=800, shift_delta=1000)
    return options
