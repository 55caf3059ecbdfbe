# Freezes Kinsight's firmware into a MicroPython image, as bytecode compiled by
# mpy-cross: frozen modules run from flash and leave the heap to the sensors.
#
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=<checkout>/boards/manifest.py
#
# (BOARD=ESP32_GENERIC_C3 or ESP32_GENERIC_S3 for the other boards.) The board's
# pin map (boards/<board>.json) and the node's config.json go to the filesystem.
include("$(PORT_DIR)/boards/manifest.py")
# micropython-lib's MQTT client, for the mqtt uplink.
require("umqtt.simple")
# micropython-lib's asyncio BLE library, for a wearable's heart rate (hal only).
require("aioble")

module("kinsight_wire.py", base_path="../shared")
for name in (
    "bootguard",
    "config",
    "console",
    "crashlog",
    "fieldapi",
    "flow",
    "framing",
    "gateway",
    "hal",
    "heartrate",
    "hx711",
    "journal",
    "ld2410",
    "node",
    "otaboot",
    "outbox",
    "presence",
    "pressure",
    "runtime",
    "sensors",
    "sequence",
    "slip",
    "update",
    "uplink",
    "uplink_mqtt",
    "uplink_serial",
    "vl53l0x",
    "wearable",
    "wirecbor",
):
    module(name + ".py", base_path="../firmware")
