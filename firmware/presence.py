"""Visits to a room (toilet, stairs) from any present/absent source.

``feed(t_ms, present)`` takes True/False from a source below. A visit starts
with the first sample present and ends at the last one, once nobody has been
seen for ``hold_ms``: a PIR sees no one who sits still, so its gaps inside
the hold are the same visit. Visits shorter than ``min_visit_ms`` (someone
looking in) are dropped. ``prolonged_ms`` into a visit an urgent
ET_PROLONGED_PRESENCE goes out at once (a possible fall), once per visit.

A PIR cannot see a person lying still for longer than ``hold_ms``; for fall
watch use the radar, which reports stationary targets.

``present`` that is neither True nor False (None: the source could not
read) is a fault; such samples are skipped.
"""

from micropython import const

from kinsight_wire import (
    ET_FLUSH,
    ET_PROLONGED_PRESENCE,
    ET_SENSOR_FAULT,
    ET_VISIT,
    EV_DURATION_DS,
    EV_ROLE,
    EV_TYPE,
    ROLE_TOILET,
    SM_DWELL_DS_MAX,
    SM_EPISODES,
    SM_FAULTS,
    SM_OCCUPIED_DS,
    SM_PERIOD_S,
    SM_ROLE,
)

_NO_TARGET_MM = const(8190)  # VL53L0X's "nothing in range" readings are 8190/8191


def _check(name, value, low):
    if type(value) is not int or value < low:
        raise ValueError("%s must be an int >= %d, not %r" % (name, low, value))


class PresenceExtractor:
    def __init__(
        self,
        sink,
        role=ROLE_TOILET,
        hold_ms=60000,
        min_visit_ms=10000,
        prolonged_ms=1800000,
        flush_ms=5000,
        clear_ms=10000,
    ):
        for name, value, low in (
            ("hold_ms", hold_ms, 1),
            ("min_visit_ms", min_visit_ms, 0),
            ("prolonged_ms", prolonged_ms, 0),
            ("flush_ms", flush_ms, 0),
            ("clear_ms", clear_ms, 1),
        ):
            _check(name, value, low)
        self._sink = sink
        self.role = role
        self._hold_ms = hold_ms
        self._min_ms = min_visit_ms
        self._prolonged_ms = prolonged_ms
        self._flush_ms = flush_ms
        self._clear_ms = clear_ms
        self.faults = 0
        self._in_fault = False
        self._bad_t = 0
        self._raw = None
        self._active = False
        self._start = 0
        self._last_seen = 0
        self._counted_to = 0
        self._prolonged_sent = False
        self._last_flush = None
        self._reset_interval(0)

    def _reset_interval(self, now_ms):
        self._interval_start = now_ms
        self._occ_ms = 0
        self._visits = 0
        self._dwell_max_ms = 0
        self._faults_interval = 0

    def feed(self, t_ms, present):
        self._raw = present
        if present is True or present == 1:
            present = True
        elif present is False or present == 0:
            present = False
        else:
            self._bad_t = t_ms
            if not self._in_fault:
                self._in_fault = True
                self.faults += 1
                self._faults_interval += 1
                self._sink.event(t_ms, {EV_TYPE: ET_SENSOR_FAULT, EV_ROLE: self.role})
            present = None
        if self._in_fault and present is not None and t_ms - self._bad_t >= self._clear_ms:
            self._in_fault = False
        if present:
            if not self._active:
                self._active = True
                self._start = t_ms
                self._counted_to = t_ms
                self._prolonged_sent = False
            self._last_seen = t_ms
        elif self._active and t_ms - self._last_seen >= self._hold_ms:
            self._finish()
            return
        if self._active and not self._prolonged_sent and t_ms - self._start >= self._prolonged_ms:
            self._prolonged_sent = True
            ev = {EV_TYPE: ET_PROLONGED_PRESENCE, EV_ROLE: self.role}
            ev[EV_DURATION_DS] = (t_ms - self._start) // 100
            self._sink.urgent(self._start, ev)

    def _finish(self):
        self._active = False
        start = self._start
        dwell = self._last_seen - start
        if dwell < self._min_ms and not self._prolonged_sent:
            return
        if self._last_seen > self._counted_to:
            self._occ_ms += self._last_seen - self._counted_to
        self._visits += 1
        if dwell > self._dwell_max_ms:
            self._dwell_max_ms = dwell
        ev = {EV_TYPE: ET_VISIT, EV_ROLE: self.role, EV_DURATION_DS: dwell // 100}
        self._sink.event(start, ev)

    def flush(self, t_ms):
        """A flush contact closed; contact bounce within flush_ms is the same flush."""
        last = self._last_flush
        if last is not None and t_ms - last < self._flush_ms:
            return
        self._last_flush = t_ms
        self._sink.event(t_ms, {EV_TYPE: ET_FLUSH, EV_ROLE: self.role})

    def summary(self, now_ms):
        # A visit still going (or not yet known to be long enough) is counted
        # where it happened once it ends; only a confirmed one counts now.
        if self._active and self._last_seen - self._start >= self._min_ms:
            if self._last_seen > self._counted_to:
                self._occ_ms += self._last_seen - self._counted_to
                self._counted_to = self._last_seen
        result = {
            SM_ROLE: self.role,
            SM_PERIOD_S: (now_ms - self._interval_start) // 1000,
            SM_OCCUPIED_DS: self._occ_ms // 100,
            SM_EPISODES: self._visits,
            SM_DWELL_DS_MAX: self._dwell_max_ms // 100,
            SM_FAULTS: self._faults_interval,
        }
        self._reset_interval(now_ms)
        return result

    def busy(self):
        """Someone is there now (a visit in progress)."""
        return self._active

    def reading(self):
        return {
            "raw": self._raw,
            "state": "fault" if self._in_fault else ("visit" if self._active else "idle"),
            "faults": self.faults,
        }


class PirSource:
    """A PIR module's output pin: high while it sees motion (active_high)."""

    def __init__(self, pin, active_high=True):
        self._pin = pin
        self._active = 1 if active_high else 0

    def read(self):
        return self._pin.value() == self._active


class RadarSource:
    """An HLK-LD2410 on a UART: present when it reports a target with enough energy.

    ``read()`` drains what the UART holds; with no report for ``stale_reads``
    calls in a row it returns None (the radar stopped talking: a fault).
    """

    def __init__(self, uart, parser, min_energy=20, stale_reads=50):
        _check("min_energy", min_energy, 0)
        _check("stale_reads", stale_reads, 1)
        self._uart = uart
        self._parser = parser
        self._min_energy = min_energy
        self._stale_reads = stale_reads
        self._quiet = stale_reads  # None until the first report
        self._present = False

    def read(self):
        data = self._uart.read()
        reports = self._parser.feed(data) if data else None
        if reports:
            self._quiet = 0
            state, _move_cm, move_energy, _still_cm, still_energy, _detect_cm = reports[-1]
            if state == 1:
                energy = move_energy
            elif state == 2:
                energy = still_energy
            elif state == 3:
                energy = move_energy if move_energy > still_energy else still_energy
            else:
                energy = -1
            self._present = energy >= self._min_energy
        else:
            self._quiet += 1
        if self._quiet >= self._stale_reads:
            return None
        return self._present


class TofSource:
    """A VL53L0X looking across the room: present when something is nearer than near_mm.

    It turns absent only past ``near_mm + hysteresis_mm``, so a person standing
    at the edge does not flicker. A bus error reads as None.
    """

    def __init__(self, sensor, near_mm=800, hysteresis_mm=100):
        _check("near_mm", near_mm, 1)
        _check("hysteresis_mm", hysteresis_mm, 0)
        self._sensor = sensor
        self._near_mm = near_mm
        self._far_mm = near_mm + hysteresis_mm
        self._present = False
        self.distance_mm = None

    def read(self):
        try:
            mm = self._sensor.distance_mm()
        except OSError:
            return None
        self.distance_mm = mm
        if mm <= 0 or mm >= _NO_TARGET_MM:
            self._present = False
        elif mm < self._near_mm:
            self._present = True
        elif mm > self._far_mm:
            self._present = False
        return self._present
