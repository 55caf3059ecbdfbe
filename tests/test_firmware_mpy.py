"""The firmware's own checks, driven from pytest.

* every tests/firmware/test_*.py module, run by the real MicroPython unix port
  through tests/firmware/runner.py, with every module precompiled by mpy-cross
  as a board runs them (frozen or .mpy), on an ESP32's free heap plus what the
  firmware's modules take once imported on the unix port (a board keeps them in
  flash: kinsight.simulation.micropython.board_heap, as the virtual node does);
* mpy-cross compiles every firmware and shared module (MicroPython syntax);
* basedpyright type-checks the firmware against the ESP32 port's stubs, and a
  probe shows that check refuses what the ESP32 lacks;
* the encode benchmark still runs and prints its figures.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
FIRMWARE_TESTS = REPO / "tests" / "firmware"
PYRIGHT_CONFIG = FIRMWARE / "pyrightconfig.json"
HEAP = "112K"  # what an ESP32 running MicroPython leaves to Python code
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")
BENCH_LINE = re.compile(r"^encode_us_per_frame=[0-9.]+ frames=(\d+) peak_alloc_bytes=(\d+)$")
TIMEOUT_S = 600


def tool(name: str) -> str:
    """A tool installed beside this Python (the venv), else on PATH; skips if absent."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is neither beside {sys.executable} nor on PATH: run ./run setup")
    return found


def micropython_env(compiled: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    parts = [str(REPO / part) for part in ("firmware", "shared", "tests/firmware", "tools")]
    if compiled is not None:
        parts.insert(0, str(compiled))
    parts.append(".frozen")  # the port's own frozen modules (asyncio), as a board has them
    env["MICROPYPATH"] = os.pathsep.join(parts)
    env.setdefault(
        "KINSIGHT_APPENDIX_A", str(REPO.parent / "shared" / "data" / "cbor" / "appendix_a.json")
    )
    return env


def run_micropython(*args: str, compiled: Path | None = None) -> subprocess.CompletedProcess[str]:
    from kinsight.simulation import micropython as mpy

    heap = mpy.board_heap(compiled) if compiled is not None else HEAP
    return subprocess.run(
        [tool("micropython"), "-X", f"heapsize={heap}", *args],
        cwd=REPO,
        env=micropython_env(compiled),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TIMEOUT_S,
    )


MODULES = sorted(path.stem for path in FIRMWARE_TESTS.glob("test_*.py"))
# What the firmware tests import, compiled: the firmware, the shared constants, the
# tests and their helpers, and the traces the tools share with them.
COMPILED_SOURCES = [
    *sorted(FIRMWARE.glob("*.py")),
    REPO / "shared" / "kinsight_wire.py",
    *sorted(FIRMWARE_TESTS.glob("*.py")),
    REPO / "tools" / "traces.py",
    REPO / "tools" / "fake_ble.py",
]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """COMPILED_SOURCES as .mpy files in one folder, put first on MICROPYPATH."""
    mpy_cross = tool("mpy-cross")
    out = tmp_path_factory.mktemp("mpy")
    jobs = [
        (source, subprocess.Popen(
            [mpy_cross, "-s", source.name, "-o", str(out / f"{source.stem}.mpy"), str(source)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
        for source in COMPILED_SOURCES
    ]
    failures = []
    for source, proc in jobs:
        message, _ = proc.communicate(timeout=60)
        if proc.returncode != 0:
            failures.append(f"{source.relative_to(REPO)}: {message.strip()}")
    assert not failures, "\n".join(failures)
    return out


def test_there_are_firmware_test_modules():
    wanted = {"test_wirecbor", "test_framing", "test_sequence", "test_memory"}
    assert wanted <= set(MODULES), MODULES


@pytest.mark.parametrize("module", MODULES)
def test_firmware_module_under_micropython(module: str, compiled: Path):
    proc = run_micropython("-m", "runner", module, compiled=compiled)
    output = proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    summary = SUMMARY.match(lines[-1]) if lines else None
    if proc.returncode != 0 or summary is None:
        pytest.fail(
            f"{module} under MicroPython exited {proc.returncode}:\n{output}", pytrace=False
        )
    passed, failed, skipped = (int(n) for n in summary.groups())
    assert failed == 0, output
    if passed == 0:
        reasons = [line[len("SKIP ") :] for line in lines if line.startswith("SKIP ")]
        if skipped and reasons:
            pytest.skip("; ".join(reasons))
        pytest.fail(f"{module} ran no tests:\n{output}", pytrace=False)


def test_mpy_cross_compiles_the_firmware(tmp_path: Path):
    mpy_cross = tool("mpy-cross")
    sources = sorted(FIRMWARE.rglob("*.py")) + sorted((REPO / "shared").glob("*.py"))
    assert any(path.name == "framing.py" for path in sources), sources
    failures = []
    for i, source in enumerate(sources):
        out = tmp_path / f"{i}-{source.stem}.mpy"
        proc = subprocess.run(
            [mpy_cross, "-o", str(out), str(source)], capture_output=True, text=True, timeout=60
        )
        if proc.returncode != 0 or not out.is_file():
            failures.append(f"{source.relative_to(REPO)}: {(proc.stderr or proc.stdout).strip()}")
    assert not failures, "\n".join(failures)


def stub_paths(config: dict) -> dict[str, str]:
    """The config's stub and environment paths, made absolute."""
    paths = {key: str((FIRMWARE / config[key]).resolve()) for key in ("typeshedPath", "stubPath")}
    paths["venvPath"] = str((FIRMWARE / config["venvPath"]).resolve())
    paths["venv"] = config["venv"]
    if not Path(paths["stubPath"], "machine.pyi").is_file():
        pytest.skip(f"no ESP32 stubs in {paths['stubPath']}: run ./run setup")
    return paths


def pyright(config_path: Path) -> dict:
    proc = subprocess.run(
        [tool("basedpyright"), "-p", str(config_path), "--outputjson"],
        cwd=config_path.parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"basedpyright gave no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )


def errors_of(report: dict) -> list[str]:
    return [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]


def test_firmware_type_checks_against_the_esp32_stubs():
    config = json.loads(PYRIGHT_CONFIG.read_text(encoding="utf-8"))
    stub_paths(config)
    report = pyright(PYRIGHT_CONFIG)
    assert report["summary"]["errorCount"] == 0, "\n".join(errors_of(report))
    # An include that matched nothing would pass with no errors.
    firmware_files = len(list(FIRMWARE.rglob("*.py")))
    assert report["summary"]["filesAnalyzed"] >= firmware_files + 1, report["summary"]


PROBE = """\
import os
import machine
machine.Pin(2).value(1)
os.listdir("/")
machine.Pin(2).nonexistent_call()  # BAD: the ESP32 Pin has no such method
print(machine.DoesNotExist)  # BAD: nor machine such a name
import dataclasses  # BAD: CPython's standard library, not MicroPython's
"""


def test_type_check_refuses_what_the_esp32_lacks(tmp_path: Path):
    config = json.loads(PYRIGHT_CONFIG.read_text(encoding="utf-8"))
    probe_config = {
        key: config[key]
        for key in (
            "pythonVersion",
            "pythonPlatform",
            "typeCheckingMode",
            "reportMissingModuleSource",
        )
    }
    probe_config.update(stub_paths(config))
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(probe_config), encoding="utf-8")
    (tmp_path / "probe.py").write_text(PROBE, encoding="utf-8")
    report = pyright(tmp_path / "pyrightconfig.json")
    bad_lines = {i + 1 for i, line in enumerate(PROBE.splitlines()) if "# BAD" in line}
    error_lines = {
        d["range"]["start"]["line"] + 1
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    }
    assert error_lines == bad_lines, "\n".join(errors_of(report))
    messages = " ".join(errors_of(report))
    for name in ("nonexistent_call", "DoesNotExist", "dataclasses"):
        assert name in messages, messages


def test_encode_benchmark_runs():
    proc = run_micropython("tools/bench_encode_mpy.py", "30")
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    figures = BENCH_LINE.match(lines[-1])
    assert figures, lines[-1]
    frames, peak_alloc = (int(n) for n in figures.groups())
    assert frames == 30
    assert 0 < peak_alloc < 4096, lines[-1]
