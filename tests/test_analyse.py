"""kinsight place / ingest / analyse / alerts / ack end to end, on simulated residents
whose weeks arrive as signed node frames."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kinsight.cli import main
from kinsight.evaluation.injection import inject
from kinsight.residents import Activity, activities_from_events, all_activities
from kinsight.simulation import simulate
from kinsight.store import Store
from kinsight.wire import Header, encode_frame, write_capture

KEY = bytes(range(32))
START = date(2024, 3, 4)
DAYS = 35
LONDON = ZoneInfo("Europe/London")
# sensor -> (event type, role) as the nodes report them
EVENTS = {"seat": ("sit", "seat"), "bed": ("in_bed", "bed"), "tap": ("draw", "tap"),
          "toilet": ("visit", "toilet"), "stairs": ("visit", "stairs")}
ROLE_NODE = {"seat": 1, "bed": 2, "tap": 3, "toilet": 4, "stairs": 5}


def frames(acts: list[Activity], base_node: int) -> list[tuple[bytes, int]]:
    """One frame per activity from the node of its role, sent when it ended; a
    heartbeat is that node's status frame."""
    out = []
    seqs: dict[int, int] = {}
    for a in acts:
        if a.sensor == "heartbeat" and a.room in ROLE_NODE:
            node = base_node + ROLE_NODE[a.room]
            seq = seqs[node] = seqs.get(node, -1) + 1
            raw = encode_frame(KEY, "status", Header(node_id=node, boot=1, seq=seq,
                                                     time_s=a.start_ms // 1000),
                               {"firmware": "1.0.0", "uptime_s": seq * 10800, "reset_cause": 1})
            out.append((raw, a.start_ms))
            continue
        if a.sensor not in EVENTS:
            continue
        etype, role = EVENTS[a.sensor]
        node = base_node + ROLE_NODE[role]
        time_s = a.end_ms // 1000 + 1
        ev: dict[str, object] = {"type": etype, "role": role,
                                 "ago_ds": (time_s * 1000 - a.start_ms) // 100,
                                 "duration_ds": (a.end_ms - a.start_ms) // 100}
        if a.sensor == "tap":
            ev["volume_ml"] = int(a.value or 0)
        if a.sensor == "seat" and a.value is not None:
            ev["rise_ds"] = int(a.value * 10)
        seq = seqs[node] = seqs.get(node, -1) + 1
        raw = encode_frame(KEY, "events", Header(node_id=node, boot=1, seq=seq, time_s=time_s),
                           {"events": [ev]})
        out.append((raw, time_s * 1000))
    return out


def k(*args: str) -> int:
    return main(list(args))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    tmp = tmp_path_factory.mktemp("analyse")
    db = str(tmp / "home.db")
    _, well = simulate("healthy", 1, DAYS, START, outages=False, resident="r-well")
    _, changed = simulate("healthy", 2, DAYS, START, outages=False, resident="r-uti")
    change = START + timedelta(days=DAYS - 3)
    changed = inject(changed, "uti", change)  # the last three days: twice the toilet visits
    records = frames(well, 100) + frames(changed, 200)
    cap = tmp / "weeks.kcap"
    write_capture(cap, sorted(records, key=lambda r: r[1]))
    for base, who, in (("100", "r-well"), ("200", "r-uti")):
        for role, n in ROLE_NODE.items():
            node = str(int(base) + n)
            assert k("keys", "--db", db, "add", node, KEY.hex()) == 0
            assert k("place", "--db", db, node, who, "--room", role) == 0
    assert k("ingest", "--db", db, str(cap)) == 0
    return db, tmp


def now_arg() -> str:
    return datetime.combine(START + timedelta(days=DAYS), datetime.min.time(),
                            LONDON).replace(minute=30).isoformat()


def test_events_become_the_placed_residents_activities(home):
    db, _ = home
    with Store(db) as store:
        acts = all_activities(store)
        changed = activities_from_events(store, "r-uti")
    assert set(acts) == {"r-well", "r-uti"}
    assert {a.sensor for a in acts["r-well"]} >= {"seat", "bed", "tap", "toilet"}
    assert all(a.resident == "r-uti" for a in changed) and changed == acts["r-uti"]
    taps = [a for a in acts["r-well"] if a.sensor == "tap"]
    assert taps and all(a.value is not None and a.value > 0 for a in taps)
    assert all(a.room == "tap" for a in taps)
    # the nodes' status frames say which sensors were alive, every 3 hours
    beats = [a for a in acts["r-well"] if a.sensor == "heartbeat"]
    assert {a.room for a in beats} == set(ROLE_NODE)
    assert len(beats) == len(ROLE_NODE) * 8 * DAYS
    # and with them a live tap that saw nothing on a day is a zero, not missing data
    from kinsight.learning import daily_features

    day = START + timedelta(days=10)
    quiet = [a for a in acts["r-well"] if not (a.sensor == "tap" and
                                            a.start_ms // 86_400_000 == _epoch_day(day))]
    feats = daily_features(quiet)[day]
    assert feats["draws"] == 0 and feats["water_ml"] == 0


def _epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def test_analyse_alerts_the_changed_resident_only_and_once(home, capsys):
    db, tmp = home
    log = tmp / "alerts.jsonl"
    assert k("analyse", "--db", db, "--log", str(log), "--now", now_arg()) == 0
    out = capsys.readouterr().out
    assert "r-well:" in out and "r-uti:" in out
    assert k("alerts", "--db", db, "--json") == 0
    alerts = json.loads(capsys.readouterr().out)
    conditions = {(a["resident"], a["condition"]) for a in alerts}
    assert ("r-uti", "uti") in conditions, alerts
    assert not [a for a in alerts if a["resident"] == "r-well"], alerts
    lines = log.read_text().splitlines()
    assert len(lines) == len(alerts)
    # A second run continues from the stored models: nothing new, nothing twice.
    assert k("analyse", "--db", db, "--log", str(log), "--now", now_arg()) == 0
    assert "0 new days" in capsys.readouterr().out
    assert k("alerts", "--db", db, "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again == alerts
    assert len(log.read_text().splitlines()) == len(lines)
    # Acknowledge from the command line.
    uti = next(a for a in alerts if a["condition"] == "uti")
    assert k("ack", "--db", db, str(uti["id"]), "--outcome", "useful",
             "--by", "nurse") == 0
    assert k("alerts", "--db", db, "--resident", "r-uti") == 0
    text = capsys.readouterr().out
    assert "uti" in text and "[acknowledged]" in text
    assert k("ack", "--db", db, "999", "--outcome", "useful") == 1
