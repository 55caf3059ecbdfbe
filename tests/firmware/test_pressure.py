"""PressureExtractor against seat and bed traces whose truth is their plan."""

import time

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
)
from pressure import PressureExtractor
from runner import eq, mentions, raises
from traces import (
    BED_SCALE,
    Sink,
    allocated,
    bed_trace,
    constant_trace,
    drive,
    garbage_trace,
    pairs,
    seat_trace,
)

EDGE_MS = 1000
RISE_MS = 500
# Allocation across 10 000 steady-state samples (sitting down, shifting,
# sitting): measured 0 bytes on the 64-bit unix port. Every value is a small
# int and nothing is built per sample; the bound allows a few stray blocks a
# conservative collector may see, and one leaked 16-byte block per 100
# samples would already be 1600 bytes.
ALLOC_BOUND = 256


def near(got, want, tol, what):
    if abs(got - want) > tol:
        raise AssertionError("%s: got %d, want %d +- %d" % (what, got, want, tol))


def check_episodes(found, truth, what):
    """The largest (start, end, rise) errors in ms, after checking each."""
    eq(len(found), len(truth), what + ": episode count")
    worst = [0, 0, 0]
    for (start, ev), (t_start, t_end, rise, restless) in pairs(found, truth):
        near(start, t_start, EDGE_MS, what + ": start")
        near(start + 100 * ev[EV_DURATION_DS], t_end, EDGE_MS, what + ": end")
        near(100 * ev[EV_RISE_DS], rise, RISE_MS, what + ": rise")
        eq(ev[EV_RESTLESS], restless, what + ": restless at %d" % t_start)
        errors = (start - t_start, start + 100 * ev[EV_DURATION_DS] - t_end,
                  100 * ev[EV_RISE_DS] - rise)
        for i in range(3):
            worst[i] = max(worst[i], abs(errors[i]))
    return worst


def test_seat_episodes_rise_and_restlessness_match_the_truth():
    for seed in (1, 2, 3, 4):
        sink = Sink()
        ex = PressureExtractor(sink)
        truth = drive(seat_trace(seed, episodes=4, noise=25, spikes=300, drift=150), ex.feed)
        check_episodes(sink.of_type(ET_SIT), truth, "seed %d" % seed)
        eq(len(sink.events), len(truth), "nothing but the sitting episodes")
        eq(sink.urgents, [], "urgent events")
        eq(ex.faults, 0, "faults")


def test_a_whole_day_in_the_chair():
    sink = Sink()
    ex = PressureExtractor(sink)
    began = time.ticks_ms()
    gen = seat_trace(
        31, episodes=12, noise=25, spikes=500, drift=200, sit_s=(600, 5400), gap_s=(600, 3600)
    )
    truth = drive(gen, ex.feed)
    took_ms = time.ticks_diff(time.ticks_ms(), began)
    if truth[-1][1] < 12 * 3600 * 1000:
        raise AssertionError("the trace is shorter than a waking day")
    worst = check_episodes(sink.of_type(ET_SIT), truth, "day")
    eq(len(sink.events), len(truth), "nothing but the sitting episodes")
    print("    day of %d h: %d ms; worst start/end/rise error %r ms"
          % (truth[-1][1] // 3600000, took_ms, worst))


def test_brief_lifts_do_not_split_an_episode():
    sink = Sink()
    ex = PressureExtractor(sink)
    truth = drive(seat_trace(7, episodes=5, noise=20, dips=True), ex.feed)
    if not [t for t in truth if t[3]]:
        raise AssertionError("the trace has no lift to test")
    check_episodes(sink.of_type(ET_SIT), truth, "with lifts")


def test_noise_spikes_and_quick_leans_give_no_events():
    sink = Sink()
    ex = PressureExtractor(sink)
    drive(seat_trace(11, episodes=0, noise=30, spikes=50, drift=200), ex.feed)
    eq(sink.events, [], "events from noise and spikes alone")
    # Leaning on the seat for 2..6 s is not sitting.
    truth = drive(seat_trace(12, episodes=6, noise=20, sit_s=(2, 6)), PressureExtractor(sink).feed)
    eq(len(truth), 6, "leans in the trace")
    eq(sink.events, [], "events from quick leans")


def seated_then(value, seated_ms=300000):
    """Empty 60 s, seated (1800 counts) for seated_ms, then ``value`` for 10 min."""
    t = 0
    while t < 60000:
        yield t, 300 + t // 100 % 7
        t += 100
    while t < 60000 + seated_ms:
        yield t, 1800 + t // 100 % 7
        t += 100
    yield from constant_trace(value, 600000, 100, t)


def test_unplugged_or_shorted_sensor_gives_a_fault_not_events():
    for value in (0, 4095):
        sink = Sink()
        ex = PressureExtractor(sink)
        drive(constant_trace(value, 3600000), ex.feed)
        eq([ev[EV_TYPE] for _, ev in sink.events], [ET_SENSOR_FAULT], "stuck at %d" % value)
        eq(sink.urgents, [], "urgent events stuck at %d" % value)
        eq(ex.faults, 1, "faults stuck at %d" % value)
        # Pulled out mid-episode: the episode has no known end, so no event.
        sink = Sink()
        ex = PressureExtractor(sink)
        drive(seated_then(value), ex.feed)
        eq([ev[EV_TYPE] for _, ev in sink.events], [ET_SENSOR_FAULT], "unplugged while seated")
        eq(ex.reading()["state"], "fault", "state")


def test_impossible_values_are_one_fault_and_never_raise():
    sink = Sink()
    ex = PressureExtractor(sink)
    drive(garbage_trace(5, 600000), ex.feed)
    eq([ev[EV_TYPE] for _, ev in sink.events], [ET_SENSOR_FAULT], "events")
    eq(ex.faults, 1, "faults: one fault episode")
    eq(ex.summary(600000)[SM_FAULTS], 1, "summary faults")


def test_sat_too_long_is_urgent_once():
    sink = Sink()
    ex = PressureExtractor(sink, sample_ms=500)
    start = 60000
    hours_4 = 4 * 3600 * 1000
    t = 0
    while t < start + hours_4 + 1800000:
        ex.feed(t, 1800 if t >= start else 300)
        t += 500
    eq(len(sink.urgents), 1, "urgent events")
    at, ev = sink.urgents[0]
    eq(ev[EV_TYPE], ET_SIT_TOO_LONG, "type")
    near(at, start, EDGE_MS, "its start")
    near(100 * ev[EV_DURATION_DS], hours_4, EDGE_MS, "when it was sent")
    eq(sink.events, [], "the episode is not over")
    # A bed has no such limit unless asked for.
    bed = Sink()
    ex = PressureExtractor(bed, role=ROLE_BED, sample_ms=500)
    for i in range(20 * 3600 * 2):
        ex.feed(i * 500, 3000)
    eq(bed.urgents, [], "bed urgents")


def test_a_night_in_bed_through_the_hx711():
    sink = Sink()
    ex = PressureExtractor(
        sink, role=ROLE_BED, on_delta=1500, off_delta=800, shift_delta=1000,
        adc_min=-0x800000, adc_max=0x7FFFFF, scale=BED_SCALE,
    )
    episodes, outs = drive(bed_trace(3, trips=3), ex.feed)
    found = sink.of_type(ET_IN_BED)
    check_episodes(found, episodes, "night")
    outs_found = sink.of_type(ET_OUT_OF_BED)
    eq(len(outs_found), len(outs), "trips out of bed")
    for (start, ev), (t_out, t_back) in pairs(outs_found, outs):
        near(start, t_out, EDGE_MS, "left bed")
        near(start + 100 * ev[EV_DURATION_DS], t_back, EDGE_MS, "back in bed")
        eq(ev[EV_ROLE], ROLE_BED, "role")
    eq(len(sink.events), len(episodes) + len(outs), "no other events")


def test_summary_splits_an_episode_at_the_boundary():
    sink = Sink()
    ex = PressureExtractor(sink)
    # Seated (a step) from 60 s to 660 s; summaries at 300 s and 900 s.
    first = None
    for i in range(9000):
        t = i * 100
        ex.feed(t, 1800 if 60000 <= t < 660000 else 300)
        if t == 300000:
            first = ex.summary(t)
    second = ex.summary(900000)
    if first is None:
        raise AssertionError("no first summary")
    eq(first[SM_PERIOD_S], 300, "first period")
    near(first[SM_OCCUPIED_DS], 2400, 10, "first occupied ds")
    eq(first[SM_EPISODES], 0, "first episodes")
    eq(second[SM_PERIOD_S], 600, "second period")
    near(second[SM_OCCUPIED_DS], 3600, 10, "second occupied ds")
    eq(second[SM_EPISODES], 1, "second episodes")
    eq(second[SM_RESTLESS], 0, "restless")
    near(second[SM_RISE_DS_MAX], 1, 1, "a step rises at once")
    eq(sink.events[0][1][EV_TYPE], ET_SIT, "the event")
    near(sink.events[0][1][EV_DURATION_DS], 6000, 10, "its duration")
    eq(ex.summary(900000)[SM_OCCUPIED_DS], 0, "nothing counted twice")


def feed_steady(ex, first, last):
    """An empty seat, then from sample 1000 someone seated who shifts for 2 s
    every minute, with +-25 counts of noise; built inline so that only the
    extractor allocates."""
    x = 1
    for i in range(first, last):
        x = x * 48271 % 2147483647
        value = 300 + x % 51 - 25
        if i >= 1000:
            value += 1500
            if i % 600 < 20:
                value += 500
        ex.feed(i * 100, value)


def test_steady_state_allocates_nothing():
    sink = Sink()
    ex = PressureExtractor(sink)
    feed_steady(ex, 0, 100)
    used = allocated(feed_steady, ex, 100, 10100)
    eq(ex.reading()["state"], "seated", "the window ends seated")
    if sink.events or ex.faults:
        raise AssertionError("the window was not steady: %r" % sink.events)
    if used > ALLOC_BOUND:
        raise AssertionError("allocated %d bytes over 10000 samples" % used)
    print("    pressure: %d bytes over 10000 samples" % used)


def test_bad_config_names_the_value():
    sink = Sink()
    mentions(raises(ValueError, PressureExtractor, sink, ROLE_SEAT, 0), "sample_ms")
    mentions(raises(ValueError, lambda: PressureExtractor(sink, off_delta=500)), "off_delta")
    mentions(raises(ValueError, lambda: PressureExtractor(sink, role=9)), "role")
    mentions(raises(ValueError, lambda: PressureExtractor(sink, adc_max=0x7FFFFF)), "scale")
    mentions(raises(ValueError, lambda: PressureExtractor(sink, too_long_ms=-1)), "too_long_ms")
    eq(PressureExtractor(sink, role=ROLE_BED).reading()["state"], "empty", "state")
