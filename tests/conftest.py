"""Shared fixtures. tests/firmware/ holds MicroPython tests: the MicroPython
runner (tests/test_firmware_mpy.py) runs them, never CPython's pytest."""

from __future__ import annotations

import pytest

collect_ignore_glob = ["firmware/*"]


@pytest.fixture
def store():
    from kinsight.store import Store

    s = Store(":memory:")
    yield s
    s.close()
