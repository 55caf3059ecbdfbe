"""Shared fixtures. tests/firmware/ holds MicroPython tests: the MicroPython
runner (tests/test_firmware_mpy.py) runs them, never CPython's pytest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import Hooks

collect_ignore_glob = ["firmware/*"]


@pytest.fixture
def store():
    from kinsight.store import Store

    s = Store(":memory:")
    yield s
    s.close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.server.shutdown()
    h.server.server_close()
