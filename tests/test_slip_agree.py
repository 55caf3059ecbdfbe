"""The host's SLIP decoder (kinsight.slip) and the firmware's (firmware/slip.py,
run under MicroPython) give the same frames and counts for the same streams."""

from __future__ import annotations

import json
import random

from kinsight.wire.slip import SlipDecoder, encode
from support import REPO, run_micropython

FEED = REPO / "tests" / "firmware" / "slip_feed.py"
SPECIAL = [0xC0, 0xDB, 0xDC, 0xDD]


def host_side(max_len: int, chunk: int, stream: bytes, frames: list[bytes]) -> list[object]:
    dec = SlipDecoder(max_len)
    got: list[bytes] = []
    for i in range(0, len(stream), chunk):
        got.extend(dec.feed(stream[i:i + chunk]))
    return [[f.hex() for f in got], dec.errors, dec.oversized, [encode(f).hex() for f in frames]]


def streams() -> list[tuple[int, int, bytes, list[bytes]]]:
    rng = random.Random(1055)
    cases: list[tuple[int, int, bytes, list[bytes]]] = [
        (250, 1, b"", [b""]),
        (250, 3, encode(bytes(range(256))[:250]), [bytes(range(250))]),
        (8, 2, encode(b"123456789") + encode(b"12345678"), [b"\xc0\xdb" * 4]),
        (250, 5, b"\xc0ab\xdbxcd\xc0ok\xc0cut\xdb\xc0fine\xc0\xc0\xc0", [b"\xdb\xdc\xdd"]),
        (4, 1, b"\xdb\xdb\xdb\xc0\xdb\xdc\xdb\xdd\xc0long noise\xc0", []),
    ]
    for _ in range(60):
        frames = [bytes(rng.choice(SPECIAL) if rng.random() < 0.3 else rng.randrange(256)
                        for _ in range(rng.randrange(0, 40))) for _ in range(rng.randrange(1, 6))]
        stream = bytearray(b"".join(encode(f) for f in frames))
        for _ in range(rng.randrange(0, 4)):  # line noise: flipped, dropped, added bytes
            pos = rng.randrange(len(stream) + 1)
            what = rng.randrange(3)
            if what == 0 and pos < len(stream):
                stream[pos] = rng.choice(SPECIAL)
            elif what == 1 and pos < len(stream):
                del stream[pos]
            else:
                stream.insert(pos, rng.choice(SPECIAL + [0x41]))
        cases.append((rng.choice([16, 32, 250]), rng.randrange(1, 50), bytes(stream), frames))
    return cases


def test_both_decoders_agree_on_every_stream():
    cases = streams()
    lines = [json.dumps([m, c, s.hex(), *[f.hex() for f in fs]]) for m, c, s, fs in cases]
    proc = run_micropython(FEED, stdin="\n".join(lines).encode() + b"\n")
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
    firmware = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(firmware) == len(cases)
    for case, fw in zip(cases, firmware, strict=True):
        assert fw == host_side(*case), case
    # The corpus exercises every path, so agreement means something.
    totals = [sum(fw[i] for fw in firmware) for i in (1, 2)]
    assert totals[0] > 0 and totals[1] > 0, totals
    assert sum(len(fw[0]) for fw in firmware) > 100
