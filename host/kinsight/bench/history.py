"""``kinsight bench import``: a million-line history through the real ``kinsight import``.

A JSON Lines file of plausible events (several residents, sensors and rooms over a
year, wall-clock times in the residents' zone) is written to a temporary folder and
imported into a new SQLite file by the ``kinsight import`` command itself, run as a
child process. Its wall time is the whole command's (interpreter start included), and
its memory is the child's peak resident set (``wait4``'s ``ru_maxrss``): everything
the process held at its fullest, interpreter and libraries included. A child that
imports one line gives the floor that peak stands on.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

_RESIDENTS = ("r-01", "r-02", "r-03", "r-04", "r-05", "r-06", "r-07", "r-08")
# (sensor, room, whether the line carries a value)
_SENSORS = (("seat", "living", True), ("bed", "bedroom", True), ("tap", "kitchen", True),
            ("toilet", "bathroom", False), ("door", "hall", False),
            ("motion", "landing", False), ("kettle", "kitchen", True),
            ("fridge", "kitchen", False))
_FIRST_DAY = date(2024, 1, 1)
_DAYS = 366
_TZ = "Europe/London"


def write_history(path: Path, lines: int, seed: int = 13) -> None:
    """``lines`` events spread over a year of days and the residents, in time order per
    resident. Times of day are 06:00 to 23:59 local, never in a spring-forward gap."""
    rng = random.Random(seed)
    per_day = max(1, lines // (_DAYS * len(_RESIDENTS)) + 1)
    days = [(_FIRST_DAY + timedelta(days=d)).isoformat() for d in range(_DAYS)]
    written = 0
    with path.open("w", encoding="utf-8") as f:
        while written < lines:
            for day in days:
                for resident in _RESIDENTS:
                    out = []
                    for _ in range(min(per_day, lines - written)):
                        sensor, room, valued = _SENSORS[rng.randrange(len(_SENSORS))]
                        start_s = rng.randrange(6 * 3600, 23 * 3600)
                        end_s = start_s + rng.randrange(1, 3600)
                        value = f', "value": {rng.randrange(1, 900)}' if valued else ""
                        out.append(
                            f'{{"resident": "{resident}", "sensor": "{sensor}", '
                            f'"start": "{day}T{start_s // 3600:02d}:{start_s // 60 % 60:02d}:'
                            f'{start_s % 60:02d}", "end": "{day}T{end_s // 3600:02d}:'
                            f'{end_s // 60 % 60:02d}:{end_s % 60:02d}"{value}, '
                            f'"room": "{room}"}}\n')
                        written += 1
                    f.write("".join(out))
                    if written >= lines:
                        return


def _child_env() -> dict[str, str]:
    # The child must find this very code (a worktree, an editable install) first.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def run_import(jsonl: Path, db: Path) -> tuple[float, float, str]:
    """``kinsight import --db DB JSONL`` in a child: (wall seconds, peak RSS MB, stdout)."""
    out, err = db.with_suffix(".out"), db.with_suffix(".err")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kinsight.cli", "import", "--db", str(db), "--tz", _TZ,
             str(jsonl)], stdout=stdout, stderr=stderr, env=_child_env())
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the largest child
        # this process ever waited for).
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"kinsight import failed ({proc.returncode}): "
                           f"{err.read_text(errors='replace').strip()}")
    return seconds, usage.ru_maxrss / 1024, out.read_text()  # Linux: ru_maxrss in KiB


def bench_import(lines: int) -> dict[str, Any]:
    """Write ``lines`` events, import them into a new database; the figures, and how many
    rows the database holds afterwards."""
    with tempfile.TemporaryDirectory(prefix="kinsight-bench-import-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_history(folder / "history.jsonl", lines)
        write_seconds = time.perf_counter() - t0
        write_history(folder / "one.jsonl", 1)
        _, floor_mb, _ = run_import(folder / "one.jsonl", folder / "floor.db")
        seconds, rss_mb, summary = run_import(folder / "history.jsonl", folder / "history.db")
        with sqlite3.connect(folder / "history.db") as conn:
            rows = conn.execute("SELECT count(*) FROM activities").fetchone()[0]
        conn.close()
        size_mb = (folder / "history.jsonl").stat().st_size / 2**20
    return {"lines": lines, "seconds": seconds, "lines_per_s": lines / seconds,
            "rss_mb": rss_mb, "floor_rss_mb": floor_mb, "rows": rows, "file_mb": size_mb,
            "write_seconds": write_seconds, "summary": summary.strip()}


def run_history(lines: int) -> int:
    r = bench_import(lines)
    print(f"kinsight import of {r['lines']:.0f} lines ({r['file_mb']:.0f} MiB, "  # noqa: T201
          f"{len(_RESIDENTS)} residents, a year; written in {r['write_seconds']:.1f} s) "
          "into a new database, as a child process, one core")
    print(f"  {r['summary']}")  # noqa: T201
    print(f"  {r['rows']:.0f} rows stored; peak RSS of the whole child process "  # noqa: T201
          f"{r['rss_mb']:.0f} MB, of one importing a single line {r['floor_rss_mb']:.0f} MB")
    print(f"lines={r['lines']:.0f} seconds={r['seconds']:.2f} "  # noqa: T201
          f"lines_per_s={r['lines_per_s']:.0f} rss_mb={r['rss_mb']:.0f}")
    return 0
