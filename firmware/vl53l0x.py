"""VL53L0X time-of-flight distance sensor: just enough for continuous ranging.

It follows the start of Pololu's and ST's init (2V8 I/O, I2C standard mode,
the "stop variable" handshake, new-sample interrupt) and then starts
back-to-back ranging. ST's SPAD selection, tuning table and reference
calibration are left out to keep the driver small: ranges read somewhat
short and noisier beyond about a metre, which presence sensing across a
doorway tolerates. Readings of 8190 and above mean "nothing in range".
"""

import time

from micropython import const

_SYSRANGE_START = const(0x00)
_SYSTEM_INTERRUPT_CONFIG_GPIO = const(0x0A)
_SYSTEM_INTERRUPT_CLEAR = const(0x0B)
_RESULT_INTERRUPT_STATUS = const(0x13)
_RESULT_RANGE_MM = const(0x1E)  # RESULT_RANGE_STATUS + 10: the range, big-endian
_GPIO_HV_MUX_ACTIVE_HIGH = const(0x84)
_I2C_MODE = const(0x88)
_VHV_CONFIG_PAD_SCL_SDA_EXTSUP_HV = const(0x89)
_IDENTIFICATION_MODEL_ID = const(0xC0)
_MODEL_ID = const(0xEE)
_BACK_TO_BACK = const(0x02)
_NEW_SAMPLE_READY = const(0x04)
_POLLS = const(100)  # 1 ms apart: three ranging periods


class VL53L0X:
    def __init__(self, i2c, address=0x29):
        self._i2c = i2c
        self._address = address
        self._byte = bytearray(1)
        model = self._read(_IDENTIFICATION_MODEL_ID)
        if model != _MODEL_ID:
            raise OSError("no VL53L0X at 0x%02x: model id 0x%02x" % (address, model))
        self._write(
            _VHV_CONFIG_PAD_SCL_SDA_EXTSUP_HV,
            self._read(_VHV_CONFIG_PAD_SCL_SDA_EXTSUP_HV) | 0x01,
        )
        self._write(_I2C_MODE, 0x00)
        self._stop = self._private(None)
        self._write(_SYSTEM_INTERRUPT_CONFIG_GPIO, _NEW_SAMPLE_READY)
        self._write(_GPIO_HV_MUX_ACTIVE_HIGH, self._read(_GPIO_HV_MUX_ACTIVE_HIGH) & ~0x10)
        self._write(_SYSTEM_INTERRUPT_CLEAR, 0x01)
        self._private(self._stop)
        self._write(_SYSRANGE_START, _BACK_TO_BACK)

    def _read(self, reg):
        return self._i2c.readfrom_mem(self._address, reg, 1)[0]

    def _write(self, reg, value):
        self._byte[0] = value
        self._i2c.writeto_mem(self._address, reg, self._byte)

    def _private(self, stop):
        # The "stop variable" lives in register 0x91 of a hidden page: read
        # it once at init, write it back before starting to range.
        self._write(0x80, 0x01)
        self._write(0xFF, 0x01)
        self._write(0x00, 0x00)
        if stop is None:
            stop = self._read(0x91)
        else:
            self._write(0x91, stop)
        self._write(0x00, 0x01)
        self._write(0xFF, 0x00)
        self._write(0x80, 0x00)
        return stop

    def distance_mm(self):
        for _ in range(_POLLS):
            if self._read(_RESULT_INTERRUPT_STATUS) & 0x07:
                break
            time.sleep_ms(1)  # a range takes about 33 ms
        else:
            raise OSError("VL53L0X gave no range")
        data = self._i2c.readfrom_mem(self._address, _RESULT_RANGE_MM, 2)
        self._write(_SYSTEM_INTERRUPT_CLEAR, 0x01)
        return (data[0] << 8) | data[1]
