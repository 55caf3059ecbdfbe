"""PresenceExtractor and its sources, against visits whose truth is their plan."""


from kinsight_wire import (
    ET_FLUSH,
    ET_PROLONGED_PRESENCE,
    ET_SENSOR_FAULT,
    ET_VISIT,
    EV_DURATION_DS,
    EV_TYPE,
    SM_DWELL_DS_MAX,
    SM_EPISODES,
    SM_OCCUPIED_DS,
)
from ld2410 import LD2410Parser
from presence import PirSource, PresenceExtractor, RadarSource, TofSource
from runner import eq, mentions, raises
from traces import Sink, allocated, drive, ld2410_frame, pairs, presence_trace

EDGE_MS = 1000
# Allocation over 10 000 samples alternating visits and quiet: measured 0
# bytes with no visit ending inside the window; bound as for the others.
ALLOC_BOUND = 256


def near(got, want, tol, what):
    if abs(got - want) > tol:
        raise AssertionError("%s: got %d, want %d +- %d" % (what, got, want, tol))


def test_visits_through_pir_dropouts_match_the_truth():
    for seed in (1, 2, 3):
        sink = Sink()
        ex = PresenceExtractor(sink)
        truth = drive(presence_trace(seed, visits=6, blips=2), ex.feed)
        found = sink.of_type(ET_VISIT)
        eq(len(found), len(truth), "seed %d: visits" % seed)
        for (start, ev), (t_start, t_end) in pairs(found, truth):
            near(start, t_start, EDGE_MS, "start")
            near(100 * ev[EV_DURATION_DS], t_end - t_start, EDGE_MS, "dwell")
        eq(len(sink.events), len(truth), "no other events (blips are not visits)")
        eq(sink.urgents, [], "urgents")


def test_prolonged_presence_is_urgent_once_per_visit():
    sink = Sink()
    ex = PresenceExtractor(sink, prolonged_ms=1200000)
    truth = drive(presence_trace(4, visits=3, dwell_s=(1500, 1700)), ex.feed)
    eq(len(sink.urgents), 3, "one urgent per visit")
    for (start, ev), (t_start, _) in pairs(sink.urgents, truth):
        eq(ev[EV_TYPE], ET_PROLONGED_PRESENCE, "type")
        near(start, t_start, EDGE_MS, "start")
        near(100 * ev[EV_DURATION_DS], 1200000, EDGE_MS, "sent as dwell passed 20 min")
    eq(len(sink.of_type(ET_VISIT)), 3, "the visits still end")


def test_summary_and_flush():
    sink = Sink()
    ex = PresenceExtractor(sink)
    for t in range(0, 600000, 500):
        ex.feed(t, 100000 <= t <= 220000)
        if t == 200000:
            first = ex.summary(t)
    second = ex.summary(600000)
    near(first[SM_OCCUPIED_DS], 1000, 5, "first interval")
    eq(first[SM_EPISODES], 0, "visit not over")
    near(second[SM_OCCUPIED_DS], 200, 5, "second interval")
    eq(second[SM_EPISODES], 1, "visits")
    near(second[SM_DWELL_DS_MAX], 1200, 5, "dwell")
    ex.flush(300000)
    ex.flush(300040)  # contact bounce
    ex.flush(400000)
    eq(len(sink.of_type(ET_FLUSH)), 2, "flushes")


def test_garbage_is_a_fault_not_a_visit():
    sink = Sink()
    ex = PresenceExtractor(sink)
    for i, value in enumerate((None, "x", 7, None, False, 2.5)):
        ex.feed(i * 250, value)
    eq([ev[EV_TYPE] for _, ev in sink.events], [ET_SENSOR_FAULT], "events")
    eq(ex.faults, 1, "faults")


class Pin:
    def __init__(self, level):
        self.level = level

    def value(self, v=None):
        return self.level


class Uart:
    def __init__(self, chunks):
        self.chunks = list(chunks)

    def read(self):
        return self.chunks.pop(0) if self.chunks else None


class Ranger:
    def __init__(self, readings):
        self.readings = list(readings)

    def distance_mm(self):
        mm = self.readings.pop(0)
        if mm is None:
            raise OSError(5)
        return mm


def test_sources():
    eq(PirSource(Pin(1)).read(), True, "PIR high")
    eq(PirSource(Pin(0)).read(), False, "PIR low")
    eq(PirSource(Pin(0), active_high=False).read(), True, "PIR active low")
    frames = [
        ld2410_frame(2, 0, 0, 150, 40, 150),  # still person, strong
        ld2410_frame(1, 300, 10, 0, 0, 300),  # weak movement
        ld2410_frame(0, 0, 0, 0, 0, 0),
    ]
    radar = RadarSource(Uart([frames[0][:9], frames[0][9:], frames[1], b"", frames[2]]),
                        LD2410Parser(), min_energy=20, stale_reads=3)
    want = [None, True, False, False, False]  # None before the first report
    eq([radar.read() for _ in range(5)], want, "radar")
    eq([radar.read() for _ in range(3)], [False, False, None], "radar gone quiet")
    tof = TofSource(Ranger([1500, 700, 850, 950, 8190, 600, None]), near_mm=800)
    eq([tof.read() for _ in range(7)], [False, True, True, False, False, True, None], "tof")
    mentions(raises(ValueError, lambda: TofSource(None, near_mm=0)), "near_mm")
    mentions(raises(ValueError, lambda: PresenceExtractor(Sink(), hold_ms=0)), "hold_ms")


def feed_steady(ex, first, last):
    for i in range(first, last):
        ex.feed(i * 250, i % 400 < 200 or i % 13 == 0)


def test_steady_state_allocates_nothing():
    ex = PresenceExtractor(Sink(), hold_ms=600000)
    feed_steady(ex, 0, 100)
    used = allocated(feed_steady, ex, 100, 10100)
    if used > ALLOC_BOUND:
        raise AssertionError("allocated %d bytes over 10000 samples" % used)
    print("    presence: %d bytes over 10000 samples" % used)
