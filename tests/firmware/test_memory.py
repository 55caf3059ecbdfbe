"""Heap use of the send path, measured with gc.mem_alloc() under MicroPython.

The bounds are for this 64-bit unix port, where every object header and
pointer is twice its ESP32 size; a node allocates roughly half of these.
Measured on MicroPython 1.29 (64-bit unix port) when they were set:

* building 5 event dicts and encoding and signing their frame: 1760 bytes;
* FrameBuilder.events() on prepared events: 960 bytes, of which the HMAC is
  about 540 (two SHA-256 contexts and digests: MicroPython's sha256 has no
  copy(), so each tag starts two fresh contexts) and the frame's bytes 144;
* Signer.tag() of a 118-byte frame: 544 bytes, none of it retained.

Each bound leaves about a quarter for other builds, and is low enough to catch
the likely regressions: a fresh Encoder per frame (+272), padded key blocks
remade per tag (+320), or frames built by concatenating bytes (kilobytes).
"""

import gc

from fixtures import SIGNER, TIME_S, event
from framing import FrameBuilder, Signer
from runner import eq
from sequence import SequenceCounter

BUILD_AND_ENCODE_BOUND = 2400
ENCODE_BOUND = 1200
TAG_BOUND = 700
# The collector is conservative: a stale pointer left on the C stack can keep
# a few blocks alive, more or fewer with the environment's layout. A leak of
# even one 16-byte block per frame would show as 800 bytes after 50 frames.
RETAINED_SLACK = 256


def allocated(fn, *args):
    """(bytes fn allocated, its result), with the collector held off meanwhile."""
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        result = fn(*args)
        used = gc.mem_alloc() - before
    finally:
        gc.enable()
    return used, result


def check_below(used, bound, what):
    if used >= bound:
        raise AssertionError("%s: %d bytes, bound %d" % (what, used, bound))


def build_and_send(builder):
    return builder.events([event(i) for i in range(5)], TIME_S)


def test_events_frame_allocation():
    builder = FrameBuilder(SIGNER, 7, SequenceCounter(None))
    build_and_send(builder)  # the first call may intern names and grow nothing else
    used, frames = allocated(build_and_send, builder)
    eq(len(frames), 1, "five events fit one frame")
    check_below(used, BUILD_AND_ENCODE_BOUND, "allocated building and encoding 5 events")
    events = [event(i) for i in range(5)]
    used, frames = allocated(builder.events, events, TIME_S)
    check_below(used, ENCODE_BOUND, "allocated encoding and signing 5 prepared events")
    # The measurement itself must see the frame: an empty result would pass.
    if used < len(frames[0]):
        raise AssertionError("measured %d bytes, less than the frame itself" % used)


def test_builder_retains_nothing_per_frame():
    builder = FrameBuilder(SIGNER, 7, SequenceCounter(None))
    events = [event(i) for i in range(5)]
    builder.events(events, TIME_S)
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(50):
        builder.events(events, TIME_S)
    gc.collect()
    grown = gc.mem_alloc() - before
    check_below(grown, RETAINED_SLACK + 1, "retained after 50 frames")


def test_signer_key_blocks_are_made_once():
    signer = Signer(bytes(range(32)))
    inner = signer._inner
    outer = signer._outer
    frame = bytes(118)
    signer.tag(frame)
    used, _ = allocated(signer.tag, frame)
    check_below(used, TAG_BOUND, "allocated by one tag")
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(100):
        signer.tag(frame)
    gc.collect()
    check_below(gc.mem_alloc() - before, RETAINED_SLACK + 1, "retained after 100 tags")
    if signer._inner is not inner or signer._outer is not outer:
        raise AssertionError("the padded key blocks were remade")
