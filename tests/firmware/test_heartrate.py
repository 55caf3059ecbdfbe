"""HeartRateExtractor and the 0x2A37 parser, against wearable traces whose truth is their plan."""

from heartrate import HeartRateExtractor, HrSample, parse_measurement
from kinsight_wire import (
    ET_HR_HIGH,
    ET_HR_LOW,
    EV_DURATION_DS,
    EV_HR_BPM,
    EV_TYPE,
    SM_FAULTS,
    SM_HR_MEAN_BPM,
    SM_HR_QUALITY_PM,
    SM_HR_REST_BPM,
    SM_HR_WEAR_S,
    SM_PERIOD_S,
)
from runner import eq, mentions, raises
from traces import HR_WORN, Sink, allocated, drive, hr_trace, hrm_payload

# Allocation over 10 000 notifications parsed and fed: the state is ints and
# two preallocated arrays; a leak of one 16-byte block per 100 would show as
# 1600 bytes.
ALLOC_BOUND = 256
GAP_MS = 30000


def near(got, want, tol, what):
    if got is None or abs(got - want) > tol:
        raise AssertionError("%s: got %r, want %d +- %d" % (what, got, want, tol))


def run(plan, seed=1, use_moving=True, **kw):
    sink = Sink()
    ex = HeartRateExtractor(sink, **kw)
    sample = HrSample()

    def feed(t, value):
        payload, moving = value
        if use_moving:
            ex.moving(t, moving)
        if payload is not None:
            ex.feed(t, parse_measurement(payload, sample))

    timed = drive(hr_trace(seed, plan), feed)
    end = timed[-1][2]
    return sink, ex.summary(end), timed


def worn_truth(timed):
    """Wear in ms by the plan: worn segments, and dropouts short enough to be
    the same wearing; and the notifications received while worn."""
    wear = 0
    received = 0
    for i, (kind, start, end, _bpm) in enumerate(timed):
        if kind in HR_WORN:
            wear += end - start
            received += (end - start) // 1000
        elif kind == "dropout" and end - start < GAP_MS:
            before = i > 0 and timed[i - 1][0] in HR_WORN
            after = i + 1 < len(timed) and timed[i + 1][0] in HR_WORN
            if before and after:
                wear += end - start
    return wear, received


def test_resting_rate_comes_from_the_calm_minutes():
    plan = [("rest", 600, 62), ("exercise", 1500, 115), ("recover", 300, 62), ("rest", 480, 63)]
    for seed in (1, 2, 3):
        sink, sm, timed = run(plan, seed)
        near(sm[SM_HR_REST_BPM], 62, 2, "seed %d: resting" % seed)
        wear, received = worn_truth(timed)
        near(1000 * sm[SM_HR_WEAR_S], wear, 5000, "wear")
        near(sm[SM_HR_QUALITY_PM], 1000, 5, "quality, nothing lost")
        # Mean of every worn minute: (10*62 + 25*115 + 5*~65 + 8*63) / 48
        near(sm[SM_HR_MEAN_BPM], (10 * 62 + 25 * 115 + 5 * 70 + 8 * 63) // 48, 3, "mean")
        eq(sm[SM_PERIOD_S], timed[-1][2] // 1000, "period")
        eq(sink.urgents, [], "115 bpm while moving is no alarm")
    # Without the node's movement input the same trace's "rest" is the effort.
    _, blind, _ = run(plan, 1, use_moving=False)
    if blind[SM_HR_REST_BPM] < 100:
        raise AssertionError("without movement, median %d: the input was not needed"
                             % blind[SM_HR_REST_BPM])


def test_a_rate_still_coming_down_after_effort_is_no_resting_rate():
    plan = [("rest", 300, 60), ("exercise", 600, 120), ("recover", 600, 60), ("rest", 120, 60)]
    _, sm, _ = run(plan)
    near(sm[SM_HR_REST_BPM], 60, 2, "the recovery's first settle_ms left out")
    _, hasty, _ = run(plan, settle_ms=0)
    if hasty[SM_HR_REST_BPM] < 66:
        raise AssertionError("with no settling time, resting %d: settle_ms was not needed"
                             % hasty[SM_HR_REST_BPM])


def test_dropouts_and_reconnects_count_in_wear_and_quality():
    plan = [("rest", 600, 70), ("dropout", 10, 0), ("rest", 300, 71), ("dropout", 300, 0),
            ("rest", 300, 70)]
    sink, sm, timed = run(plan)
    wear, received = worn_truth(timed)
    near(1000 * sm[SM_HR_WEAR_S], wear, 5000, "wear: short gap in, long gap out")
    eq(wear, 1210000, "truth")
    near(sm[SM_HR_QUALITY_PM], 1000 * received * 1000 // wear, 5, "quality")
    near(sm[SM_HR_REST_BPM], 70, 2, "resting")
    eq(sink.urgents, [], "urgents")


def test_a_strap_taken_off_is_not_worn():
    plan = [("rest", 600, 66), ("off", 1800, 0), ("rest", 600, 68)]
    sink, sm, timed = run(plan)
    wear, _ = worn_truth(timed)
    near(1000 * sm[SM_HR_WEAR_S], wear, 5000, "wear")
    near(sm[SM_HR_REST_BPM], 67, 2, "resting")
    eq(sm[SM_FAULTS], 0, "off is no fault")
    near(sm[SM_HR_QUALITY_PM], 1000, 5, "quality over the wear")
    # The same with a sensor that cannot tell contact: it sends rate 0 instead.
    sink = Sink()
    ex = HeartRateExtractor(sink)
    s = HrSample()
    for t in range(0, 1200000, 1000):
        ex.feed(t, s.set(0 if 300000 <= t < 900000 else 60))
    near(ex.summary(1200000)[SM_HR_WEAR_S], 600, 3, "rate 0 is not worn")


def test_sustained_very_high_and_low_rates_are_urgent_once():
    plan = [("rest", 300, 70), ("high", 720, 170), ("rest", 300, 70), ("high", 420, 170),
            ("rest", 300, 70), ("exercise", 1200, 130), ("low", 700, 35), ("rest", 60, 60)]
    sink, sm, timed = run(plan)
    eq([ev[EV_TYPE] for _, ev in sink.urgents], [ET_HR_HIGH, ET_HR_LOW], "urgents")
    (h_start, high), (l_start, low) = sink.urgents
    near(h_start, timed[1][1], 1000, "high starts")
    near(100 * high[EV_DURATION_DS], 600000, 1000, "sent at 10 minutes")
    near(high[EV_HR_BPM], 170, 1, "high rate")
    near(l_start, timed[6][1], 1000, "low starts")
    near(low[EV_HR_BPM], 35, 1, "low rate")
    eq(sink.events, [], "no other events")
    # Thresholds and duration come from the config.
    sink, _, _ = run(plan, high_bpm=125, sustain_ms=300000)
    eq([ev[EV_TYPE] for _, ev in sink.urgents], [ET_HR_HIGH, ET_HR_HIGH, ET_HR_HIGH, ET_HR_LOW],
       "with 125 bpm for 5 minutes the shorter run and the exercise count too")


def test_a_run_broken_by_the_strap_coming_off_starts_again():
    plan = [("high", 400, 160), ("off", 60, 0), ("high", 400, 160)]
    sink, _, _ = run(plan)
    eq(sink.urgents, [], "two runs of 6.7 minutes are not one of 10")


def test_parser_reads_real_layouts():
    s = HrSample()
    # A chest strap's notification: rate uint8, contact detected, one RR.
    parse_measurement(b"\x16\x3c\x2d\x03", s)
    eq((s.bpm, s.contact, s.energy_kj, s.rr_count, s.rr[0]), (60, True, None, 1, 813), "strap")
    # uint16 rate, energy expended, two RR, no contact support.
    parse_measurement(b"\x19\x4e\x00\x2c\x01\x20\x03\x1a\x03", s)
    eq((s.bpm, s.contact, s.energy_kj, s.rr_count, s.rr[0], s.rr[1]),
       (78, None, 300, 2, 800, 794), "wide")
    parse_measurement(b"\x04\x00", s)
    eq((s.bpm, s.contact, s.rr_count), (0, False, 0), "off the skin")
    parse_measurement(b"\x06\xc8", s)
    eq((s.bpm, s.contact), (200, True), "no RR")
    parse_measurement(b"\x01\x2c\x01", s)
    eq(s.bpm, 300, "uint16 above 255")
    many = hrm_payload(50, contact=True, rr=list(range(900, 920)), wide=True)
    parse_measurement(many, s)
    eq((s.rr_count, s.rr_dropped, s.rr[15]), (16, 4, 915), "RR beyond the buffer")
    eq(parse_measurement(hrm_payload(251, True, [300], 12, True), s).energy_kj, 12, "trace")
    for bad, word in ((b"", "0 bytes"), (b"\x00", "1 bytes"), (b"\x01\x48", "uint16"),
                      (b"\x10\x48\x20", "odd"), (b"\x00\x48\x00", "after"),
                      (b"\x08\x48\x01", "energy")):
        mentions(raises(ValueError, parse_measurement, bad, s), word)


def test_impossible_rates_are_faults():
    sink = Sink()
    ex = HeartRateExtractor(sink)
    s = HrSample()
    for t in range(0, 120000, 1000):
        ex.feed(t, s.set(300 if t % 10000 == 0 else 60, True))
    sm = ex.summary(120000)
    eq(sm[SM_FAULTS], 12, "faults")
    eq(sm[SM_HR_REST_BPM], 60, "resting")
    mentions(raises(ValueError, lambda: HeartRateExtractor(Sink(), low_bpm=150)), "low_bpm")
    mentions(raises(ValueError, lambda: HeartRateExtractor(Sink(), sustain_ms=0)), "sustain_ms")


def feed_steady(ex, sample, payloads, first, last):
    n = len(payloads)
    for i in range(first, last):
        ex.moving(i * 1000, i % 900 < 100)
        ex.feed(i * 1000, parse_measurement(payloads[i % n], sample))


def test_steady_state_allocates_nothing():
    payloads = [hrm_payload(60 + i % 100, i % 7 != 0, [800, 810][: 1 + i % 2]) for i in range(50)]
    payloads.append(hrm_payload(180, True, [340, 341, 342]))
    ex = HeartRateExtractor(Sink())
    sample = HrSample()
    feed_steady(ex, sample, payloads, 0, 100)
    used = allocated(feed_steady, ex, sample, payloads, 100, 10100)
    if used > ALLOC_BOUND:
        raise AssertionError("allocated %d bytes over 10000 notifications" % used)
    print("    heartrate: %d bytes over 10000 notifications" % used)
