"""HX711 and VL53L0X drivers against fake pins and a fake I2C bus."""

from hx711 import HX711
from runner import eq, mentions, raises
from vl53l0x import VL53L0X


class Sck:
    def __init__(self):
        self.level = 0
        self.rises = 0
        self.dout = None

    def value(self, v=None):
        if v is None:
            return self.level
        if v and not self.level:
            self.rises += 1
            if self.dout is not None:
                self.dout.clock()
        self.level = v


class Dout:
    """An HX711's DOUT: low when a conversion is ready, then its bits MSB
    first, one per rising clock edge; high again after the 24th bit."""

    def __init__(self, words):
        self.words = list(words)
        self.bits = []
        self.level = 1
        self.extra = []  # pulses after the 24 bits, per conversion

    def convert(self):
        word = self.words.pop(0)
        self.bits = [(word >> (23 - i)) & 1 for i in range(24)]
        self.extra.append(0)
        self.level = 0

    def clock(self):
        if self.bits:
            self.level = self.bits.pop(0)
        else:
            self.extra[-1] += 1
            self.level = 1

    def value(self, v=None):
        return self.level


def test_hx711_reads_signed_words_and_sets_the_gain():
    words = [0x000001, 0x7FFFFF, 0x800000, 0xFFFFFF, 0x123456]
    for gain, pulses in ((128, 25), (32, 26), (64, 27)):
        sck = Sck()
        dout = Dout(words)
        sck.dout = dout
        adc = HX711(sck, dout, gain=gain)
        eq(adc.ready(), False, "not ready with DOUT high")
        got = []
        for _ in words:
            dout.convert()
            eq(adc.ready(), True, "ready with DOUT low")
            got.append(adc.read())
        eq(got, [1, 8388607, -8388608, -1, 0x123456], "values at gain %d" % gain)
        eq(sck.rises, pulses * len(words), "clock pulses at gain %d" % gain)
        eq(dout.extra, [pulses - 24] * len(words), "gain pulses at gain %d" % gain)
        adc.power_down()
        eq(sck.level, 1, "PD_SCK held high")
    mentions(raises(ValueError, HX711, Sck(), Dout([]), 100), "gain")


def test_hx711_not_ready_times_out():
    dout = Dout([])
    mentions(raises(OSError, HX711(Sck(), dout).read), "not ready")


class FakeI2C:
    """Registers of one VL53L0X; records every write."""

    def __init__(self, range_mm, model=0xEE):
        self.regs = bytearray(256)
        self.regs[0xC0] = model
        self.regs[0x91] = 0x3C  # the stop variable
        self.regs[0x13] = 0x04  # a new sample is ready
        self.regs[0x1E] = range_mm >> 8
        self.regs[0x1F] = range_mm & 0xFF
        self.writes = []

    def readfrom_mem(self, addr, reg, n):
        if addr != 0x29:
            raise OSError(19)
        return bytes(self.regs[reg : reg + n])

    def writeto_mem(self, addr, reg, buf):
        if addr != 0x29:
            raise OSError(19)
        self.writes.append((reg, buf[0]))
        self.regs[reg] = buf[0]


def test_vl53l0x_starts_ranging_and_reads_the_range():
    bus = FakeI2C(734)
    sensor = VL53L0X(bus)
    eq(bus.writes[-1], (0x00, 0x02), "last init write starts back-to-back ranging")
    eq((0x91, 0x3C) in bus.writes, True, "stop variable written back")
    eq((0x0A, 0x04) in bus.writes, True, "new-sample interrupt")
    eq(sensor.distance_mm(), 734, "range")
    eq(bus.writes[-1], (0x0B, 0x01), "interrupt cleared after the read")


def test_vl53l0x_errors():
    mentions(raises(OSError, VL53L0X, FakeI2C(100, model=0x00)), "model id")
    bus = FakeI2C(100)
    sensor = VL53L0X(bus)
    bus.regs[0x13] = 0
    mentions(raises(OSError, sensor.distance_mm), "no range")
