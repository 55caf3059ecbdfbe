"""Heart rate from a wearable (a chest strap or watch over BLE), summarised on the node.

``parse_measurement(data, sample)`` reads one notification of the standard
Heart Rate Measurement characteristic (0x2A37) into a reusable HrSample;
``HeartRateExtractor.feed(t_ms, sample)`` takes it. No beat leaves the node:
per summary interval it reports

* SM_HR_REST_BPM: the median rate of the calm minutes. A minute is calm when
  it had at least half its expected measurements, all on the skin, and no
  movement was reported (``moving(t_ms, True)`` from a seat or stairs role on
  the same node) during it or ``settle_ms`` before it: a rate still coming
  down after the stairs is no resting rate. The median, so a few minutes of
  unreported effort do not move it. Absent when there was no calm minute.
* SM_HR_MEAN_BPM: the mean of every minute worn, calm or not.
* SM_HR_WEAR_S: time the sensor was on the skin: between two on-skin
  measurements at most ``gap_ms`` apart (a short radio dropout with the strap
  still on counts, a strap taken off or out of range does not).
* SM_HR_QUALITY_PM: good measurements received per mille of those expected
  (one every ``expected_ms``) over the wear time.
* SM_FAULTS: measurements that could be no heart rate (above 250 bpm).

A rate at or above ``high_bpm`` (or at or below ``low_bpm``) for ``sustain_ms``
goes out at once as an urgent ET_HR_HIGH (ET_HR_LOW) with its mean rate and
how long it has lasted, once per run; a run ends after ``clear_ms`` without
such a reading. Readings while moving count for a high run too: a rate this
high is for someone to look at whatever the cause.

Fixed state only: per-minute sums and a 256-bin histogram of calm minutes,
allocated once; feed() allocates nothing.
"""

from array import array

from micropython import const

from kinsight_wire import (
    ET_HR_HIGH,
    ET_HR_LOW,
    EV_DURATION_DS,
    EV_HR_BPM,
    EV_ROLE,
    EV_TYPE,
    ROLE_HEART_RATE,
    SM_FAULTS,
    SM_HR_MEAN_BPM,
    SM_HR_QUALITY_PM,
    SM_HR_REST_BPM,
    SM_HR_WEAR_S,
    SM_PERIOD_S,
    SM_ROLE,
)

RR_MAX = const(16)  # RR intervals kept from one notification (9 fit a 23-byte ATT MTU)
_MINUTE_MS = const(60000)
_MAX_BPM = const(250)
_RR_UNITS_PER_MIN = const(61440)  # RR intervals are in 1/1024 s

_FLAG_UINT16 = const(0x01)
_FLAG_CONTACT_DETECTED = const(0x02)
_FLAG_CONTACT_SUPPORTED = const(0x04)
_FLAG_ENERGY = const(0x08)
_FLAG_RR = const(0x10)


class HrSample:
    """One measurement: bpm, contact (True, False, or None when the sensor
    cannot tell), energy_kj (or None) and rr_count RR intervals in rr
    (1/1024 s). Reused for every notification."""

    def __init__(self):
        self.bpm = 0
        self.contact = None
        self.energy_kj = None
        self.rr = array("H", bytes(2 * RR_MAX))
        self.rr_count = 0
        self.rr_dropped = 0

    def set(self, bpm, contact=None, rr=()):
        """Fills the sample by hand (traces and the fake radio's tests)."""
        self.bpm = bpm
        self.contact = contact
        self.energy_kj = None
        n = 0
        for v in rr:
            if n < RR_MAX:
                self.rr[n] = v
                n += 1
        self.rr_count = n
        return self


def parse_measurement(data, sample, n=-1):
    """Reads a Heart Rate Measurement (GATT 0x2A37) payload (its first n bytes,
    all when n < 0: a reused buffer needs no slice) into sample.

    Layout (Bluetooth SIG Heart Rate Service 1.0, 3.1): flags byte; bpm as
    uint8, or uint16 little-endian when flags bit 0; energy expended uint16 kJ
    when bit 3; then, when bit 4, RR intervals as uint16 1/1024 s to the end.
    Contact status is bits 1-2 (bit 2: supported, bit 1: detected). RR
    intervals beyond RR_MAX are counted in rr_dropped. Raises ValueError on a
    payload that does not fit its flags.
    """
    if n < 0:
        n = len(data)
    if n < 2:
        raise ValueError("heart rate measurement: %d bytes" % n)
    flags = data[0]
    if flags & _FLAG_UINT16:
        if n < 3:
            raise ValueError("heart rate measurement: uint16 rate in %d bytes" % n)
        bpm = data[1] | data[2] << 8
        at = 3
    else:
        bpm = data[1]
        at = 2
    if flags & _FLAG_CONTACT_SUPPORTED:
        contact = bool(flags & _FLAG_CONTACT_DETECTED)
    else:
        contact = None
    energy = None
    if flags & _FLAG_ENERGY:
        if at + 2 > n:
            raise ValueError("heart rate measurement: energy field cut short")
        energy = data[at] | data[at + 1] << 8
        at += 2
    count = 0
    dropped = 0
    if flags & _FLAG_RR:
        if (n - at) & 1:
            raise ValueError("heart rate measurement: odd RR bytes")
        rr = sample.rr
        while at < n:
            if count < RR_MAX:
                rr[count] = data[at] | data[at + 1] << 8
                count += 1
            else:
                dropped += 1
            at += 2
    elif at != n:
        raise ValueError("heart rate measurement: %d bytes after the fields" % (n - at))
    sample.bpm = bpm
    sample.contact = contact
    sample.energy_kj = energy
    sample.rr_count = count
    sample.rr_dropped = dropped
    return sample


def _check(name, value, low):
    if type(value) is not int or value < low:
        raise ValueError("%s must be an int >= %d, not %r" % (name, low, value))


class HeartRateExtractor:
    def __init__(
        self,
        sink,
        role=ROLE_HEART_RATE,
        expected_ms=1000,
        gap_ms=30000,
        settle_ms=300000,
        high_bpm=140,
        low_bpm=40,
        sustain_ms=600000,
        clear_ms=60000,
        source=None,
    ):
        for name, value, low in (
            ("expected_ms", expected_ms, 1),
            ("gap_ms", gap_ms, 1),
            ("settle_ms", settle_ms, 0),
            ("high_bpm", high_bpm, 1),
            ("low_bpm", low_bpm, 1),
            ("sustain_ms", sustain_ms, 1),
            ("clear_ms", clear_ms, 1),
        ):
            _check(name, value, low)
        if low_bpm >= high_bpm:
            raise ValueError("low_bpm %d must be below high_bpm %d" % (low_bpm, high_bpm))
        self._sink = sink
        self.role = role
        self._expected_ms = expected_ms
        self._gap_ms = gap_ms
        self._settle_ms = settle_ms
        self._high = high_bpm
        self._low = low_bpm
        self._sustain_ms = sustain_ms
        self._clear_ms = clear_ms
        self._calm = array("H", bytes(2 * 256))  # calm minutes by rate (bpm)
        self._last_on = None  # t of the last on-skin measurement
        self._moved_ms = None
        self._minute = None  # index (t // 60 s) of the minute being summed
        self._m_sum = 0
        self._m_n = 0
        self._m_rr_sum = 0
        self._m_rr_n = 0
        self._m_off = False
        self._m_moved = False
        # Runs of very high / very low rate: [start, last, sum, n, sent]
        self._hi_start = self._lo_start = None
        self._hi_last = self._lo_last = 0
        self._hi_sum = self._lo_sum = 0
        self._hi_n = self._lo_n = 0
        self._hi_sent = self._lo_sent = False
        self.bpm = None
        self.faults = 0
        self.mover = None  # () -> True while another sensor of the node sees movement
        self.source = source  # the wearable's link (wearable.py), for the field tools' readings
        self._reset_interval(0)

    def _reset_interval(self, now_ms):
        self._interval_start = now_ms
        self._wear_ms = 0
        self._good = 0
        self._worn_min = 0
        self._worn_sum = 0
        self._calm_n = 0
        self._faults_interval = 0
        calm = self._calm
        for i in range(256):
            calm[i] = 0

    def moving(self, t_ms, moving):
        """The node's own movement sensors: True while the person is up and about."""
        if moving:
            self._moved_ms = t_ms
            self._m_moved = True

    def feed(self, t_ms, sample):
        mover = self.mover
        if mover is not None and mover():
            self.moving(t_ms, True)
        if sample is None:  # nothing arrived since the last read
            return
        minute = t_ms // _MINUTE_MS
        if minute != self._minute:
            self._close_minute()
            self._minute = minute
            moved = self._moved_ms
            self._m_moved = moved is not None and moved >= minute * _MINUTE_MS - self._settle_ms
        bpm = sample.bpm
        # A strap off the skin says so, or (when it cannot tell) sends 0.
        if sample.contact is False or bpm == 0:
            self._m_off = True
            self._last_on = None
            self._end_runs()
            self.bpm = None
            return
        if bpm < 0 or bpm > _MAX_BPM:
            self.faults += 1
            self._faults_interval += 1
            self.bpm = None
            return
        self.bpm = bpm
        last = self._last_on
        if last is not None and 0 < t_ms - last <= self._gap_ms:
            self._wear_ms += t_ms - last
        self._last_on = t_ms
        self._good += 1
        self._m_sum += bpm
        self._m_n += 1
        rr = sample.rr
        for i in range(sample.rr_count):
            self._m_rr_sum += rr[i]
        self._m_rr_n += sample.rr_count
        self._run(t_ms, bpm)

    def _run(self, t_ms, bpm):
        clear = self._clear_ms
        if self._hi_start is not None and t_ms - self._hi_last > clear:
            self._hi_start = None
        if self._lo_start is not None and t_ms - self._lo_last > clear:
            self._lo_start = None
        if bpm >= self._high:
            if self._hi_start is None:
                self._hi_start = t_ms
                self._hi_sum = self._hi_n = 0
                self._hi_sent = False
            self._hi_last = t_ms
            self._hi_sum += bpm
            self._hi_n += 1
            if not self._hi_sent and t_ms - self._hi_start >= self._sustain_ms:
                self._hi_sent = True
                self._urgent(ET_HR_HIGH, self._hi_start, t_ms, self._hi_sum, self._hi_n)
        elif bpm <= self._low:
            if self._lo_start is None:
                self._lo_start = t_ms
                self._lo_sum = self._lo_n = 0
                self._lo_sent = False
            self._lo_last = t_ms
            self._lo_sum += bpm
            self._lo_n += 1
            if not self._lo_sent and t_ms - self._lo_start >= self._sustain_ms:
                self._lo_sent = True
                self._urgent(ET_HR_LOW, self._lo_start, t_ms, self._lo_sum, self._lo_n)

    def _urgent(self, et, start, t_ms, total, n):
        ev = {EV_TYPE: et, EV_ROLE: self.role, EV_DURATION_DS: (t_ms - start) // 100}
        ev[EV_HR_BPM] = (2 * total + n) // (2 * n)
        self._sink.urgent(start, ev)

    def _end_runs(self):
        # Off the skin, a run is over: a strap put back on starts a new one.
        self._hi_start = None
        self._lo_start = None

    def _close_minute(self):
        n = self._m_n
        if n:
            if self._m_rr_n:
                rate = (_RR_UNITS_PER_MIN * self._m_rr_n + self._m_rr_sum // 2) // self._m_rr_sum
            else:
                rate = (2 * self._m_sum + n) // (2 * n)
            if rate > 255:
                rate = 255
            self._worn_min += 1
            self._worn_sum += rate
            if (
                not self._m_off
                and not self._m_moved
                and 2 * n * self._expected_ms >= _MINUTE_MS
            ):
                self._calm[rate] += 1
                self._calm_n += 1
        self._m_sum = self._m_n = 0
        self._m_rr_sum = self._m_rr_n = 0
        self._m_off = False

    def _rest_bpm(self):
        half = (self._calm_n + 1) // 2
        seen = 0
        calm = self._calm
        for bpm in range(256):
            seen += calm[bpm]
            if seen >= half:
                return bpm
        return None

    def summary(self, now_ms):
        # The minute in progress counts in the interval it ends in.
        result = {
            SM_ROLE: self.role,
            SM_PERIOD_S: (now_ms - self._interval_start) // 1000,
            SM_HR_WEAR_S: self._wear_ms // 1000,
            SM_FAULTS: self._faults_interval,
        }
        expected = self._wear_ms // self._expected_ms
        if expected:
            pm = 1000 * self._good // expected
            result[SM_HR_QUALITY_PM] = 1000 if pm > 1000 else pm
        else:
            result[SM_HR_QUALITY_PM] = 0
        if self._calm_n:
            result[SM_HR_REST_BPM] = self._rest_bpm()
        if self._worn_min:
            result[SM_HR_MEAN_BPM] = (2 * self._worn_sum + self._worn_min) // (2 * self._worn_min)
        self._reset_interval(now_ms)
        return result

    def reading(self):
        out = {"bpm": self.bpm, "worn": self._last_on is not None, "faults": self.faults}
        source = self.source
        if source is not None:
            out["connected"] = source.connected
            out["received"] = source.received
        return out
