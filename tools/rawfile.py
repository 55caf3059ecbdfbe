# Feeds a file of raw sensor samples to a firmware extractor, under MicroPython.
#
# The file holds one little-endian unsigned sample of ``width`` bytes (1, 2 or 4)
# every ``period`` ms from t = 0, as kinsight.simulation.raw_signals writes them (ADC
# counts, a cumulative pulse counter, presence 0/1).

_BUF = bytearray(2048)  # one buffer for every file: the heap is an ESP32's


def feed(path, width, period, extractor, convert):
    """Feed every sample to extractor.feed(t_ms, convert(value)); returns the end time."""
    buf = _BUF
    t = 0
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            for i in range(0, n, width):
                v = buf[i]
                if width == 2:
                    v |= buf[i + 1] << 8
                elif width == 4:
                    v |= (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24)
                extractor.feed(t, convert(v))
                t += period
    return t
