"""Residents and their Activities: whose events are whose, and histories from elsewhere.

An ``Activity`` (``activity``) is one thing a resident did, the common currency of
the layers above. ``from_nodes`` places nodes with residents and turns their stored
events and status frames into Activities; ``history_import`` brings in JSON Lines
histories from other systems, checked whole before anything is written.

May import: kinsight.errors, kinsight.store.
"""

from __future__ import annotations

from .activity import Activity
from .from_nodes import (
    activities_from_events,
    activities_of,
    all_activities,
    as_seen_at,
    merge,
    place,
    placements,
    recent_activities,
    resident_tz,
    residents,
)
from .history_import import (
    DEFAULT_TZ,
    HistoryError,
    ImportResult,
    import_files,
    import_jsonl,
    load_activities,
    resident_zones,
    store_activities,
)

__all__ = ["DEFAULT_TZ", "Activity", "HistoryError", "ImportResult", "activities_from_events",
           "activities_of",
           "all_activities", "as_seen_at", "import_files", "import_jsonl", "load_activities",
           "merge", "place", "placements", "recent_activities", "resident_tz", "resident_zones",
           "residents", "store_activities"]
