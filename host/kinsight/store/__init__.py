"""The store: node keys, the archive of accepted frames, and the decoded records.

``Store`` is the embedded SQLite store (one file, WAL mode), or, given a
``postgresql://`` URL, the same store on PostgreSQL (``postgres``: the layers' SQL
taken as SQLite's connection takes it). Every write happens inside
``Store.transaction()``, so a batch is stored whole or not at all (a full disk is a
``StoreFullError``). Refusals are counted exactly; the refused frames kept for
diagnosis are a ring per reason (``RejectArchiveLimits``). The layers above keep
their own tables in the same database, under versioned migrations
(``migrations``: ``Store.migrate(layer, steps)``).

May import: kinsight.errors.
"""

from __future__ import annotations

from .migrations import Migration, add_column, current_versions
from .sqlite import (
    EVENT_COLUMNS,
    QUARANTINE_REASONS,
    SCHEMA_VERSION,
    STATUS_COLUMNS,
    SUMMARY_COLUMNS,
    BatchRows,
    NodeSummary,
    RejectArchiveLimits,
    Store,
    rejected_row,
)

__all__ = ["EVENT_COLUMNS", "QUARANTINE_REASONS", "SCHEMA_VERSION", "STATUS_COLUMNS",
           "SUMMARY_COLUMNS", "BatchRows", "Migration", "NodeSummary", "RejectArchiveLimits",
           "Store", "add_column", "current_versions", "rejected_row"]
