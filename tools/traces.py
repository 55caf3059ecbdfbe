"""Sensor traces with their ground truth, for the extractor tests (not a test module).

Every trace comes from a plan drawn from a seeded Park-Miller generator of our
own, so it is the same on every run and every port. The truth returned is the
plan itself (when a person sat down, when the load was gone, how many pulses
were sent), never anything measured from the samples.
"""

_MODULUS = 2147483647  # 2**31 - 1: minstd, products stay below 2**47


class Lcg:
    def __init__(self, seed):
        self.state = seed % (_MODULUS - 1) + 1

    def next(self):
        self.state = self.state * 48271 % _MODULUS
        return self.state

    def between(self, low, high):
        """An int in low..high, both included."""
        return low + self.next() % (high - low + 1)

    def chance(self, one_in):
        return self.next() % one_in == 0


class Sink:
    """Collects what an extractor reports: events and urgents as (start_ms, ev)."""

    def __init__(self):
        self.events = []
        self.urgents = []

    def event(self, start_ms, ev):
        self.events.append((start_ms, ev))

    def urgent(self, start_ms, ev):
        self.urgents.append((start_ms, ev))

    def of_type(self, et):
        return [(s, ev) for s, ev in self.events if ev[1] == et]


def pairs(found, truth):
    """found[i], truth[i] side by side; the lengths must agree (MicroPython's
    zip has no strict=)."""
    if len(found) != len(truth):
        raise AssertionError("found %d, the truth has %d" % (len(found), len(truth)))
    return [(found[i], truth[i]) for i in range(len(found))]


def drive(gen, feed):
    """Feeds every (t_ms, value) of ``gen`` to ``feed``; returns the generator's truth."""
    try:
        while True:
            t, value = next(gen)
            feed(t, value)
    except StopIteration as stop:
        return stop.value


# --- seat and bed: (start_ms, end_ms, rise_ms, restless) per episode

SIT_DOWN_MS = 800


def _plan(rng, count, t0, gap_s, sit_s, level, rise_ms, moves, amp, dips):
    """Episodes: (start, end, rise, level, [(move start, move ms, offset)], restless)."""
    plan = []
    t = t0
    for _ in range(count):
        start = t + 1000 * rng.between(gap_s[0], gap_s[1])
        sit_ms = 1000 * rng.between(sit_s[0], sit_s[1])
        end = start + sit_ms
        rise = rng.between(rise_ms[0], rise_ms[1])
        lvl = rng.between(level[0], level[1])
        shifts = []
        k = rng.between(moves[0], moves[1])
        quiet_from = start + 10000
        quiet_to = end - rise - 10000
        if k and quiet_to - quiet_from > k * 8000:
            slot = (quiet_to - quiet_from) // k
            for i in range(k):
                ms = rng.between(1500, 3000)
                at = quiet_from + i * slot + rng.between(0, slot - ms - 4000)
                if dips and i == 0:
                    offset = -lvl  # lifts off the seat entirely for a moment
                else:
                    offset = rng.between(amp[0], amp[1]) * (1 if rng.chance(2) else -1)
                shifts.append((at, ms, offset))
        else:
            k = 0
        plan.append((start, end, rise, lvl, shifts, k))
        t = end
    return plan


def _load(ep, t):
    start, end, rise, lvl, shifts, _k = ep
    if t < start or t >= end:
        return 0
    if t < start + SIT_DOWN_MS:
        return lvl * (t - start) // SIT_DOWN_MS
    if t >= end - rise:
        return lvl * (end - t) // rise
    for at, ms, offset in shifts:
        if at <= t < at + ms:
            return lvl + offset
    return lvl


def _render(rng, plan, total_ms, sample_ms, base, drift, noise, spike_one_in, to_raw):
    i = 0
    t = 0
    while t < total_ms:
        while i < len(plan) and t >= plan[i][1]:
            i += 1
        load = _load(plan[i], t) if i < len(plan) else 0
        # A slow triangle (period 4 h) of baseline drift.
        phase = (t // 1000) % 14400
        wander = drift * (phase if phase < 7200 else 14400 - phase) // 7200
        value = base + wander + load + rng.between(-noise, noise)
        if spike_one_in and rng.chance(spike_one_in):
            value += rng.between(500, 900) * (1 if rng.chance(2) else -1)
        yield t, to_raw(value)
        t += sample_ms


def _adc(value):
    return 1 if value < 1 else (4094 if value > 4094 else value)


def seat_trace(
    seed, episodes=4, noise=20, sample_ms=100, spikes=0, drift=0, dips=False, sit_s=(60, 900),
    gap_s=(60, 600),
):
    """FSR on the 12-bit ADC: empty seat about 300 counts, a person 1200..2000 more.

    ``spikes``: one single-sample spike in that many samples. ``dips``: the
    first restless movement of each episode lifts off the seat entirely.
    Yields (t_ms, adc); returns [(start_ms, end_ms, rise_ms, restless)].
    """
    rng = Lcg(seed)
    plan = _plan(
        rng, episodes, 30000, gap_s, sit_s, (1200, 2000), (800, 5000), (0, 3), (450, 650), dips
    )
    total = plan[-1][1] + 120000 if plan else 3600000
    yield from _render(rng, plan, total, sample_ms, 300, drift, noise, spikes, _adc)
    return [(p[0], p[1], p[2], p[5]) for p in plan]


BED_SCALE = 64
BED_OFFSET = -40000  # HX711 counts with the bed empty


def _hx711(value):
    raw = BED_OFFSET + value * BED_SCALE
    return raw


def bed_trace(seed, trips=3, noise=30, sample_ms=100):
    """A night on a load cell through an HX711 (raw signed counts; scale 64).

    In bed after 3..15 minutes, then ``trips`` trips out of bed of 3..15 minutes, then up
    for the day. Loads are 5000..8000 scaled counts, turning over shifts them
    by 1500..2500. Yields (t_ms, raw); returns (episodes, outs) with episodes
    as for seat_trace and outs [(start_ms, end_ms)] of the trips.
    """
    rng = Lcg(seed)
    plan = _plan(
        rng, trips + 1, 0, (180, 900), (1800, 7200), (5000, 8000), (1500, 6000), (3, 6),
        (1500, 2500), False,
    )
    total = plan[-1][1] + 300000
    yield from _render(rng, plan, total, sample_ms, 0, 0, noise, 0, _hx711)
    episodes = [(p[0], p[1], p[2], p[5]) for p in plan]
    outs = [(plan[i][1], plan[i + 1][0]) for i in range(len(plan) - 1)]
    return episodes, outs


def constant_trace(value, total_ms, sample_ms=100, t0=0):
    """The same reading throughout: an unplugged (0) or shorted (4095) sensor."""
    t = t0
    while t < t0 + total_ms:
        yield t, value
        t += sample_ms
    return []


def garbage_trace(seed, total_ms, sample_ms=100):
    """Readings no sensor gives: out of range, negative, floats, None."""
    rng = Lcg(seed)
    choices = (None, -7, 99999, 2.5, "x", -(2**40), 5000)
    t = 0
    while t < total_ms:
        yield t, choices[rng.between(0, len(choices) - 1)]
        t += sample_ms
    return []


# --- water: draws from pulse timestamps


def _pulse_times(segments):
    """Pulse times in microseconds, in order, for (start_us, count, period_us)."""
    for start_us, count, period_us in segments:
        for k in range(count):
            yield start_us + k * period_us


def flow_trace(
    seed, draws=5, pulses_per_l=450, sample_ms=250, counter_bits=32, start_count=0,
    flow_ml_min=(2000, 9000), dur_s=(5, 90), drips=0, leak_s=0, tail_s=60,
):
    """Cumulative pulse counter readings every sample_ms.

    Each draw runs at a steady flow; a pulse comes every 60e9 / (flow * ppl)
    microseconds. ``drips`` isolated single pulses 20..60 s apart follow the
    draws, then a leak of ``leak_s`` seconds at one pulse every 3 s.
    Yields (t_ms, counter); returns (draws, drips_pulses, leak) with draws as
    [(start_ms, end_ms, pulses, flow_ml_min)] (first and last pulse) and leak
    as (start_ms, pulses) or None.
    """
    rng = Lcg(seed)
    segments = []
    truth = []
    t_us = 20000000
    for _ in range(draws):
        t_us += 1000 * rng.between(20000, 300000)
        flow = rng.between(flow_ml_min[0], flow_ml_min[1])
        period = 60000000000 // (flow * pulses_per_l)
        count = 1000000 * rng.between(dur_s[0], dur_s[1]) // period + 1
        segments.append((t_us, count, period))
        last = t_us + (count - 1) * period
        truth.append((t_us // 1000, last // 1000, count, flow))
        t_us = last
    for _ in range(drips):
        t_us += 1000000 * rng.between(20, 60)
        segments.append((t_us, 1, 1))
    leak = None
    if leak_s:
        t_us += 120000000
        count = leak_s // 3 + 1
        segments.append((t_us, count, 3000000))
        leak = (t_us // 1000, count)
        t_us += (count - 1) * 3000000
    end_ms = t_us // 1000 + 1000 * tail_s
    mask = (1 << counter_bits) - 1
    pulses = _pulse_times(segments)
    upcoming = next(pulses, None)
    counted = 0
    t = 0
    while t <= end_ms:
        while upcoming is not None and upcoming <= t * 1000:
            counted += 1
            upcoming = next(pulses, None)
        yield t, (start_count + counted) & mask
        t += sample_ms
    return truth, drips, leak


# --- presence: visits seen by a PIR that drops out when the person is still


def presence_trace(seed, visits=5, sample_ms=250, still_s=(5, 40), blips=0, dwell_s=(30, 900)):
    """present True/False every sample_ms.

    Within a visit the PIR drops out for still spells of ``still_s`` seconds
    (shorter than the hold), but it sees the first and last moments. ``blips``
    (at most 2) false triggers of one second each come between visits, more
    than a 60 s hold apart from each other and from the visits.
    Yields (t_ms, present); returns [(start_ms, end_ms)] of the visits.
    """
    rng = Lcg(seed)
    plan = []
    t = 0
    for _ in range(visits):
        start = t + 1000 * rng.between(300, 3600)
        end = start + 1000 * rng.between(dwell_s[0], dwell_s[1])
        # Start and end on sample times, as the truth of when it was seen.
        start -= start % sample_ms
        end -= end % sample_ms
        gaps = []
        g = start + 3000
        while True:
            g += 1000 * rng.between(10, 60)
            ms = 1000 * rng.between(still_s[0], still_s[1])
            if g + ms >= end - 3000:
                break
            gaps.append((g, g + ms))
            g += ms
        blip = []
        for k in range(blips):
            # Further apart than the hold, and from the visits.
            b = t + 1000 * (60 + 90 * k + rng.between(0, 20))
            blip.append((b, b + 1000))
        plan.append((start, end, gaps, blip))
        t = end + 120000  # well beyond any hold
    total = t + 120000
    i = 0
    t = 0
    while t < total:
        while i < len(plan) and t > plan[i][1]:
            i += 1
        present = False
        if i < len(plan):
            start, end, gaps, blip = plan[i]
            if start <= t <= end:
                present = True
                for a, b in gaps:
                    if a <= t < b:
                        present = False
            for a, b in blip:
                if a <= t < b:
                    present = True
        yield t, present
        t += sample_ms
    return [(p[0], p[1]) for p in plan]


# --- LD2410 byte streams


def ld2410_frame(state, move_cm, move_energy, still_cm, still_energy, detect_cm):
    """One basic report frame, laid out as HLK's serial protocol note gives it."""
    data = bytes(
        [
            0x02, 0xAA, state,
            move_cm & 0xFF, move_cm >> 8, move_energy,
            still_cm & 0xFF, still_cm >> 8, still_energy,
            detect_cm & 0xFF, detect_cm >> 8,
            0x55, 0x00,
        ]
    )
    return b"\xf4\xf3\xf2\xf1" + bytes([len(data), 0]) + data + b"\xf8\xf7\xf6\xf5"


def ld2410_stream(seed, frames=40, garbage=True, corrupt=0):
    """(chunks, reports, broken): the bytes of ``frames`` reports cut at random.

    Between frames there may be random garbage (never 0xF4, so it cannot start
    a header by chance). ``corrupt`` frames are broken on purpose (cut in
    half with the rest lost, a wrong tail byte, a wrong inner marker); they
    are not in ``reports``, and ``broken`` counts them.
    """
    rng = Lcg(seed)
    stream = bytearray()
    reports = []
    broken = 0
    for i in range(frames):
        report = (
            rng.between(0, 3), rng.between(0, 600), rng.between(0, 100),
            rng.between(0, 600), rng.between(0, 100), rng.between(0, 600),
        )
        frame = ld2410_frame(*report)
        if corrupt and i % (frames // corrupt) == 1 and broken < corrupt:
            broken += 1
            kind = broken % 3
            if kind == 0:
                frame = frame[: rng.between(7, len(frame) - 2)]
            elif kind == 1:
                frame = frame[:-1] + b"\x00"
            else:
                frame = frame[:7] + b"\xab" + frame[8:]
        else:
            reports.append(report)
        stream += frame
        if garbage and rng.chance(3):
            for _ in range(rng.between(1, 12)):
                stream.append(rng.between(0, 0xF3))
    chunks = []
    at = 0
    while at < len(stream):
        n = rng.between(1, 40)
        chunks.append(bytes(stream[at : at + n]))
        at += n
    return chunks, reports, broken


def allocated(fn, *args):
    """Bytes of heap fn(*args) allocates, with the collector held off while it runs."""
    import gc

    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        fn(*args)
        return gc.mem_alloc() - before
    finally:
        gc.enable()


# --- heart rate: notifications of a BLE Heart Rate Measurement (0x2A37)


def hrm_payload(bpm, contact=None, rr=(), energy_kj=None, wide=False):
    """The bytes of one 0x2A37 notification, laid out as the Heart Rate Service
    specification gives them: flags, rate (uint8, or uint16 LE when ``wide``),
    energy expended (uint16 LE) when given, RR intervals (uint16 LE, 1/1024 s).
    ``contact`` None: the sensor cannot tell (bits 1-2 clear)."""
    flags = 0
    if wide:
        flags |= 0x01
    if contact is not None:
        flags |= 0x04 | (0x02 if contact else 0)
    if energy_kj is not None:
        flags |= 0x08
    if rr:
        flags |= 0x10
    out = bytearray([flags])
    out += bytes([bpm & 0xFF, bpm >> 8]) if wide else bytes([bpm])
    if energy_kj is not None:
        out += bytes([energy_kj & 0xFF, energy_kj >> 8])
    for v in rr:
        out += bytes([v & 0xFF, v >> 8])
    return bytes(out)


HR_WORN = ("rest", "exercise", "recover", "high", "low")


def hr_trace(seed, plan, period_ms=1000, t0=0, wide=False):
    """A wearable's notifications through ``plan``: [(kind, seconds, bpm)].

    kind: ``rest`` (bpm +- 2), ``exercise`` (bpm +- 4, and the node's seat or
    stairs say moving), ``recover`` (from the previous rate down to bpm in a
    straight line, not moving), ``high`` / ``low`` (bpm +- 3, not moving),
    ``dropout`` (worn, nothing received: out of range or reconnecting),
    ``off`` (strap taken off: it reports no skin contact and rate 0). One
    notification every ``period_ms`` with the RR intervals of the beats in it.
    Yields (t_ms, (payload or None, moving)); returns the plan with its start
    times: [(kind, start_ms, end_ms, bpm)].
    """
    rng = Lcg(seed)
    t = t0
    prev = 70
    timed = []
    for kind, seconds, bpm in plan:
        end = t + 1000 * seconds
        start = t
        timed.append((kind, start, end, bpm))
        while t < end:
            moving = kind == "exercise"
            if kind == "dropout":
                yield t, (None, False)
            elif kind == "off":
                yield t, (hrm_payload(0, contact=False, wide=wide), False)
            else:
                if kind == "recover":
                    level = prev + (bpm - prev) * (t - start) // (end - start)
                    jitter = 1
                else:
                    level = bpm
                    jitter = {"rest": 2, "exercise": 4}.get(kind, 3)
                rate = level + rng.between(-jitter, jitter)
                beats = (rate * period_ms + 30000) // 60000
                rr = [61440 // rate] * (beats if beats > 0 else 1)
                yield t, (hrm_payload(rate, contact=True, rr=rr, wide=wide), moving)
            t += period_ms
        if kind not in ("dropout", "off"):
            prev = bpm
    return timed
