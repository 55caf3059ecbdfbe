"""The field guide, walked on the virtual node at its default heap (an ESP32's free
heap, its firmware frozen): a blank node, ``deploy --mpy``, ``provision`` with two
sensors and the host's address, ``reboot``; the node boots, runs ``main.py`` as a board
does, and the host (a real ``kinsight listen``) stores its status frames, with the
node placed with its resident."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinsight.residents import placements
from kinsight.store import Store
from kinsight_field.cli import main
from kinsight_field.virtual_node import ESP32_HEAP, VirtualNode
from support import start_listener

pytestmark = pytest.mark.slow


def test_from_a_blank_node_to_its_status_frames_stored_on_the_host(tmp_path: Path):
    db = tmp_path / "host.db"
    listener, port = start_listener(db)
    node = VirtualNode(tmp_path / "flash", pty_path=tmp_path / "pty")
    assert node.heap == ESP32_HEAP == "112K"  # the default, not a larger one
    node.start()
    pty = str(tmp_path / "pty")
    try:
        assert main(["deploy", "--port", pty, "--mpy"]) == 0
        assert main(["provision", "--port", pty, "--db", str(db), "--node-id", "101",
                     "--board", "esp32-devkitc", "--household", "h-17", "--resident", "r-1",
                     "--room", "lounge", "--udp", f"127.0.0.1:{port}", "--ssid", "home",
                     "--password", "secret", "--role", "seat:fsr:pin=34",
                     "--role", "tap:flow:pin=27"]) == 0
        # The key and the Wi-Fi password are in the node's NVS: not in config.json, on
        # disk or as `mpremote fs cat` reads it.
        key = node.secrets()["key"]
        assert node.secrets()["wifi_password"] == b"secret"
        on_disk = (tmp_path / "flash" / "config.json").read_text()
        cat = subprocess.run([str(Path(sys.executable).parent / "mpremote"), "connect", pty,
                              "fs", "cat", ":config.json"],
                             capture_output=True, text=True, timeout=30)
        assert cat.returncode == 0 and '"node_id": 101' in cat.stdout, cat.stderr
        for text in (on_disk, cat.stdout):
            assert key.hex() not in text and "secret" not in text and "password" not in text
        with Store(db) as store:
            assert store.node_keys()[101] == key
        assert main(["reboot", "--port", pty]) == 0
        deadline = time.monotonic() + 60
        statuses = 0
        while statuses == 0:
            assert time.monotonic() < deadline, "the host never heard from the node"
            time.sleep(0.5)
            with Store(db) as store:
                statuses = int(store.query("SELECT COUNT(*) FROM statuses WHERE node_id = "
                                           "101")[0][0])
        with Store(db) as store:
            assert placements(store)[101] == ("r-1", "lounge")
            (reset,) = store.query("SELECT reset_cause FROM statuses WHERE node_id = 101 "
                                   "ORDER BY time_s LIMIT 1")[0]
        assert reset == "hard"  # kinsight-field reboot is a reset, as on a board
        assert node.import_cost > 0  # the frozen modules' credit, measured
    finally:
        node.stop()
        listener.terminate()
        listener.wait(10)


def test_a_node_with_four_roles_boots_within_an_esp32s_free_heap(tmp_path: Path):
    """kinsight bench firmware's boot: beyond what its modules take on the unix port (a
    board keeps them frozen in flash), the boot of a node with all four roles peaks
    under the 112 KB an ESP32 has free."""
    from kinsight.bench.firmware import boot_heap
    from kinsight.simulation import micropython as mpy

    boot = boot_heap(mpy.compile_modules(tmp_path))
    assert 50_000 < boot["modules_bytes"]  # measured, every module imported
    assert 0 < boot["settled_bytes"] <= boot["boot_peak_bytes"] < 112 * 1024, boot


def test_a_node_with_a_wearable_and_stairs_boots(tmp_path: Path):
    """The wearable's role beside the stairs (which tell it when someone moves): its
    sensor and BLE link (the virtual node's fake radio) build as a boot builds them."""
    from kinsight.bench.firmware import BOOT_CONFIG, boot_heap
    from kinsight.simulation import micropython as mpy

    roles = [{"role": "stairs", "sensor": "pir", "pin": 13},
             {"role": "heart_rate", "sensor": "ble", "name": "Polar H10 1A2B3C4D"},
             *BOOT_CONFIG["roles"][2:]]  # type: ignore[misc]
    boot = boot_heap(mpy.compile_modules(tmp_path), dict(BOOT_CONFIG, roles=roles))
    assert 0 < boot["settled_bytes"] <= boot["boot_peak_bytes"] < 112 * 1024, boot


def test_a_boot_that_runs_out_of_memory_says_why_in_status_and_logs(tmp_path: Path, capsys):
    """A budget too small for the configuration (16 KB beyond the modules: four roles boot
    in 32 KB now): the boot's MemoryError is recorded in
    the node's crash ring, and ``status`` and ``logs`` say it."""
    db = tmp_path / "host.db"
    node = VirtualNode(tmp_path / "flash", pty_path=tmp_path / "pty", heap="16K")
    node.start()
    pty = str(tmp_path / "pty")
    try:
        assert main(["deploy", "--port", pty, "--mpy"]) == 0
        assert main(["provision", "--port", pty, "--db", str(db), "--node-id", "102",
                     "--board", "esp32-devkitc", "--udp", "127.0.0.1:9", "--ssid", "home",
                     "--password", "secret", "--role", "seat:fsr:pin=34",
                     "--role", "bed:hx711:dout=18,sck=19", "--role", "tap:flow:pin=27",
                     "--role", "toilet:ld2410:uart=2/17/16"]) == 0
        assert main(["reboot", "--port", pty]) == 0
        deadline = time.monotonic() + 30
        while not (tmp_path / "flash" / "kinsight" / "crashes").exists():
            assert time.monotonic() < deadline, "no crash was recorded"
            time.sleep(0.2)
        capsys.readouterr()
        assert main(["status", "--port", pty]) == 0
        out = capsys.readouterr().out
        assert "last crash:" in out and "MemoryError" in out, out
        assert "after a hard reset" in out
        assert main(["logs", "--port", pty]) == 0
        assert "crash: " in capsys.readouterr().out
    finally:
        node.stop()
