"""The virtual node against plain mpremote: on a pty, on socket://, and its virtual world."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinsight_field.virtual_node import VirtualNode, send_control

REPO = Path(__file__).resolve().parents[1]
MPREMOTE = str(Path(sys.executable).parent / "mpremote")

pytestmark = pytest.mark.slow


def mpremote(device: str | Path, *args: str, timeout: float = 10,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([MPREMOTE, "connect", str(device), *args], capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mpremote {' '.join(args)} failed ({proc.returncode}): "
                             f"{proc.stdout}{proc.stderr}")
    return proc


@pytest.fixture
def flash(tmp_path: Path) -> Path:
    path = tmp_path / "flash"
    path.mkdir()
    return path


@pytest.fixture
def node(tmp_path: Path, flash: Path) -> Iterator[VirtualNode]:
    vnode = VirtualNode(flash, pty_path=tmp_path / "node", socket_addr=("127.0.0.1", 0),
                        control_addr=("127.0.0.1", 0))
    vnode.start()
    try:
        yield vnode
    finally:
        vnode.stop()
    assert not (tmp_path / "node").exists()


def pty(node: VirtualNode) -> Path:
    assert node.pty_path is not None
    return node.pty_path


def test_exec_prints(node: VirtualNode) -> None:
    assert mpremote(pty(node), "exec", "print(1+1)").stdout == "2\n"


def test_files_round_trip(node: VirtualNode, flash: Path, tmp_path: Path) -> None:
    source = tmp_path / "local.py"
    source.write_text("X = 1\n\ndef f():\n    return 'x'\n")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 12 + os.urandom(1000))
    mpremote(pty(node), "fs", "mkdir", ":lib", "+", "fs", "cp", str(source), ":lib/x.py",
             "+", "fs", "cp", str(blob), ":/blob.bin")
    assert (flash / "lib" / "x.py").read_text() == source.read_text()
    assert (flash / "blob.bin").read_bytes() == blob.read_bytes()
    listing = mpremote(pty(node), "fs", "ls", ":").stdout
    assert "lib/" in listing and "blob.bin" in listing and ".frozen" not in listing
    cat = mpremote(pty(node), "fs", "cat", ":lib/x.py").stdout
    assert cat.replace("\r\n", "\n") == source.read_text()
    back = tmp_path / "back.bin"
    mpremote(pty(node), "fs", "cp", ":blob.bin", str(back))
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(
        blob.read_bytes()).digest()
    digest = mpremote(pty(node), "exec", "import hashlib, binascii\n"
                      "h = hashlib.sha256(open('/blob.bin', 'rb').read())\n"
                      "print(binascii.hexlify(h.digest()).decode())").stdout.strip()
    assert digest == hashlib.sha256(blob.read_bytes()).hexdigest()
    # the firmware's own absolute paths land in the flash folder, renames included
    mpremote(pty(node), "exec", "import os\nos.rename('/lib/x.py', '/lib/y.py')")
    assert (flash / "lib" / "y.py").exists() and not (flash / "lib" / "x.py").exists()


def test_run_script_uses_frozen_firmware(node: VirtualNode, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("import kinsight_wire, hal\nfor i in range(3):\n    print('tick', i)\n"
                      "print(len(hal.unique_id()), hal.wlan_connect('s', 'p').isconnected())\n")
    out = mpremote(pty(node), "run", str(script)).stdout
    assert out.split("\n")[:4] == ["tick 0", "tick 1", "tick 2", "6 True"]


def test_soft_reset_clears_state_keeps_files(node: VirtualNode, flash: Path) -> None:
    mpremote(pty(node), "resume", "exec", "a = 5\nopen('/keep.txt', 'w').write('kept')")
    assert mpremote(pty(node), "resume", "exec", "print(a)").stdout == "5\n"
    boots = node.boots
    mpremote(pty(node), "soft-reset")
    assert node.boots == boots + 1
    gone = mpremote(pty(node), "resume", "exec", "print(a)", check=False)
    assert gone.returncode != 0 and "NameError" in gone.stdout + gone.stderr
    assert mpremote(pty(node), "exec", "print(open('keep.txt').read())").stdout == "kept\n"
    assert (flash / "keep.txt").read_text() == "kept"


def test_exception_is_a_micropython_traceback(node: VirtualNode) -> None:
    proc = mpremote(pty(node), "exec", "x = 1\n1/0", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "Traceback (most recent call last):" in text
    assert 'File "<stdin>", line 2, in <module>' in text
    assert "ZeroDivisionError: divide by zero" in text
    assert "agent" not in text


def test_socket_endpoint(node: VirtualNode) -> None:
    assert node.socket_address is not None
    host, port = node.socket_address
    assert mpremote(f"socket://{host}:{port}", "exec", "print(6*7)").stdout == "42\n"


def test_live_control_drives_the_hal(node: VirtualNode) -> None:
    read = "import hal\nprint(hal.adc(34).read(), hal.pin_in(13).value())"
    assert mpremote(pty(node), "exec", read).stdout.split() == ["300", "0"]
    assert node.control_address is not None
    assert send_control(*node.control_address, "sit") == "ok"
    assert send_control(*node.control_address, "enter") == "ok"
    seat, present = mpremote(pty(node), "exec", read).stdout.split()
    assert int(seat) > 1500 and present == "1"
    node.world.stand_up()
    node.world.tap_on(6)
    time.sleep(0.5)
    out = mpremote(pty(node), "exec", "import hal\nc = hal.pulse_counter(4)\n"
                   "print(hal.adc(34).read(), c.value())").stdout.split()
    assert out[0] == "300" and int(out[1]) > 0
    assert send_control(*node.control_address, "bogus").startswith("error")


def test_ctrl_c_interrupts_a_running_program(node: VirtualNode) -> None:
    busy = subprocess.Popen([MPREMOTE, "connect", str(pty(node)), "exec", "while True: pass"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
    finally:
        busy.kill()
        busy.wait()
    # the next connection's Ctrl-C stops the loop; the REPL answers again
    assert mpremote(pty(node), "exec", "print('back')").stdout == "back\n"


def test_main_py_runs_at_boot_until_interrupted(tmp_path: Path, flash: Path) -> None:
    (flash / "main.py").write_text("import time\nwhile True:\n    time.sleep_ms(50)\n")
    (flash / "boot.py").write_text("booted = True\n")
    with VirtualNode(flash, pty_path=tmp_path / "node") as vnode:
        time.sleep(0.3)
        out = mpremote(pty(vnode), "resume", "exec", "print(booted)").stdout
        assert out == "True\n"


def test_command_line(tmp_path: Path, flash: Path) -> None:
    link = tmp_path / "cli-node"
    proc = subprocess.Popen([sys.executable, "-m", "kinsight_field.virtual_node", "--pty",
                             str(link), "--flash", str(flash), "--control", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first == f"virtual node on {link} (flash {flash})\n"
        control = proc.stdout.readline().split()[-1]
        host, port = control.rsplit(":", 1)
        assert send_control(host, int(port), "sit 2000") == "ok"
        out = mpremote(link, "exec", "import hal\nprint(hal.adc(34).read())").stdout
        assert out == "2000\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    assert not link.exists()


def test_secrets_live_beside_the_flash_and_outlast_a_power_cut(
        tmp_path: Path, flash: Path) -> None:
    """hal.secret_*: the virtual node's NVS, a file beside the flash folder that no path
    on the node reaches; a new node on the same flash (a power cut) still has them."""
    set_code = ("import hal\nhal.secret_set('key', b'\\x01' * 32)\n"
                "hal.secret_set('wifi_password', b'hunter22')\nhal.secret_set('x', b'')")
    with VirtualNode(flash, pty_path=tmp_path / "node") as vnode:
        mpremote(pty(vnode), "exec", set_code)
        assert vnode.nvs == tmp_path / "flash.nvs" and vnode.nvs.is_file()
        assert vnode.secrets() == {"key": b"\x01" * 32, "wifi_password": b"hunter22"}
        assert not any(flash.rglob("*")), "nothing in the node's filesystem"
        ls = mpremote(pty(vnode), "fs", "ls", ":", "+", "exec",
                      "import os; print(os.listdir('/'), os.listdir('/.frozen'))").stdout
        assert "nvs" not in ls.lower() and "hunter22" not in ls
        for path in (f":{vnode.nvs}", ":/../flash.nvs", ":../flash.nvs"):
            cat = mpremote(pty(vnode), "fs", "cat", path, check=False)
            assert "hunter22" not in cat.stdout + cat.stderr
    with VirtualNode(flash, pty_path=tmp_path / "node") as vnode:  # power back on
        out = mpremote(pty(vnode), "exec",
                       "import hal\nprint(hal.secret_get('wifi_password'), "
                       "hal.secret_get('mqtt_password'))\n"
                       "print(hal.secret_erase('wifi_password'), hal.secret_erase('nope'))"
                       ).stdout
        assert out == "b'hunter22' None\nTrue False\n"
        assert vnode.secrets() == {"key": b"\x01" * 32}


def test_a_command_line_node_without_flash_leaves_no_secrets_behind(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    link = tmp_path / "cli-node"
    proc = subprocess.Popen([sys.executable, "-m", "kinsight_field.virtual_node", "--pty",
                             str(link)], stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env=dict(os.environ, TMPDIR=str(temp)))
    try:
        assert proc.stdout is not None
        flash = Path(proc.stdout.readline().rsplit("(flash ", 1)[1].rstrip(")\n"))
        mpremote(link, "exec", "import hal\nhal.secret_set('key', b'k' * 32)")
        assert json.loads(flash.with_name("flash.nvs").read_text()) == {"key": "6b" * 32}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    assert list(temp.iterdir()) == []


def test_a_node_leaves_nothing_in_the_temp_dir(tmp_path: Path, flash: Path) -> None:
    vnode = VirtualNode(flash, pty_path=tmp_path / "node")
    vnode.start()
    rom = vnode.rom
    assert rom.is_dir() and any(rom.iterdir())
    vnode.stop()
    vnode.stop()  # twice is harmless
    assert not rom.exists()


def test_a_node_that_cannot_start_leaves_nothing_behind(tmp_path: Path, flash: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        vnode = VirtualNode(flash, pty_path=tmp_path / "node", socket_addr=busy.getsockname())
        with pytest.raises(OSError):
            vnode.start()
    assert not vnode.rom.exists()
    assert not (tmp_path / "node").exists()


def test_the_fake_ble_radio_plays_the_worlds_heart_rate(node: VirtualNode,
                                                        tmp_path: Path) -> None:
    """hal.heart_rate_link on the virtual node: a wearable whose rate is the world's hr,
    through the firmware's WearableSource and 0x2A37 parser."""
    script = tmp_path / "wearable.py"
    script.write_text(
        "import asyncio, hal\nfrom wearable import WearableSource\n"
        "src = WearableSource(hal.heart_rate_link(name='Strap'))\n"
        "async def main():\n"
        "    task = asyncio.create_task(src.run())\n"
        "    got = []\n"
        "    for _ in range(35):\n"
        "        await asyncio.sleep_ms(100)\n"
        "        s = src.read()\n"
        "        if s is not None:\n"
        "            got.append((s.bpm, s.contact, s.rr_count, s.rr[0]))\n"
        "    task.cancel()\n"
        "    print(src.attempts, src.connected, got[:2])\n"
        "asyncio.run(main())\n")
    node.world.set("hr", 72)
    out = mpremote(pty(node), "run", str(script)).stdout.strip()
    assert out == "1 True [(72, True, 1, 853), (72, True, 1, 853)]"  # 61440 // 72
    node.world.set("hr_contact", 0)
    out = mpremote(pty(node), "run", str(script)).stdout.strip()
    assert out == "1 True [(0, False, 0, 0), (0, False, 0, 0)]"  # the strap is off
