"""Imported sensor histories: JSON Lines checks, time zones, duplicates, the command."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kinsight.cli import main
from kinsight.residents import Activity, HistoryError, history_import, import_jsonl, load_activities
from kinsight.store import Store

LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc


def utc_ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def write_lines(path: Path, lines: list[str | dict]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
                    encoding="utf-8")
    return path


def ev(start: str, end: str, sensor: str = "seat", resident: str = "r1", **extra) -> dict:
    return {"resident": resident, "sensor": sensor, "start": start, "end": end, **extra}


def dump(store: Store) -> list[tuple]:
    history_import.ensure_tables(store)
    return (store.query("SELECT * FROM activities ORDER BY 1, 2, 3, 4")
            + store.query("SELECT * FROM residents ORDER BY 1"))


# --- import ----------------------------------------------------------------------------------


def test_valid_import(store, tmp_path):
    f = write_lines(tmp_path / "a.jsonl", [
        ev("2024-01-15T09:00:00", "2024-01-15T09:40:30", room="living", value=2.5),
        "",
        ev("2024-01-15T10:00:00Z", "2024-01-15T10:00:05Z", sensor="tap", value=250),
        ev("2024-01-15 12:00:00+01:00", "2024-01-15 12:01:00+01:00", sensor="toilet",
           resident="r2"),
    ])
    result = import_jsonl(store, f)
    assert (result.events, result.inserted, result.residents) == (3, 3, ("r1", "r2"))
    assert load_activities(store, "r1") == [
        Activity("r1", "seat", utc_ms(2024, 1, 15, 9), utc_ms(2024, 1, 15, 9, 40, 30), 2.5,
                 "living"),
        Activity("r1", "tap", utc_ms(2024, 1, 15, 10), utc_ms(2024, 1, 15, 10, 0, 5), 250.0),
    ]
    assert load_activities(store, "r2") == [
        Activity("r2", "toilet", utc_ms(2024, 1, 15, 11), utc_ms(2024, 1, 15, 11, 1))]
    assert history_import.resident_zones(store) == {"r1": "Europe/London", "r2": "Europe/London"}
    assert store.query("SELECT DISTINCT source FROM activities") == [("a.jsonl",)]


BAD_LINES = [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"resident": "r1", "sensor": "seat", "start": "2024-01-15T09:00:00"}),
     "missing 'end'"),
    (json.dumps(ev("2024-01-15T09:00:00", "2024-01-15T09:10:00", colour="red")),
     "unknown field 'colour'"),
    ('{"resident": "r1", "resident": "r2", "sensor": "seat", "start": "2024-01-15T09:00:00", '
     '"end": "2024-01-15T09:10:00"}', "duplicate field 'resident'"),
    (json.dumps(ev("2024-01-15T09:00:00", "2024-01-15T09:10:00", sensor="Seat!")), "'sensor'"),
    (json.dumps(ev("2024-01-15T09:00:00", "2024-01-15T09:10:00", resident="")), "'resident'"),
    (json.dumps(ev("2024-01-15T09:00:00", "2024-01-15T09:10:00", value="250")),
     "'value' must be a number"),
    (json.dumps(ev("2024-01-15T09:00:00", "2024-01-15T09:10:00", value=True)),
     "'value' must be a number"),
    ('{"resident": "r1", "sensor": "tap", "start": "2024-01-15T09:00:00", '
     '"end": "2024-01-15T09:10:00", "value": NaN}', "finite"),
    (json.dumps(ev("2024-01-15T09:00:00", "2024-01-15T09:10:00", room=7)), "'room'"),
    (json.dumps(ev("15/01/2024 09:00", "2024-01-15T09:10:00")), "'start'"),
    (json.dumps(ev("2024-01-15", "2024-01-15T09:10:00")), "'start'"),
    (json.dumps(ev("2024-01-15T09:00:00", 1705309800)), "'end'"),
    (json.dumps(ev("2024-01-15T09:00:00", "2024-01-15T08:59:00")), "before 'start'"),
    (json.dumps(ev("2024-03-31T01:30:00", "2024-03-31T03:00:00")), "does not exist"),
    (json.dumps(ev("2024-01-01T09:00:00", "2024-01-09T09:00:00")), "more than 7"),
]


def test_every_kind_of_bad_line_is_reported_with_its_number_and_nothing_written(
        store, tmp_path):
    good = write_lines(tmp_path / "good.jsonl", [ev("2024-01-14T09:00:00", "2024-01-14T10:00:00")])
    import_jsonl(store, good)
    before = dump(store)
    lines: list[str | dict] = [ev("2024-01-15T09:00:00", "2024-01-15T09:10:00", resident="new")]
    expected = {}
    for text, what in BAD_LINES:
        lines.append(text)
        expected[len(lines)] = what
        lines.append(ev("2024-01-16T09:00:00", f"2024-01-16T09:{len(lines):02d}:00"))
    bad = write_lines(tmp_path / "bad.jsonl", lines)
    with bad.open("ab") as f:
        f.write(b'{"resident": "r\xff"}\n')
    expected[len(lines) + 1] = "not UTF-8"
    with pytest.raises(HistoryError) as info:
        import_jsonl(store, bad)
    got = {n: msg for path, n, msg in info.value.problems}
    assert {path for path, _, _ in info.value.problems} == {str(bad)}
    assert sorted(got) == sorted(expected)
    for n, what in expected.items():
        assert what in got[n], (n, got[n])
    assert dump(store) == before


def test_cli_lists_bad_lines_up_to_twenty_then_a_count(tmp_path, capsys):
    db = str(tmp_path / "k.db")
    good = write_lines(tmp_path / "good.jsonl", [ev("2024-01-14T09:00:00", "2024-01-14T10:00:00")])
    bad = write_lines(tmp_path / "bad.jsonl", [ev("2024-01-14T09:00:00", "x")] * 23)
    assert main(["import", "--db", db, str(good), str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"kinsight: {bad}: line 1: 'end' 'x' is not an ISO 8601 date and time"
    assert [line.split(": line ")[1].split(":")[0] for line in err[:20]] == [
        str(n) for n in range(1, 21)]
    assert err[20:] == ["kinsight: ... and 3 more invalid lines"]
    with Store(db) as s:
        assert dump(s) == []  # the good file was not imported either
    assert main(["import", "--db", db, "--tz", "Mars/Olympus", str(good)]) == 1
    assert "unknown time zone" in capsys.readouterr().err


def test_offsets_and_local_times_across_dst(store, tmp_path):
    local = write_lines(tmp_path / "local.jsonl", [
        # spring forward in London: 01:00 GMT -> 02:00 BST on 2024-03-31
        ev("2024-03-31T00:30:00", "2024-03-31T02:30:00"),
        # fall back: 01:00-02:00 happens twice on 2024-10-27; the end is the second one
        ev("2024-10-27T01:50:00", "2024-10-27T01:10:00", sensor="bed"),
        ev("2024-07-01T12:00:00", "2024-07-01T12:00:00", sensor="door"),
    ])
    import_jsonl(store, local)
    acts = load_activities(store, "r1")
    assert [(a.sensor, a.start_ms, a.end_ms) for a in acts] == [
        ("seat", utc_ms(2024, 3, 31, 0, 30), utc_ms(2024, 3, 31, 1, 30)),
        ("door", utc_ms(2024, 7, 1, 11), utc_ms(2024, 7, 1, 11)),
        ("bed", utc_ms(2024, 10, 27, 0, 50), utc_ms(2024, 10, 27, 1, 10)),
    ]
    # The same instants with offsets are the same events: nothing new
    offsets = write_lines(tmp_path / "offsets.jsonl", [
        ev("2024-03-31T00:30:00+00:00", "2024-03-31T02:30:00+01:00"),
        ev("2024-10-27T01:50:00+01:00", "2024-10-27T01:10:00Z", sensor="bed"),
        ev("2024-07-01T11:00:00Z", "2024-07-01T12:00:00+01:00", sensor="door"),
    ])
    assert import_jsonl(store, offsets).inserted == 0
    # Another zone reads the same wall-clock times differently
    ny = write_lines(tmp_path / "ny.jsonl", [ev("2024-07-01T12:00:00", "2024-07-01T12:00:00",
                                                sensor="door", resident="r9")])
    import_jsonl(store, ny, tz="America/New_York")
    assert load_activities(store, "r9")[0].start_ms == utc_ms(2024, 7, 1, 16)
    # A resident keeps one zone
    with pytest.raises(HistoryError, match="stored with time zone America/New_York"):
        import_jsonl(store, write_lines(tmp_path / "ny2.jsonl", [
            ev("2024-07-02T12:00:00", "2024-07-02T12:00:00", resident="r9")]))


def test_reimport_changes_nothing(tmp_path, capsys):
    db = str(tmp_path / "k.db")
    f = write_lines(tmp_path / "a.jsonl", [
        ev(f"2024-01-{d:02d}T09:00:00", f"2024-01-{d:02d}T10:00:00") for d in range(1, 11)])
    assert main(["import", "--db", db, str(f)]) == 0
    assert "10 events, 10 new" in capsys.readouterr().out
    with Store(db) as s:
        first = dump(s)
    assert main(["import", "--db", db, str(f)]) == 0
    assert "10 events, 0 new, 10 already stored" in capsys.readouterr().out
    with Store(db) as s:
        assert dump(s) == first
        assert len(first) == 11
