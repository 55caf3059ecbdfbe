"""History import read and written a chunk at a time: still all or nothing, exact, and
memory that does not grow with the file; the ``kinsight bench import`` benchmark."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinsight.bench.history import run_import, write_history
from kinsight.residents import HistoryError, history_import, import_files, import_jsonl
from kinsight.store import Store
from test_history_import import dump, ev, write_lines


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 3 rows, so a few lines already span many writes."""
    monkeypatch.setattr(history_import, "CHUNK_ROWS", 3)


def _day_events(n: int, day: str = "2024-02-01", resident: str = "r1") -> list[str | dict]:
    return [ev(f"{day}T09:{i // 60:02d}:{i % 60:02d}", f"{day}T10:00:00", resident=resident)
            for i in range(n)]


def test_a_bad_line_after_written_chunks_leaves_the_store_as_it_was(store, tmp_path,
                                                                   small_chunks):
    import_jsonl(store, write_lines(tmp_path / "old.jsonl", _day_events(2, "2024-01-01")))
    before = dump(store)
    first = write_lines(tmp_path / "a.jsonl", _day_events(20, resident="new"))
    bad = write_lines(tmp_path / "b.jsonl", [*_day_events(10, "2024-02-02"), "{oops", "[1]"])
    with pytest.raises(HistoryError) as info:
        import_files(store, [first, bad])
    assert [(Path(p).name, n) for p, n, _ in info.value.problems] == [("b.jsonl", 11),
                                                                       ("b.jsonl", 12)]
    assert dump(store) == before  # the 20 good events of a.jsonl were written, then undone


def test_duplicates_across_chunks_and_files_are_stored_once_and_counted(store, tmp_path,
                                                                        small_chunks):
    events = _day_events(7)
    a = write_lines(tmp_path / "a.jsonl", events + events[:5])  # 5 repeats, chunks apart
    b = write_lines(tmp_path / "b.jsonl", events[2:] + _day_events(2, "2024-02-03", "r2"))
    ra, rb = import_files(store, [a, b])
    assert (ra.events, ra.inserted, ra.duplicates, ra.residents) == (12, 7, 5, ("r1",))
    assert (rb.events, rb.inserted, rb.duplicates, rb.residents) == (7, 2, 5, ("r1", "r2"))
    assert store.query("SELECT count(*) FROM activities") == [(9,)]
    assert history_import.resident_zones(store) == {"r1": "Europe/London",
                                                    "r2": "Europe/London"}


def test_a_resident_of_another_zone_is_named_once_a_file_and_nothing_written(
        store, tmp_path, small_chunks):
    import_jsonl(store, write_lines(tmp_path / "ny.jsonl", _day_events(1, resident="ny")),
                 tz="America/New_York")
    before = dump(store)
    lines = _day_events(8) + _day_events(8, "2024-02-02", "ny")
    with pytest.raises(HistoryError) as info:
        import_jsonl(store, write_lines(tmp_path / "mix.jsonl", lines))
    assert [(n, msg) for _, n, msg in info.value.problems] == [
        (9, "resident 'ny' is stored with time zone America/New_York, not Europe/London")]
    assert dump(store) == before


def test_more_bad_lines_than_are_kept_are_counted(store, tmp_path, monkeypatch):
    monkeypatch.setattr(history_import, "MAX_KEPT_PROBLEMS", 5)
    f = write_lines(tmp_path / "bad.jsonl", ["{"] * 12 + _day_events(3))
    with pytest.raises(HistoryError) as info:
        import_jsonl(store, f)
    assert [n for _, n, _ in info.value.problems] == [1, 2, 3, 4, 5]
    assert info.value.more == 7
    assert dump(store) == []


def test_a_file_without_line_breaks_is_one_overlong_line(store, tmp_path, monkeypatch):
    monkeypatch.setattr(history_import, "_BLOCK_BYTES", 4096)
    f = tmp_path / "one.jsonl"
    f.write_bytes(b"x" * (3 * history_import.MAX_LINE_BYTES) + b"\n"
                  + json.dumps(ev("2024-02-01T09:00:00", "2024-02-01T09:05:00")).encode())
    with pytest.raises(HistoryError) as info:
        import_jsonl(store, f)
    assert [(n, m) for _, n, m in info.value.problems] == [
        (1, f"longer than {history_import.MAX_LINE_BYTES} bytes")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n", b" ", b"\xff"]),
                max_size=40),
       st.integers(min_value=1, max_value=7))
def test_lines_split_as_splitlines_does_whatever_the_block_size(parts, block):
    data = b"".join(parts)
    old = history_import._BLOCK_BYTES
    history_import._BLOCK_BYTES = block
    try:
        assert list(history_import._lines(io.BytesIO(data))) == data.splitlines()
    finally:
        history_import._BLOCK_BYTES = old


ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo",
         "Pacific/Apia", "Asia/Kathmandu", "UTC"]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ZONES),
       st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2040, 12, 31)),
       st.booleans())
def test_the_quick_wall_clock_agrees_with_the_exact_one(name, naive, near_a_change):
    tz = ZoneInfo(name)
    if near_a_change:  # most random times are far from a change of offset: move next to one
        hour = naive.replace(minute=0, second=0, microsecond=0)
        for step in range(0, 24 * 200):
            t = hour + timedelta(hours=step)
            if (t.replace(tzinfo=tz).utcoffset()
                    != (t + timedelta(hours=1)).replace(tzinfo=tz).utcoffset()):
                naive = t + timedelta(minutes=naive.minute, seconds=naive.second)
                break
    clock = history_import._WallClock(tz)
    try:
        exact: int | str = history_import._wall_ms(naive, tz, 0)
    except ValueError as exc:
        exact = str(exc)
    try:
        quick: int | str = clock.ms(naive)
    except ValueError as exc:
        quick = str(exc)
    assert quick == exact


def _peak_rss_mb(tmp_path: Path, lines: int) -> float:
    jsonl = tmp_path / f"h{lines}.jsonl"
    write_history(jsonl, lines)
    _, rss_mb, summary = run_import(jsonl, tmp_path / f"h{lines}.db")
    assert f"{lines} events, {lines} new" in summary
    return rss_mb


def test_memory_does_not_grow_with_the_file(tmp_path):
    # Holding every row, as the import once did, took about 0.7 KB a line: 40 MB here.
    small, large = _peak_rss_mb(tmp_path, 15_000), _peak_rss_mb(tmp_path, 75_000)
    assert large - small < 10, (small, large)


def test_bench_import_prints_its_figures_and_stores_the_rows():
    proc = subprocess.run([sys.executable, "-m", "kinsight.cli", "bench", "import",
                           "--lines", "2000"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert re.fullmatch(r"lines=2000 seconds=\d+\.\d\d lines_per_s=\d+ rss_mb=\d+", out[-1])
    assert any(line.strip().startswith("2000 rows stored;") for line in out), out
    assert any("2000 events, 2000 new, 0 already stored, residents r-01, r-02" in line
               for line in out), out


def test_the_bench_history_is_valid_and_its_events_distinct(store, tmp_path):
    f = tmp_path / "h.jsonl"
    write_history(f, 3000)
    assert len(f.read_text().splitlines()) == 3000
    result = import_jsonl(store, f)
    assert (result.events, result.inserted, len(result.residents)) == (3000, 3000, 8)
    with Store(tmp_path / "again.db") as again:
        assert import_files(again, [f, f])[1].duplicates == 3000
