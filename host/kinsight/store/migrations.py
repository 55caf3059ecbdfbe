"""Versioned schema migrations, the same for both backends.

Each layer that keeps tables in the store lists its ``Migration`` steps, numbered
from 1, and asks ``Store.migrate(layer, steps)`` before it uses them (once per
connection). The steps not yet applied to this database run in order, in one write
transaction, and each is recorded in ``schema_versions`` (layer, version, what it
did, when); a database whose layer is at a version this code does not know (a newer
Kinsight's) is refused with a ``StoreError`` that says so, rather than written to.
A step is a script in the store's SQL dialect (the layers' one, which the
PostgreSQL backend translates) or, for what a script cannot say portably ("add this
column where an older database lacks it"), a function of the store.

The first step of a layer makes its tables with ``CREATE ... IF NOT EXISTS``, so a
database made before its layer had versions (the tables there, no record) takes it
as the baseline; the later steps change what is there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import StoreError


class Store(Protocol):
    """What a migration needs of the store (``sqlite.Store``, on either backend)."""

    conn: Any

    @property
    def where(self) -> str: ...

    def transaction(self) -> AbstractContextManager[None]: ...

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_versions (
    layer TEXT NOT NULL,
    version INTEGER NOT NULL,
    about TEXT NOT NULL,
    applied_ms INTEGER NOT NULL,
    PRIMARY KEY (layer, version)
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    about: str
    apply: str | Callable[[Store], None]


def add_column(table: str, column: str, declaration: str) -> Callable[[Store], None]:
    """A step that adds ``column`` to ``table`` where an older database lacks it."""
    def step(store: Store) -> None:
        have = {str(r[1]) for r in store.conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            store.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    return step


def current_versions(store: Store) -> dict[str, int]:
    """Each layer's version in this database."""
    store.conn.execute(_SCHEMA)
    return {str(layer): int(v) for layer, v in store.conn.execute(
        "SELECT layer, MAX(version) FROM schema_versions GROUP BY layer")}


def migrate(store: Store, layer: str, steps: Sequence[Migration], now_ms: int) -> int:
    """Apply ``layer``'s steps this database has not had; its version now."""
    known = max((s.version for s in steps), default=0)
    if [s.version for s in steps] != list(range(1, known + 1)):
        raise ValueError(f"{layer}: migrations must be numbered 1, 2, 3, ... in order")

    def version() -> int:
        row = store.conn.execute("SELECT MAX(version) FROM schema_versions WHERE layer = ?",
                                 (layer,)).fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    store.conn.execute(_SCHEMA)
    have = version()
    if have > known:
        raise StoreError(f"{store.where}: the {layer} tables are at schema version {have}, "
                         f"newer than this Kinsight's {known}: upgrade Kinsight first")
    if have == known:
        return have
    # Inside the caller's transaction when there is one: it lands with what they write.
    with store.transaction() if not store.conn.in_transaction else nullcontext():
        have = version()  # another process may have migrated meanwhile
        for step in steps:
            if step.version <= have:
                continue
            if isinstance(step.apply, str):
                for statement in step.apply.split(";"):
                    if statement.strip():
                        store.conn.execute(statement)
            else:
                step.apply(store)
            store.conn.execute("INSERT INTO schema_versions VALUES (?, ?, ?, ?)",
                               (layer, step.version, step.about, now_ms))
    return known
