"""The node on real hardware: wire config.json to hal, then run the loop under asyncio.

``main()`` is what the device's main.py calls. Whatever goes wrong, the node
stays reachable: a bad or missing config.json is printed on the REPL and, when
the identity and uplink are usable, reported in status frames; after
``safe_mode_after`` failed boots in a row the node starts in safe mode (status
only) until the field tools clear it. Every step feeds the hardware watchdog, so
a hung loop resets the node, and that reset counts as a failed boot; safe mode
runs without it, so the field tools can work on the node at length.
"""

import asyncio
import gc
import os
import socket  # here, not in make_uplink: see uplink.py on importing built-ins
import time

from micropython import const

import console
import crashlog  # loaded up front: a crash must not need memory to say why
import hal
import otaboot
from bootguard import BootGuard
from config import load
from framing import FrameBuilder, Signer
from journal import Journal, recover_node
from kinsight_wire import RESET_WATCHDOG
from node import FIRMWARE_VERSION, Node, Sink, default_diagnostics
from outbox import Outbox
from sensors import build_sensors
from sequence import SequenceCounter
from uplink import Backoff, Forwarder, UdpUplink

CONFIG = "/config.json"
BOARDS = "/boards"
_FLASH = "/kinsight"
CRASHES = _FLASH + "/crashes"
_WATCHDOG_MS = const(30000)
_HEALTHY_AFTER_MS = const(600000)  # ten minutes up: the boot counts as a good one
_TICK_MS = const(20)
def make_uplink(uplink_cfg, board, node_id=0, gateway=False):
    kind = uplink_cfg["type"]
    if kind == "udp":
        hal.wlan_connect(uplink_cfg["ssid"], uplink_cfg["password"])
        return UdpUplink(socket, uplink_cfg["host"], uplink_cfg["port"])
    if kind == "mqtt":
        from umqtt.simple import MQTTClient  # micropython-lib, installed with mip

        from uplink_mqtt import MqttUplink

        hal.wlan_connect(uplink_cfg["ssid"], uplink_cfg["password"])
        client_id = b"kinsight-node-%d" % node_id
        user = uplink_cfg["user"] or None

        def client():
            return MQTTClient(client_id, uplink_cfg["host"], uplink_cfg["port"], user,
                              uplink_cfg["mqtt_password"] if user else None, 60)
        return MqttUplink(client, uplink_cfg["household"].encode(),
                          None if gateway else node_id)
    if kind == "serial":
        from uplink_serial import SerialUplink

        defaults = board["defaults"]["uart"]
        return SerialUplink(hal.uart(uplink_cfg["uart"], defaults["tx"], defaults["rx"],
                                     uplink_cfg["baud"]))
    from gateway import EspNowUplink

    radio = hal.espnow(uplink_cfg["channel"])
    radio.add_peer(uplink_cfg["gateway"])
    return EspNowUplink(radio, uplink_cfg["gateway"])


def build(cfg, error, safe_mode, reset_cause, reboot=hal.reset):
    """The Node for a checked configuration (its roles may be empty). ``reboot`` resets
    the node into an update it has installed."""
    signer = Signer(cfg["key"])
    counter = SequenceCounter(_FLASH + "/boot")
    builder = FrameBuilder(signer, cfg["node_id"], counter, cfg["mtu"])
    outbox = Outbox(_FLASH + "/outbox")
    uplink = make_uplink(cfg["uplink"], cfg["board"], cfg["node_id"])
    from update import Updater

    # Safe mode is for fixing a node by hand: no update starts there (it still says
    # which bundle runs and which failed).
    updater = Updater(otaboot.OTA, reboot, enabled=not safe_mode)
    forwarder = Forwarder(outbox, uplink, signer, cfg["node_id"], backoff=Backoff(),
                          boot=counter.boot, updater=updater)
    crash_report = None
    new = crashlog.unreported(CRASHES)
    if new:
        last = new[-1]
        crash_report = (len(new), last["time_s"], crashlog.cause_code(last["reset_cause"]),
                        last["what"])
    sink = Sink()
    sensors = [] if safe_mode else build_sensors(cfg["roles"], sink)
    node = Node(builder, outbox, forwarder, sensors, sink, summary_s=cfg["summary_s"],
                summary_batch=cfg["summary_batch"], event_wait_s=cfg["event_wait_s"],
                status_s=cfg["status_s"], clock_base_s=hal.unix_time(),
                reset_cause=reset_cause, config_error=error, safe_mode=safe_mode,
                diagnostics=default_diagnostics(hal), journal=Journal(_FLASH + "/journal"),
                updater=updater, crash_report=crash_report, crash_reported=_crashes_told)
    # What the last start noticed and never framed (a reset, a power cut) goes first.
    recover_node(node)
    return node


def _crashes_told():
    crashlog.mark_reported(CRASHES)


class _NoWatchdog:
    def feed(self):
        pass


async def run(node, guard, watch=None):
    # The hardware watchdog cannot be stopped once started, and it would cut a long
    # field-tool session short: safe mode, meant for fixing a node, runs without it.
    watchdog = _NoWatchdog() if node.safe_mode else hal.watchdog(_WATCHDOG_MS)
    for sensor in node.sensors:
        if sensor.task is not None:  # a radio link of its own (a wearable)
            asyncio.create_task(sensor.task())
    last = time.ticks_ms()
    now_ms = 0  # accumulated: ticks_ms() wraps every 12 days, a node runs for years
    healthy = False
    while True:
        tick = time.ticks_ms()
        now_ms += time.ticks_diff(tick, last)
        last = tick
        node.step(now_ms)
        for sensor in node.sensors:
            poll = getattr(sensor.extractor, "poll_flush", None)
            if poll is not None:
                poll(now_ms)
        if watch is not None:
            watch.step(now_ms)
        watchdog.feed()
        if not healthy and now_ms > _HEALTHY_AFTER_MS:
            guard.healthy()
            healthy = True
        await asyncio.sleep_ms(_TICK_MS)


async def run_gateway(gateway, guard):
    """A gateway relays ESP-NOW frames upstream and acks back; it sends none of its own."""
    watchdog = hal.watchdog(_WATCHDOG_MS)
    started = time.ticks_ms()
    healthy = False
    while True:
        moved = gateway.step()
        watchdog.feed()
        if not healthy and time.ticks_diff(time.ticks_ms(), started) > _HEALTHY_AFTER_MS:
            guard.healthy()
            healthy = True
        await asyncio.sleep_ms(0 if moved else _TICK_MS)


def main():
    log = console.Log()
    try:
        os.mkdir(_FLASH)
    except OSError:
        pass
    cause = hal.reset_cause()
    if cause == RESET_WATCHDOG:  # the loop stalled last time: say so, once
        crashlog.record(CRASHES, cause, "watchdog reset: the loop stopped feeding it")
    try:
        _main(cause, log)
    except Exception as exc:  # the program stopped: leave a record of why, then stop
        gc.collect()  # what the failed boot had built is garbage now: room to say so
        try:
            crashlog.record_exception(CRASHES, cause, exc)
        except Exception:
            pass  # a full or broken flash: the exception itself still goes up
        raise


def _main(cause, log):
    cfg, error = load(CONFIG, BOARDS, hal.secret_get, hal.secret_set)
    if cfg is None:
        log.error("config", error)
        log.info("boot", "the node waits for the field tools (kinsight-field provision)")
        return
    guard = BootGuard(_FLASH + "/bootguard", cfg["safe_mode_after"])
    if error:
        log.error("config", error)
    if cfg["gateway_channel"] and not guard.safe_mode:
        log.info("boot", "ESP-NOW gateway on channel %d", (cfg["gateway_channel"],))
        from gateway import Gateway

        radio = hal.espnow(cfg["gateway_channel"])
        asyncio.run(run_gateway(Gateway(radio, make_uplink(cfg["uplink"], cfg["board"],
                                                         cfg["node_id"], True)), guard))
        return
    def reboot():
        guard.healthy()  # it ran well enough to fetch and install an update
        hal.reset()

    node = build(cfg, error, guard.safe_mode, cause, reboot)
    console.boot(log, cfg, FIRMWARE_VERSION, cause, node.builder.counter.boot, guard.safe_mode,
                 guard.attempts, crashlog.records(CRASHES))
    # The node keeps what it needs of the configuration; the rest (the board's whole
    # description among it) would otherwise stay in this frame for the node's life.
    cfg = None
    try:
        asyncio.run(run(node, guard, console.Watch(log, node)))
    finally:
        node.outbox.flush()
