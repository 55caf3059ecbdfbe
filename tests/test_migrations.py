"""Versioned migrations on both backends: a new database gets every layer's steps, an
older one (made before a column existed, before versions were recorded) is brought up
to date with its rows kept, and a database from a newer Kinsight is refused."""

from __future__ import annotations

import pytest

from kinsight.alerts import list_alerts
from kinsight.alerts.records import MIGRATIONS
from kinsight.errors import StoreError
from kinsight.store import Migration, Store, current_versions


def test_a_new_database_records_each_layers_steps(store):
    assert list_alerts(store) == []
    versions = current_versions(store)
    assert versions["alerts"] == len(MIGRATIONS) == 3
    about = store.query("SELECT version, about FROM schema_versions WHERE layer = 'alerts' "
                        "ORDER BY version")
    assert [v for v, _a in about] == [1, 2, 3] and "unit" in about[2][1]
    assert store.migrate("alerts", MIGRATIONS) == 3  # asked again: nothing to do


def test_an_older_database_is_brought_up_to_date_with_its_rows(store):
    # The alerts table as the first releases made it: no subject, no series_of.
    store.conn.execute(
        "CREATE TABLE alerts (id INTEGER PRIMARY KEY, resident TEXT NOT NULL, condition TEXT "
        "NOT NULL, severity TEXT NOT NULL, day TEXT NOT NULL, created_ms INTEGER NOT NULL, "
        "score REAL NOT NULL, text TEXT NOT NULL, series TEXT NOT NULL, state TEXT NOT NULL "
        "DEFAULT 'open', outcome TEXT, acknowledged_by TEXT, acknowledged_ms INTEGER, "
        "snoozed_until_ms INTEGER)")
    store.conn.execute("INSERT INTO alerts (resident, condition, severity, day, created_ms, "
                       "score, text, series) VALUES ('r', 'uti', 'digest', '2024-06-03', 1, "
                       "2.0, 'More visits', '[]')")
    (old,) = list_alerts(store)
    assert (old.resident, old.condition, old.subject, old.series_of) == ("r", "uti", "", "")
    assert current_versions(store)["alerts"] == 3


def test_a_database_from_a_newer_kinsight_is_refused(store):
    store.migrate("alerts", MIGRATIONS)
    store.conn.execute("INSERT INTO schema_versions VALUES ('alerts', 9, 'from the future', 0)")
    again = Store(store.path) if store.backend == "postgresql" else store
    try:
        again._ensured.discard("migrate:alerts")
        with pytest.raises(StoreError, match="version 9, newer than this Kinsight's 3"):
            again.migrate("alerts", MIGRATIONS)
    finally:
        if again is not store:
            again.close()


def test_steps_are_numbered_in_order(store):
    with pytest.raises(ValueError, match="numbered 1, 2, 3"):
        store.migrate("x", (Migration(2, "two", "SELECT 1"),))
