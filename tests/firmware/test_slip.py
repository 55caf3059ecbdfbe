"""SLIP framing under MicroPython: RFC 1055 bytes, split input, bad and oversized frames."""

from runner import eq
from slip import END, ESC, ESC_END, ESC_ESC, SlipDecoder, encode


def test_encode_escapes_end_and_esc():
    eq(encode(b"a\xc0b\xdbc"), b"\xc0a\xdb\xdcb\xdb\xddc\xc0", "escaped")
    eq(encode(b""), b"\xc0\xc0", "empty")
    eq((END, ESC, ESC_END, ESC_ESC), (0xC0, 0xDB, 0xDC, 0xDD), "RFC 1055 values")


def test_round_trip_of_every_byte_value():
    frame = bytes(range(250))
    dec = SlipDecoder()
    eq(dec.feed(encode(frame)), [frame], "all 250 values")
    eq(dec.frames, 1, "counted")


def test_split_input_any_way():
    frames = [b"\xc0\xdb" * 10, b"plain", bytes(range(190, 250))]
    stream = b"".join(encode(f) for f in frames)
    for size in (1, 2, 3, 7, 64):
        dec = SlipDecoder()
        got = []
        for i in range(0, len(stream), size):
            got.extend(dec.feed(stream[i : i + size]))
        eq(got, frames, "pieces of %d bytes" % size)


def test_oversized_frames_are_dropped_and_counted():
    dec = SlipDecoder(max_len=8)
    got = dec.feed(encode(b"123456789") + encode(b"12345678") + encode(b"\xc0" * 9))
    eq(got, [b"12345678"], "only the one that fits")
    eq(dec.oversized, 2, "two too long")


def test_bad_escapes_drop_the_frame_until_the_next_end():
    dec = SlipDecoder()
    got = dec.feed(b"\xc0ab\xdbxcd\xc0ok\xc0cut\xdb\xc0fine\xc0")
    eq(got, [b"ok", b"fine"], "the good frames")
    eq(dec.errors, 2, "bad escape, then escape then END")


def test_line_noise_before_a_frame_is_one_bad_frame_at_most():
    dec = SlipDecoder()
    eq(dec.feed(b"noise" + encode(b"frame")), [b"noise", b"frame"], "noise is a frame")
    dec = SlipDecoder(max_len=4)
    eq(dec.feed(b"long noise!" + encode(b"abc")), [b"abc"], "long noise is dropped")


class ByteUart:
    """A UART that owns up to one byte at a time, the slowest a line can be."""

    def __init__(self, incoming):
        self.incoming = bytearray(incoming)
        self.written = bytearray()

    def write(self, data):
        self.written.extend(data)
        return len(data)

    def any(self):
        return 1 if self.incoming else 0

    def read(self, n):
        if not self.incoming:
            return None
        byte = bytes(self.incoming[:1])
        self.incoming = self.incoming[1:]
        return byte


def test_serial_uplink_sends_slip_and_receives_whole_frames():
    from uplink_serial import SerialUplink

    uart = ByteUart(encode(b"ack one") + b"\xc0\xc0" + encode(b"ack\xc0two"))
    link = SerialUplink(uart)
    eq(link.receive(), b"ack one", "first frame, read byte by byte")
    eq(link.receive(), b"ack\xc0two", "second")
    eq(link.receive(), None, "nothing more")
    link.send(b"up\xdb")
    eq(bytes(uart.written), b"\xc0up\xdb\xdd\xc0", "sent SLIP-framed")
