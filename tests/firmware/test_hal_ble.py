"""hal's Heart Rate link on a stand-in for aioble, as micropython-lib's aioble behaves:
scan results, a connection, the 0x180D service, notifications of 0x2A37, a disconnect."""

import asyncio
import sys

from heartrate import HrSample, parse_measurement
from runner import eq, raises
from test_hal import Esp32Time
from test_hal import load_hal as load_hal_with


class UUID:
    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, UUID) and other.value == self.value


class FakeBluetooth:
    UUID = UUID


class DeviceDisconnectedError(Exception):
    pass


class GattError(Exception):
    pass


class Characteristic:
    def __init__(self, world):
        self.world = world

    async def subscribe(self, notify=False, indicate=False):
        if self.world.refuse:
            raise GattError(5)
        self.world.subscribed = notify

    async def notified(self, timeout_ms=None):
        await asyncio.sleep_ms(0)
        if not self.world.notifications:
            self.world.connected = False
            raise DeviceDisconnectedError()
        return self.world.notifications.pop(0)


class Service:
    def __init__(self, world):
        self.world = world

    async def characteristic(self, uuid, timeout_ms=2000):
        return Characteristic(self.world) if uuid == UUID(0x2A37) else None


class Connection:
    def __init__(self, world):
        self.world = world

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.world.connected = False

    def is_connected(self):
        return self.world.connected

    async def service(self, uuid, timeout_ms=2000):
        return Service(self.world) if uuid == UUID(self.world.service) else None


class Device:
    def __init__(self, addr_type, addr):
        self.addr_type = addr_type
        self.addr = addr

    async def connect(self, timeout_ms=10000):
        world = World.current
        world.connects.append(self.addr)
        world.connected = True
        return Connection(world)


class Result:
    def __init__(self, name, services, addr):
        self._name = name
        self._services = services
        self.device = Device(0, addr)

    def name(self):
        return self._name

    def services(self):
        for s in self._services:
            yield UUID(s)


class Scanner:
    def __init__(self, results):
        self.results = list(results)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        pass

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.results:
            raise StopAsyncIteration
        return self.results.pop(0)


class World:
    current = None

    def __init__(self, notifications, adverts=(), service=0x180D, refuse=False):
        self.notifications = list(notifications)
        self.adverts = adverts
        self.service = service
        self.refuse = refuse
        self.connects = []
        self.connected = False
        self.subscribed = False
        World.current = self


class FakeAioble:
    ADDR_PUBLIC = 0
    Device = Device
    DeviceDisconnectedError = DeviceDisconnectedError
    GattError = GattError

    @staticmethod
    def scan(duration_ms, interval_us=None, window_us=None, active=False):
        return Scanner(World.current.adverts)


def load_hal():
    # The unix port has no bluetooth and no aioble: the stand-ins stay for hal's
    # link, which imports them when built.
    sys.modules["aioble"] = FakeAioble
    sys.modules["bluetooth"] = FakeBluetooth
    return load_hal_with(Esp32Time)


# Notifications as a chest strap sends them: contact detected, uint8 rate, RR intervals.
STRAP = [b"\x16\x3c\x2d\x03", b"\x16\x3d\x20\x03\x1a\x03", b"\x06\x3e", b"\x04\x00"]


def session(link):
    got = []
    asyncio.run(link.session(got.append))
    return got


def test_by_name_it_scans_connects_subscribes_and_pushes_every_notification():
    hal = load_hal()
    world = World(STRAP, adverts=[Result("Other", [0x180D], "11"), Result("Strap", [0x180F], "22"),
                                  Result("Strap", [0x180F, 0x180D], "33")])
    link = hal.heart_rate_link(name="Strap")
    got = session(link)
    eq(world.connects, ["33"], "the one by that name with the Heart Rate service")
    eq(world.subscribed, True, "notifications on")
    eq(got, STRAP, "every notification, as sent")
    s = HrSample()
    eq([parse_measurement(d, s).bpm for d in got], [60, 61, 62, 0], "rates")


def test_by_address_needs_no_scan_and_a_missing_wearable_is_an_oserror():
    hal = load_hal()
    world = World(STRAP[:1])
    eq(session(hal.heart_rate_link(address="aa:bb:cc:dd:ee:ff")), STRAP[:1], "pushed")
    eq(world.connects, ["aa:bb:cc:dd:ee:ff"], "connected by address")
    World(STRAP, adverts=[Result("Other", [0x180D], "11")])
    raises(OSError, session, hal.heart_rate_link(name="Strap"))
    World(STRAP, service=0x180F)
    raises(OSError, session, hal.heart_rate_link(address="aa"))
    World(STRAP, refuse=True)
    raises(OSError, session, hal.heart_rate_link(address="aa"))
