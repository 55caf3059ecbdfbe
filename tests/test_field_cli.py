"""kinsight-field end to end against virtual nodes (the real firmware under the unix port,
behind a pty and a socket://, with a simulated world for the sensors).

One node is deployed and provisioned once for the module; the tests that need a
blank or broken node get their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinsight.residents import placements
from kinsight.store import Store
from kinsight_field.cli import main
from kinsight_field.virtual_node import VirtualNode

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def vnode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VirtualNode, Path, Path]]:
    """(node, pty, db): a virtual node with the firmware deployed and a seat and a tap."""
    tmp = tmp_path_factory.mktemp("field")
    node = VirtualNode(tmp / "flash", pty_path=tmp / "pty", socket_addr=("127.0.0.1", 0))
    node.start()
    pty, db = tmp / "pty", tmp / "host.db"
    assert main(["deploy", "--port", str(pty), "--mpy"]) == 0
    assert main(["provision", "--port", str(pty), "--db", str(db), "--node-id", "101",
                 "--board", "esp32-devkitc", "--household", "h-17", "--resident", "r-1",
                 "--room", "lounge", "--serial-uplink", "0", "--role", "seat:fsr:pin=34",
                 "--role", "tap:flow:pin=27"]) == 0
    yield node, pty, db
    node.stop()


def flash_config(node: VirtualNode) -> dict:
    return json.loads((node.flash / "config.json").read_text())


def test_provision_writes_a_checked_config_and_registers_the_key(vnode):
    node, _, db = vnode
    cfg = flash_config(node)
    assert cfg["node_id"] == 101 and cfg["household"] == "h-17"
    assert [r["role"] for r in cfg["roles"]] == ["seat", "tap"]
    assert cfg["roles"][1]["pulses_per_l"] == 450  # calibration default
    key = node.secrets()["key"]
    assert len(key) == 32
    with Store(db) as store:
        assert store.node_keys()[101] == key
        assert placements(store)[101] == ("r-1", "lounge")  # its events are r-1's
    assert not (node.flash / "config.json.tmp").exists()


def test_the_key_is_in_nvs_where_fs_cat_and_listings_cannot_reach_it(vnode, capsys):
    node, pty, _ = vnode
    key = node.secrets()["key"]
    assert "key" not in flash_config(node)
    for path in node.flash.rglob("*"):  # the node's whole filesystem, on disk
        if path.is_file():
            data = path.read_bytes()
            assert key not in data and key.hex().encode() not in data, path
    proc = subprocess.run([str(BIN / "mpremote"), "connect", str(pty), "fs", "cat",
                           ":config.json", "+", "fs", "ls", ":", "+", "exec",
                           "import os; print(os.listdir('/'), os.listdir('/.frozen'))"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert '"node_id": 101' in proc.stdout  # the file itself was read
    assert key.hex() not in proc.stdout and "nvs" not in proc.stdout.lower()
    code, out, _ = run(capsys, "status", "--port", str(pty), "--json")
    assert code == 0 and json.loads(out)["secrets"] == ["key"]
    assert key.hex() not in out
    code, out, _ = run(capsys, "status", "--port", str(pty))
    assert code == 0 and "secrets: key in NVS" in out and key.hex() not in out


def test_a_missing_key_is_named_in_status(vnode, capsys):
    node, pty, _ = vnode
    key = node.secrets()["key"]
    nvs = node.nvs.read_bytes()
    node.nvs.unlink()  # an NVS partition erased (or a node that lost its secrets)
    try:
        code, out, _ = run(capsys, "status", "--port", str(pty), "--json")
        assert code == 0
        s = json.loads(out)
        assert s["config_error"] == ("key: not provisioned (no key in NVS): run kinsight-field "
                                     "provision")
        assert s["secrets"] == [] and s["node_id"] is None
        code, out, _ = run(capsys, "status", "--port", str(pty))
        assert code == 0 and "config: key: not provisioned (no key in NVS)" in out
        assert "secrets: none in NVS" in out
    finally:
        node.nvs.write_bytes(nvs)
    assert node.secrets()["key"] == key
    code, out, _ = run(capsys, "status", "--port", str(pty), "--json")
    assert json.loads(out)["config_error"] is None


def test_invalid_config_is_refused_with_the_nodes_message(vnode, capsys):
    node, pty, db = vnode
    before = flash_config(node)
    code, _, err = run(capsys, "provision", "--port", str(pty), "--db", str(db),
                       "--node-id", "102", "--board", "esp32-devkitc", "--serial-uplink", "0",
                       "--role", "seat:fsr:pin=27")
    assert code == 1
    assert err.startswith("kinsight-field: the node refuses this configuration: roles[0].pin:")
    assert "no ADC1 channel" in err
    assert flash_config(node) == before
    with Store(db) as store:
        assert 102 not in store.node_keys()


def test_status_reports_diagnostics_and_readings(vnode, capsys):
    node, pty, _ = vnode
    node.world.stand_up()
    code, out, _ = run(capsys, "status", "--port", str(pty), "--json")
    assert code == 0
    s = json.loads(out)
    assert s["firmware"] == "0.2.0" and s["node_id"] == 101 and s["config_error"] is None
    assert s["safe_mode"] is False and s["queue_depth"] == 0 and s["free_heap"] > 0
    assert s["reset_cause"] in ("soft", "power_on")
    assert [(r["role"], r["value"]) for r in s["readings"]] == [("seat", 300), ("tap", 0)]
    node.world.sit_down()
    try:
        code, out, _ = run(capsys, "status", "--port", str(pty))
    finally:
        node.world.stand_up()
    assert code == 0 and "seat (fsr): 1800 ADC counts of 4095" in out
    assert "tap (flow): 0 pulses counted" in out and "firmware: 0.2.0" in out


def test_status_over_socket(vnode, capsys):
    node, _, _ = vnode
    host, port = node.socket_address or ("", 0)
    code, out, _ = run(capsys, "status", "--port", f"socket://{host}:{port}", "--json")
    assert code == 0 and json.loads(out)["node_id"] == 101


def test_selftest_passes_and_catches_a_stuck_adc(vnode, capsys):
    node, pty, _ = vnode
    code, out, _ = run(capsys, "selftest", "--port", str(pty))
    assert code == 0, out
    assert "PASS seat (fsr)" in out and "PASS tap (flow)" in out
    node.world.set("seat", 0)
    try:
        code, out, err = run(capsys, "selftest", "--port", str(pty))
    finally:
        node.world.stand_up()
    assert code == 1
    assert "FAIL seat (fsr): ADC stuck at 0" in out and "1 check(s) failed" in err


def test_live_streams_readings(vnode, capsys):
    node, pty, _ = vnode
    node.world.sit_down()
    try:
        code, out, _ = run(capsys, "live", "--port", str(pty), "--seconds", "2")
    finally:
        node.world.stand_up()
    assert code == 0
    assert "seat: " in out and "raw=1800" in out and "done: 2 s" in out


def test_calibrate_seat_in_two_steps_and_tap(vnode, capsys):
    node, pty, _ = vnode
    node.world.stand_up()
    code, out, _ = run(capsys, "calibrate", "--port", str(pty), "--role", "seat", "--empty",
                       "--yes", "--seconds", "0.5")
    assert code == 0 and "empty: level 300" in out
    node.world.sit_down()
    try:
        code, out, _ = run(capsys, "calibrate", "--port", str(pty), "--role", "seat",
                           "--occupied", "--yes", "--seconds", "0.5")
    finally:
        node.world.stand_up()
    assert code == 0, out
    seat = flash_config(node)["roles"][0]
    assert (seat["on_delta"], seat["off_delta"]) == (900, 450)

    node.world.tap_on(6.0)  # 0.1 l/s
    try:
        code, out, err = run(capsys, "calibrate", "--port", str(pty), "--role", "tap",
                             "--litres", "0.2", "--yes", "--seconds", "2")
    finally:
        node.world.tap_off()
    assert code == 0, err
    assert 350 <= flash_config(node)["roles"][1]["pulses_per_l"] <= 550


def test_calibration_out_of_range_keeps_the_config(vnode, capsys):
    node, pty, _ = vnode
    before = flash_config(node)
    node.world.tap_on(6.0)
    try:
        code, _, err = run(capsys, "calibrate", "--port", str(pty), "--role", "tap",
                           "--litres", "5", "--yes", "--seconds", "1")
    finally:
        node.world.tap_off()
    assert code == 1 and "roles[1].pulses_per_l" in err
    assert flash_config(node) == before


def test_safe_mode_enter_and_clear(vnode, capsys):
    _, pty, _ = vnode
    assert run(capsys, "safe-mode", "--port", str(pty))[0] == 0
    assert json.loads(run(capsys, "status", "--port", str(pty), "--json")[1])["safe_mode"]
    assert run(capsys, "safe-mode", "--port", str(pty), "--clear")[0] == 0
    assert not json.loads(run(capsys, "status", "--port", str(pty), "--json")[1])["safe_mode"]


def test_logs_show_what_the_tools_did(vnode, capsys):
    _, pty, _ = vnode
    code, out, _ = run(capsys, "logs", "--port", str(pty))
    assert code == 0
    assert "field: deployed firmware 0.2.0" in out and "field: provisioned as node 101" in out


def test_reboot(vnode, capsys):
    node, pty, _ = vnode
    boots = node.boots
    code, out, _ = run(capsys, "reboot", "--port", str(pty))
    assert code == 0 and "rebooting" in out
    deadline = time.monotonic() + 10
    while node.boots == boots and time.monotonic() < deadline:
        time.sleep(0.1)
    assert node.boots > boots
    assert run(capsys, "status", "--port", str(pty), "--json")[0] == 0


def test_plain_mpremote_works_against_a_provisioned_node(vnode):
    _, pty, _ = vnode
    proc = subprocess.run([str(BIN / "mpremote"), "connect", str(pty), "fs", "cat",
                           "/lib/kinsight_version", "+", "exec",
                           "import fieldapi; fieldapi.logs(1)"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "0.2.0" in proc.stdout and '"lines"' in proc.stdout


def test_version_mismatch_says_to_deploy(vnode, capsys):
    node, pty, _ = vnode
    version = node.flash / "lib" / "kinsight_version"
    version.write_text("0.1.0\n")
    code, _, err = run(capsys, "status", "--port", str(pty))
    assert code == 1
    assert "runs firmware 0.1.0 but this kinsight-field is for 0.2.0" in err
    assert "kinsight-field deploy" in err
    code, out, _ = run(capsys, "deploy", "--port", str(pty), "--mpy")
    assert code == 0 and "1 files sent" in out
    assert version.read_text() == "0.2.0\n"


def _lib_hashes(flash: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((flash / "lib").iterdir())}


def test_an_interrupted_deploy_leaves_the_old_firmware_working(vnode, tmp_path, capsys):
    node, pty, _ = vnode
    before = _lib_hashes(node.flash)
    # A checkout whose firmware differs in every module: the deploy must send them all.
    src = tmp_path / "src"
    for part in ("firmware", "shared", "boards"):
        shutil.copytree(REPO / part, src / part)
    for module in (src / "firmware").glob("*.py"):
        module.write_text(module.read_text() + "\n# changed\n" + "#" * 4000 + "\n")
    proc = subprocess.Popen([str(BIN / "kinsight-field"), "deploy", "--port", str(pty)],
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, KINSIGHT_SOURCE=str(src)))
    assert proc.stdout is not None
    sent = 0
    for line in proc.stdout:
        sent += "send /lib/" in line
        if sent == 4:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert sent == 4, "the deploy finished before it could be interrupted"
    assert _lib_hashes(node.flash) == before  # the old firmware, whole
    code, out, err = run(capsys, "status", "--port", str(pty), "--json")
    assert code == 0, err
    assert json.loads(out)["node_id"] == 101, out
    code, out, _ = run(capsys, "deploy", "--port", str(pty), "--mpy")
    assert code == 0 and "up to date" in out
    assert not (node.flash / "lib.new").exists()


def test_factory_reset_asks_first(vnode, capsys, monkeypatch):
    node, pty, _ = vnode
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, _ = run(capsys, "factory-reset", "--port", str(pty))
    assert code == 1 and "nothing erased" in out
    assert (node.flash / "config.json").exists()
    assert node.secrets().keys() == {"key"}
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, _ = run(capsys, "factory-reset", "--port", str(pty))
    assert code == 0 and "/config.json" in out and "the key from NVS" in out
    assert not (node.flash / "config.json").exists() and not (node.flash / "kinsight").exists()
    assert node.secrets() == {}  # NVS erased too
    assert (node.flash / "lib" / "kinsight_version").exists()  # the firmware stays
    code, out, _ = run(capsys, "status", "--port", str(pty), "--json")
    assert code == 0 and "provision" in json.loads(out)["config_error"]


def test_a_node_provisioned_by_older_tools_moves_its_secrets_to_nvs_at_boot(tmp_path, capsys):
    """config.json as tools before NVS wrote it, key and Wi-Fi password in it: the boot
    moves them into NVS and writes config.json without them."""
    old_key = bytes(range(100, 132))
    legacy = {"node_id": 103, "key": old_key.hex(), "board": "esp32-devkitc",
              "household": "h-3", "resident": "",
              "uplink": {"type": "udp", "host": "127.0.0.1", "port": 9, "ssid": "home",
                         "password": "older-wifi"},
              "roles": [{"role": "seat", "sensor": "fsr", "pin": 34}]}
    with VirtualNode(tmp_path / "flash", pty_path=tmp_path / "pty") as node:
        pty = str(tmp_path / "pty")
        assert main(["deploy", "--port", pty, "--mpy"]) == 0
        (node.flash / "config.json").write_text(json.dumps(legacy, indent=1))
        code, out, _ = run(capsys, "status", "--port", pty, "--json")
        assert code == 0 and json.loads(out)["config_error"] is None  # before the boot
        assert node.secrets() == {}  # looking changes nothing
        assert run(capsys, "reboot", "--port", pty)[0] == 0
        deadline = time.monotonic() + 20
        while "key" in flash_config(node):
            assert time.monotonic() < deadline, "the boot did not move the secrets"
            time.sleep(0.2)
        assert node.secrets() == {"key": old_key, "wifi_password": b"older-wifi"}
        text = (node.flash / "config.json").read_text()
        assert old_key.hex() not in text and "older-wifi" not in text
        del legacy["key"], legacy["uplink"]["password"]
        assert json.loads(text) == legacy  # all else kept
        code, out, _ = run(capsys, "status", "--port", pty, "--json")
        s = json.loads(out)
        assert s["config_error"] is None and s["secrets"] == ["key", "wifi_password"]
        assert (s["node_id"], s["uplink"]) == (103, "udp")


def test_no_device(capsys, tmp_path):
    code, _, err = run(capsys, "status", "--port", str(tmp_path / "ttyUSB9"))
    assert code == 1
    assert err.startswith(f"kinsight-field: no device at {tmp_path / 'ttyUSB9'}")


def test_blank_board_is_not_a_kinsight_node(tmp_path, capsys):
    with VirtualNode(tmp_path / "flash", pty_path=tmp_path / "pty"):
        code, _, err = run(capsys, "status", "--port", str(tmp_path / "pty"))
    assert code == 1
    assert "is not a Kinsight node (no /lib/kinsight_version)" in err
    assert "kinsight-field deploy" in err


def test_every_command_has_help(capsys):
    for command in ("list", "deploy", "provision", "status", "live", "calibrate", "selftest",
                    "logs", "reboot", "safe-mode", "factory-reset"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: kinsight-field" in capsys.readouterr().out


@pytest.mark.parametrize("args", [
    ["status", "--port", "/nonexistent/tty"],
    ["logs", "--port", "/dev/null"],
    ["provision", "--port", "/nonexistent/tty", "--node-id", "-3", "--board", "x",
     "--db", "/nonexistent/k.db"],
    ["provision", "--port", "/nonexistent/tty", "--node-id", str(2**70), "--board",
     "esp32-devkitc", "--db", "/nonexistent/k.db"],
    ["virtual-node", "--pty", "/nonexistent/dir/pty", "--heap", "5Q"],
    ["calibrate", "--port", "/nonexistent/tty"],
])
def test_bad_input_is_one_line_never_a_traceback(args):
    proc = subprocess.run([sys.executable, "-m", "kinsight_field.cli", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    assert "kinsight-field" in proc.stderr
