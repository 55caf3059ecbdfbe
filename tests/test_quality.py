"""Lint and type checks of the host, as tests so that one command runs everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import REPO

BIN = Path(sys.executable).parent


def test_ruff_finds_nothing():
    proc = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_host_library_type_checks():
    proc = subprocess.run([str(BIN / "basedpyright"), "--pythonpath", sys.executable],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert "0 errors" in proc.stdout
