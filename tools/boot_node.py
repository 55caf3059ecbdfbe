# The node's boot, measured, for kinsight bench firmware: run under the MicroPython unix
# port with a large heap, the virtual node's hal ahead of the firmware's.
#
#   micropython -m boot_node DEVICE_DIR FLASH_DIR [after-cut] [bare]
#
# "after-cut" boots from a flash as a power cut leaves a busy node whose uplink was
# down: its journal holding the last half hour's events and two hours' summaries of
# four roles, never framed, and its outbox a quarter full of unacked frames.
#
# Imports every module a node's boot imports, then mounts FLASH_DIR (config.json and
# boards/) at "/" and builds the node from its configuration as runtime.main does.
# Prints one JSON line: what the modules take once imported (a board runs them frozen,
# in flash), the heap the boot settles at beyond that, with each step's share.
#
# The heap is gc.mem_alloc() after a collection: micropython.mem_current() only ever
# grows on the unix port (a sweep does not subtract what it frees), so it counts every
# byte the boot allocated, garbage included ("allocated" below), not what it holds.
# Each step of runtime.build runs with a collection before and after it, so the live
# heap before a step plus what the step allocates bounds the peak within it; a long
# step (recovering a journal) frees much of that as it goes, so the boot's true peak
# is found by booting in ever smaller heaps ("bare": without the measuring, which
# takes heap of its own), and "heap_bytes" is what this run's heap holds.

import gc
import json
import os
import sys

import micropython

sys.path.insert(0, sys.argv[1])  # the virtual node's hal

gc.collect()
_BASE = gc.mem_alloc()

import hal  # noqa: E402
import runtime  # noqa: E402
from config import load  # noqa: E402

for _name in ("flow", "heartrate", "hx711", "ld2410", "presence", "pressure", "vl53l0x",
              "wearable", "update"):
    __import__(_name)  # the sensors' modules (as a node with every role), the updater

gc.collect()
_LOADED = gc.mem_alloc()
_START = [_LOADED]  # the heap once the flash is mounted, as a board's boot starts
_STEPS = []  # [name, allocated, retained, peak bound], in the order they ran
_PEAK = [0]


def _measured(name, fn):
    def call(*args, **kwargs):
        gc.collect()
        live = gc.mem_alloc()
        total = micropython.mem_current()
        out = fn(*args, **kwargs)
        allocated = micropython.mem_current() - total
        gc.collect()
        bound = live - _START[0] + allocated
        _PEAK[0] = max(_PEAK[0], bound)
        _STEPS.append([name, allocated, gc.mem_alloc() - live, bound])
        return out
    return call


def _measure(module, names, within=""):
    for name in names:
        setattr(module, name, _measured(within + name, getattr(module, name)))


def _after_cut():
    from journal import Journal
    from kinsight_wire import (
        EV_DURATION_DS,
        EV_ROLE,
        EV_TYPE,
        SM_EPISODES,
        SM_OCCUPIED_DS,
        SM_PERIOD_S,
        SM_ROLE,
    )
    from outbox import Outbox

    journal = Journal("/kinsight/journal")
    t = 1790000000000
    for i in range(40):
        journal.note("events", t + i * 45000,
                     {EV_TYPE: 1 + i % 9, EV_ROLE: 1 + i % 4, EV_DURATION_DS: 100 + i * 37})
    for i in range(32):
        journal.note("summaries", t + i * 225000,
                     {SM_ROLE: 1 + i % 4, SM_PERIOD_S: 900, SM_OCCUPIED_DS: 3000 + i * 11,
                      SM_EPISODES: i % 5})
    box = Outbox("/kinsight/outbox")
    frame = bytes(range(200))
    for seq in range(128):
        box.push(70000, seq, frame)
    box.flush()


def _instrument():
    import crashlog
    import update

    _measure(runtime, ("Signer", "SequenceCounter", "FrameBuilder", "Outbox", "make_uplink",
                       "Backoff", "Forwarder", "Sink", "build_sensors", "default_diagnostics",
                       "Journal", "Node", "recover_node"))
    _measure(update, ("Updater",))  # runtime.build imports it when it needs it
    _measure(crashlog, ("unreported",))
    # Within build_sensors, which imports these from their modules as it needs them.
    for module, names in (("pressure", ("PressureExtractor",)), ("hx711", ("HX711",)),
                          ("flow", ("FlowExtractor",)),
                          ("presence", ("PresenceExtractor", "RadarSource")),
                          ("ld2410", ("LD2410Parser",))):
        _measure(sys.modules[module], names, "build_sensors: ")


def main(flash, after_cut, bare):
    from flashvfs import FlashVfs  # the virtual node's flash (POSIX renames within it)

    os.umount("/")
    os.mount(FlashVfs(flash, flash), "/")
    if after_cut:
        _after_cut()
    if not bare:
        _instrument()
    gc.collect()
    _START[0] = gc.mem_alloc()
    allocated = micropython.mem_current()
    cfg, error = load("/config.json", "/boards") if bare else _measured("config.load", load)(
        "/config.json", "/boards")
    if cfg is None:
        raise SystemExit("boot_node: " + str(error))
    node = runtime.build(cfg, error, False, hal.reset_cause())
    allocated = micropython.mem_current() - allocated
    roles = len(cfg["roles"])
    gc.collect()
    print(json.dumps({"modules_bytes": _LOADED - _BASE, "peak_bound_bytes": _PEAK[0],
                      "settled_bytes": gc.mem_alloc() - _START[0],
                      "allocated_bytes": allocated, "steps": _STEPS,
                      "heap_bytes": gc.mem_alloc() + gc.mem_free(), "start_bytes": _START[0],
                      "roles": roles, "error": error, "recovered": node.recovered,
                      "has_outbox": node.outbox is not None}))


main(sys.argv[2], "after-cut" in sys.argv[3:], "bare" in sys.argv[3:])
