"""Shared fixtures. tests/firmware/ holds MicroPython tests: the MicroPython
runner (tests/test_firmware_mpy.py) runs them, never CPython's pytest."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from support import Broker, Hooks, PgCluster

collect_ignore_glob = ["firmware/*"]


def _needed(exc: FileNotFoundError) -> None:
    """A real part missing: a failure under ./run test (which installs it), else a skip."""
    if os.environ.get("KINSIGHT_SYSTEM_PARTS") == "installed":
        raise exc
    pytest.skip(str(exc))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto of the module's own on loopback, with a password file."""
    try:
        b = Broker(tmp_path_factory.mktemp("mosquitto"))
    except FileNotFoundError as exc:
        _needed(exc)
        raise
    yield b
    b.stop()


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster for the session, started on first use."""
    try:
        cluster = PgCluster(tmp_path_factory.mktemp("postgres"))
    except FileNotFoundError as exc:
        _needed(exc)
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest):
    """The store on each backend: the same tests, SQLite's in-memory database and a
    fresh PostgreSQL database."""
    from kinsight.store import Store

    if request.param == "sqlite":
        s = Store(":memory:")
    else:
        s = Store(request.getfixturevalue("pg_cluster").fresh_database())
    yield s
    s.close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.server.shutdown()
    h.server.server_close()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request: pytest.FixtureRequest, tmp_path):
    """Makes new, empty stores' locations on each backend: ``fresh_db("home")`` is a
    file in the test's folder, or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return lambda name="home": str(tmp_path / f"{name}.db")
    cluster = request.getfixturevalue("pg_cluster")
    return lambda name="home": cluster.fresh_database()
