# Feeds byte streams to the firmware's SLIP decoder, for tests/test_slip_agree.py.
#
# stdin: one JSON list a line, [max_len, chunk_size, stream_hex, frame_hex...].
# stdout: one JSON list a line, [frames_hex, errors, oversized, encodings_hex]:
# the frames the stream gave when fed chunk_size bytes at a time, the counts,
# and encode() of each frame_hex.

import json
import sys

from slip import SlipDecoder, encode


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        spec = json.loads(line)
        max_len, chunk, stream = spec[0], spec[1], bytes.fromhex(spec[2])
        dec = SlipDecoder(max_len)
        frames = []
        for i in range(0, len(stream), chunk):
            frames.extend(dec.feed(stream[i : i + chunk]))
        encoded = [encode(bytes.fromhex(h)).hex() for h in spec[3:]]
        print(json.dumps([[f.hex() for f in frames], dec.errors, dec.oversized, encoded]))


main()
