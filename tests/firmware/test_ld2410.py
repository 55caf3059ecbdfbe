"""LD2410Parser against byte streams built from known reports."""

from ld2410 import LD2410Parser
from runner import eq
from traces import ld2410_frame, ld2410_stream

# A basic report in the shape of the example in HLK's protocol note: a
# stationary target, moving distance 0x51 = 81 cm, still energy 0x3b = 59.
DOC_FRAME = bytes.fromhex(
    "f4f3f2f1" "0d00" "02aa" "02" "5100" "00" "0000" "3b" "0000" "5500" "f8f7f6f5"
)


def run(chunks):
    parser = LD2410Parser()
    got = []
    for chunk in chunks:
        got.extend(parser.feed(chunk))
    return parser, got


def test_documented_frame():
    parser, got = run([DOC_FRAME])
    eq(got, [(2, 81, 0, 0, 59, 0)], "reports")
    eq(DOC_FRAME, ld2410_frame(2, 81, 0, 0, 59, 0), "the test's frame builder agrees")
    eq(parser.errors, 0, "errors")


def test_frames_cut_anywhere_with_garbage_between():
    for seed in (1, 2, 3):
        chunks, reports, _ = ld2410_stream(seed, frames=60)
        parser, got = run(chunks)
        eq(got, reports, "seed %d" % seed)
        eq(parser.errors, 0, "errors")
        if parser.skipped == 0:
            raise AssertionError("the stream had no garbage to skip")
    # One byte at a time.
    chunks, reports, _ = ld2410_stream(4, frames=20)
    parser = LD2410Parser()
    got = []
    one = bytearray(1)
    for chunk in chunks:
        for b in chunk:
            one[0] = b
            got.extend(parser.feed(one))
    eq(got, reports, "byte by byte")


def test_corrupt_and_truncated_frames_are_counted_and_skipped():
    for seed in (5, 6, 7):
        chunks, reports, broken = ld2410_stream(seed, frames=60, corrupt=9)
        eq(broken, 9, "broken frames in the stream")
        parser, got = run(chunks)
        eq(got, reports, "seed %d: good reports" % seed)
        eq(parser.errors, broken, "seed %d: errors" % seed)


def test_a_frame_cut_in_half_does_not_hide_the_next():
    frame = ld2410_frame(1, 120, 55, 0, 0, 120)
    nxt = ld2410_frame(3, 200, 60, 210, 70, 210)
    parser, got = run([frame[:11], nxt])
    eq(got, [(3, 200, 60, 210, 70, 210)], "reports")
    eq(parser.errors, 1, "errors")


def test_other_frames():
    engineering = b"\xf4\xf3\xf2\xf1" + bytes([3, 0, 0x01, 0xAA, 0x55]) + b"\xf8\xf7\xf6\xf5"
    bad_length = b"\xf4\xf3\xf2\xf1\xff\x00"
    parser, got = run([engineering, bad_length, DOC_FRAME])
    eq(len(got), 1, "reports")
    eq(parser.errors, 1, "errors: the bad length only")
    eq(parser.frames, 2, "frames")
