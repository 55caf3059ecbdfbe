"""Updates over the air, end to end: ``kinsight ota`` stages a bundle, a real ``kinsight
listen`` offers it in its acks and answers the node's requests, and the virtual node (the
firmware frozen, an ESP32's free heap) fetches it over a UDP path that loses, repeats,
reorders and corrupts datagrams, through a power cut mid-transfer, installs it and
restarts into it; then a bundle that fails to start is rolled back, and the host hears of
the crash and of the failed update."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import cbor2
import pytest

import kinsight_wire as wire
from kinsight.cli import main as kinsight
from kinsight.store import Store, updates
from kinsight_field.cli import main as field
from kinsight_field.virtual_node import VirtualNode
from support import REPO, ChaosPath, start_listener

pytestmark = pytest.mark.slow
NODE = 101


def _firmware(tmp: Path, version: str, *, broken: bool = False) -> Path:
    """A bundle's folder: the node's runtime and node modules (the rest of the firmware
    comes from the board's image), with its own version; ``broken`` one whose start
    raises."""
    out = tmp / version
    out.mkdir()
    for name in ("node.py", "runtime.py"):
        shutil.copy(REPO / "firmware" / name, out / name)
    text = (out / "node.py").read_text(encoding="utf-8")
    (out / "node.py").write_text(re.sub(r'^FIRMWARE_VERSION = "[^"]+"',
                                        f'FIRMWARE_VERSION = "{version}"', text, flags=re.M),
                                 encoding="utf-8")
    if broken:
        (out / "runtime.py").write_text('raise ImportError("this build cannot start")\n',
                                        encoding="utf-8")
    return out


def _wait(what: str, seconds: float, check, explain=lambda: "") -> object:
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {explain()}"
        time.sleep(0.5)


def _node_side(flash: Path, db: Path) -> str:
    """What the node's flash and the host say, for a test that waited in vain."""
    ota = flash / "ota"
    state = (ota / "state.json").read_text() if (ota / "state.json").exists() else "-"
    listing = sorted(str(p.relative_to(flash)) for p in ota.rglob("*")) if ota.exists() else []
    crashes = (flash / "kinsight" / "crashes").read_text() if (
        flash / "kinsight" / "crashes").exists() else "-"
    with Store(db) as store:
        ups = [(u.bundle, u.state, u.fetched) for u in updates.updates(store, NODE)]
    return (f"state {state}; files {listing}; crashes {crashes!r}; updates {ups}; "
            f"statuses {_statuses(db)[-4:]}")


def _state(db: Path, bundle: int) -> tuple[str, int]:
    with Store(db) as store:
        (u,) = [u for u in updates.updates(store, NODE) if u.bundle == bundle]
        return u.state, u.fetched


def _statuses(db: Path) -> list[tuple]:
    with Store(db) as store:
        return store.query("SELECT boot, firmware, bundle, bundle_failed, crash_what "
                           "FROM statuses WHERE node_id = ? ORDER BY boot, seq", (NODE,))


def _first_request_after(db: Path, boot: int) -> int:
    """The offset the node's first update request after ``boot`` asked from."""
    with Store(db) as store:
        raw = store.query("SELECT raw FROM frames WHERE node_id = ? AND kind = 'update_get' "
                          "AND boot > ? ORDER BY boot, seq LIMIT 1", (NODE, boot))[0][0]
    return int(cbor2.loads(bytes(raw))[2][wire.UG_OFFSET])


def test_an_update_comes_over_a_lossy_link_through_a_power_cut_and_a_bad_one_goes_back(
        tmp_path: Path):
    db = tmp_path / "host.db"
    listener, port = start_listener(db)
    path = ChaosPath(port, seed=17, loss=0.1, dup=0.03, reorder=0.05, corrupt=0.01)
    pty = str(tmp_path / "pty")
    node = VirtualNode(tmp_path / "flash", pty_path=tmp_path / "pty").start()
    try:
        assert field(["deploy", "--port", pty, "--mpy"]) == 0
        assert field(["provision", "--port", pty, "--db", str(db), "--node-id", str(NODE),
                      "--board", "esp32-devkitc", "--household", "h-1", "--resident", "r-1",
                      "--udp", f"127.0.0.1:{path.port}", "--ssid", "home", "--password",
                      "secret", "--role", "seat:fsr:pin=34"]) == 0
        assert kinsight(["ota", "--db", str(db), "--node", str(NODE), "--firmware",
                         str(_firmware(tmp_path, "0.2.0-ota"))]) == 0
        assert field(["reboot", "--port", pty]) == 0
        with Store(db) as store:
            size = updates.updates(store, NODE)[0].size
        # The power goes while a third or more of it is in.
        _wait("a third of the bundle", 120, lambda: _state(db, 1)[1] >= size // 3)
        node.stop()  # the MicroPython process killed: no goodbye, no flush
        assert _state(db, 1)[1] < size, "the cut came too late to test a resume"
        cut_boot = max(s[0] for s in _statuses(db))
        node = VirtualNode(tmp_path / "flash", pty_path=tmp_path / "pty").start()
        _wait("the update installed", 240, lambda: _state(db, 1)[0] == "installed",
              lambda: _node_side(tmp_path / "flash", db))
        running = _wait("a status from the new firmware", 60, lambda: [
            s for s in _statuses(db) if s[1] == "0.2.0-ota" and s[2] == 1])
        assert running
        assert 0 < _first_request_after(db, cut_boot) < size, "the fetch resumed"
        # A bundle whose start fails: installed, raises, rolled back to update 1.
        assert kinsight(["ota", "--db", str(db), "--node", str(NODE), "--firmware",
                         str(_firmware(tmp_path, "0.2.0-broken", broken=True))]) == 0
        _wait("the bad update refused", 240, lambda: _state(db, 2)[0] == "failed",
              lambda: _node_side(tmp_path / "flash", db))
        after = [s for s in _statuses(db) if s[3] == 2]
        assert after and after[-1][1] == "0.2.0-ota" and after[-1][2] == 1, after
        assert any("this build cannot start" in (s[4] or "") for s in after), after
    finally:
        node.stop()
        path.close()
        listener.terminate()
        listener.wait(10)
    with Store(db) as store:
        states = [u.state for u in updates.updates(store, NODE)]
    assert states == ["installed", "failed"]
    assert path.counts["lost"] > 10 and path.counts["corrupted"] > 0, path.counts
