# The node's boot, measured, for kinsight bench firmware: run under the MicroPython unix
# port with a large heap, the virtual node's hal ahead of the firmware's.
#
#   micropython -m boot_node DEVICE_DIR FLASH_DIR
#
# Imports every module a node's boot imports, then mounts FLASH_DIR (config.json and
# boards/) at "/" and builds the node from its configuration as runtime.main does.
# Prints one JSON line: what the modules take once imported (a board runs them frozen,
# in flash), and the boot's peak and settled heap beyond that.

import gc
import json
import os
import sys

import micropython

sys.path.insert(0, sys.argv[1])  # the virtual node's hal

gc.collect()
_BASE = micropython.mem_current()

import hal  # noqa: E402
import runtime  # noqa: E402
from config import load  # noqa: E402

for _name in ("flow", "heartrate", "hx711", "ld2410", "presence", "pressure", "vl53l0x",
              "wearable", "update"):
    __import__(_name)  # the sensors' modules (as a node with every role), the updater

gc.collect()
_LOADED = micropython.mem_current()


def main(flash):
    from flashvfs import FlashVfs  # the virtual node's flash (POSIX renames within it)

    os.umount("/")
    os.mount(FlashVfs(flash, flash), "/")
    cfg, error = load("/config.json", "/boards")
    if cfg is None:
        raise SystemExit("boot_node: " + str(error))
    node = runtime.build(cfg, error, False, hal.reset_cause())
    peak = micropython.mem_peak() - _LOADED
    gc.collect()
    print(json.dumps({"modules_bytes": _LOADED - _BASE, "boot_peak_bytes": peak,
                      "settled_bytes": micropython.mem_current() - _LOADED,
                      "roles": len(cfg["roles"]), "error": error,
                      "has_outbox": node.outbox is not None}))


main(sys.argv[2])
