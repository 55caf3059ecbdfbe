"""boards/: the freeze manifest and the mip package list every firmware module, and
the board pin maps agree with what the firmware checks config.json against."""

from __future__ import annotations

import json

from support import REPO

FIRMWARE = sorted(p.name for p in (REPO / "firmware").glob("*.py") if p.name != "main.py")


def test_freeze_manifest_names_every_firmware_module():
    frozen: list[tuple[str, str]] = []
    included: list[str] = []
    required: list[str] = []
    code = (REPO / "boards" / "manifest.py").read_text()
    exec(code, {"module": lambda name, base_path=".": frozen.append((base_path, name)),  # noqa: S102
                "include": included.append, "require": required.append})
    assert included == ["$(PORT_DIR)/boards/manifest.py"]
    # micropython-lib's packages, the same as mip installs from package.json
    package = json.loads((REPO / "boards" / "package.json").read_text())
    assert required == [name for name, _version in package["deps"]] == ["umqtt.simple", "aioble"]
    assert ("../shared", "kinsight_wire.py") in frozen
    assert sorted(name for base, name in frozen if base == "../firmware") == FIRMWARE
    for base, name in frozen:
        assert (REPO / "boards" / base / name).is_file(), name


def test_only_hal_touches_bluetooth():
    """The rest of the firmware runs unchanged on the unix port, where a fake radio
    stands in for hal's Heart Rate link."""
    import re

    chip = re.compile(r"^\s*(?:import|from)\s+(machine|bluetooth|aioble)\b", re.M)
    touching = sorted(p.name for p in (REPO / "firmware").glob("*.py")
                      if chip.search(p.read_text(encoding="utf-8")))
    assert touching == ["hal.py"], touching


def test_mip_package_lists_every_firmware_module():
    package = json.loads((REPO / "boards" / "package.json").read_text())
    targets = {target: source for target, source in package["urls"]}
    assert sorted(t for t in targets if t != "kinsight_wire.py") == FIRMWARE
    for target, source in targets.items():
        assert (REPO / "boards" / source).resolve().is_file(), source
        assert source.endswith("/" + target)


def test_board_pin_maps_are_consistent():
    for path in sorted((REPO / "boards").glob("*.json")):
        if path.name == "package.json":
            continue
        board = json.loads(path.read_text())
        assert board["name"] == path.stem
        gpio = set(board["gpio"])
        assert set(board["adc_pins"]) <= gpio and set(board["input_only"]) <= gpio
        for bus in ("i2c", "uart"):
            pins = {v for k, v in board["defaults"][bus].items() if k != "id"}
            assert pins <= gpio, (path.name, bus)
            assert not pins & set(board["input_only"]) or bus == "uart"
