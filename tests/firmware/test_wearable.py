"""WearableSource over the fake BLE radio: sessions, dropouts, reconnects, a strap off."""

import asyncio

from fake_ble import FakeClock, FakeHeartRateLink
from heartrate import HeartRateExtractor
from kinsight_wire import SM_HR_QUALITY_PM, SM_HR_REST_BPM, SM_HR_WEAR_S
from runner import eq
from traces import Sink, allocated, hr_trace, hrm_payload
from wearable import WearableSource

POLL_MS = 250


def payloads(trace):
    try:
        while True:
            t, (payload, _moving) = next(trace)
            yield t, payload
    except StopIteration:
        return


def play(plan, seed=1):
    """Runs the source's reconnect loop against the fake radio and a node-like poller
    feeding an extractor; (source, link, summary, timed plan)."""
    clock = FakeClock()
    timed = []

    def trace():
        timed.extend((yield from hr_trace(seed, plan)))

    link = FakeHeartRateLink(clock, payloads(trace()))
    source = WearableSource(link, sleep_ms=clock.sleep_ms)
    ex = HeartRateExtractor(Sink())

    async def main():
        task = asyncio.create_task(source.run())
        while not link.finished:
            ex.feed(clock.now_ms, source.read())
            await asyncio.sleep_ms(0)
        ex.feed(clock.now_ms, source.read())
        task.cancel()

    asyncio.run(main())
    return source, link, ex.summary(clock.now_ms), timed


def test_dropouts_reconnect_and_a_strap_off_stays_connected():
    plan = [("rest", 600, 70), ("dropout", 60, 0), ("rest", 600, 72), ("off", 300, 0),
            ("rest", 300, 70), ("dropout", 600, 0), ("rest", 300, 71)]
    source, link, sm, timed = play(plan)
    eq(link.connects, 3, "connections: at the start and after each dropout")
    eq(link.lost, 2, "links lost")
    if link.not_found < 2:
        raise AssertionError("scans during the dropouts found nothing: %d" % link.not_found)
    eq(source.bad, 0, "bad payloads")
    worn_ms = sum(end - start for kind, start, end, _ in timed if kind == "rest")
    wear_ms = 1000 * sm[SM_HR_WEAR_S]
    # Reconnecting costs a retry wait and a scan; after the long dropout the wait
    # has grown to a minute at most.
    if not worn_ms - 120000 <= wear_ms <= worn_ms:
        raise AssertionError("wear %d ms, worn %d ms" % (wear_ms, worn_ms))
    eq(source.received, wear_ms // 1000 + 3 + 300, "every notification heard is fed"
       " (and the 300 without contact)")
    if sm[SM_HR_QUALITY_PM] < 995:
        raise AssertionError("quality %d" % sm[SM_HR_QUALITY_PM])
    if abs(sm[SM_HR_REST_BPM] - 71) > 2:
        raise AssertionError("resting %d" % sm[SM_HR_REST_BPM])


def test_a_wearable_never_found_backs_off():
    source, link, sm, _ = play([("dropout", 3600, 0), ("rest", 120, 60)])
    # 2, 4, 8, 16, 32 s then every minute: about 63 scans in an hour, not 1200.
    if not 55 <= link.not_found <= 70:
        raise AssertionError("%d scans in an hour" % link.not_found)
    eq(link.connects, 1, "found once it is back")
    eq(sm[SM_HR_REST_BPM] is None, False, "then read")


def test_the_ring_holds_what_the_loop_has_not_read():
    source = WearableSource(None)
    for bpm in (60, 61, 62, 63, 64):
        source.push(hrm_payload(bpm, True))
    eq(source.overrun, 1, "a fifth before a read")
    source.push(b"\x10\x48\x01")  # odd RR bytes: dropped when read
    eq([source.read().bpm for _ in range(4)], [60, 61, 62, 63], "in order")
    source.push(b"\x10\x48\x01")
    source.push(hrm_payload(65, True))
    eq(source.read().bpm, 65, "the bad one skipped")
    eq((source.read(), source.bad), (None, 1), "empty")
    source.push(bytes(65))
    eq(source.bad, 2, "too long for a buffer")


def cycle(source, data, n):
    for i in range(n):
        source.push(data[i % 4])
        source.read()


def test_reading_allocates_nothing():
    source = WearableSource(None)
    data = [hrm_payload(60 + i, True, [800 + i, 810]) for i in range(4)]
    cycle(source, data, 10)
    used = allocated(cycle, source, data, 1000)
    if used > 256:
        raise AssertionError("allocated %d bytes over 1000 notifications" % used)
    print("    wearable: %d bytes over 1000 notifications" % used)
