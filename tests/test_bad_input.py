"""Bad input at the command line, run as a user would (``python -m kinsight.cli`` in a
subprocess): every kind is refused with exit status 1 and one ``kinsight: ...`` line,
never a traceback, and leaves no file behind. Plus the store's own weak-key check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kinsight.store import Store
from kinsight.wire import write_capture
from kinsight.wire.capture import MAGIC

KEY = bytes(range(32))
EVENT = {"resident": "r-1", "sensor": "seat", "start": "2024-03-01T09:00:00",
         "end": "2024-03-01T09:40:00"}


def files(where: Path) -> list[str]:
    return sorted(str(p.relative_to(where)) for p in where.rglob("*"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A folder with a database (one node's key) and the bad inputs the cases use."""
    with Store(tmp_path / "home.db") as s:
        s.set_node_key(7, KEY, now_ms=0)
    (tmp_path / "big.jsonl").write_text(json.dumps(EVENT)[:-1] + ', "value": ' + "9" * 400
                                        + "}\n")
    (tmp_path / "deep.jsonl").write_text("[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "late.kcap").write_bytes(MAGIC + (2**63).to_bytes(8, "big") + b"\x00\x03abc")
    write_capture(tmp_path / "good.kcap", [(b"\x84\x01", 5)])
    policies = {
        "text-for-map": '{"organisation": "x"}',
        "list-for-map": '{"residents": {"r-1": []}}',
        "nan-throttle": '{"organisation": {"throttle_hours": NaN}}',
        "infinite-throttle": '{"organisation": {"throttle_hours": Infinity}}',
        "nan-sensitivity": '{"residents": {"r-1": {"sensitivity": {"not_up": NaN}}}}',
    }
    for name, text in policies.items():
        (tmp_path / f"{name}.json").write_text(text)
    return tmp_path


ANALYSE = ["analyse", "--db", "home.db", "--policy"]
CASES = {
    # finding 6: the command line
    "import-400-digit-number": (["import", "--db", "new.db", "big.jsonl"],
                                "big.jsonl: line 1: a number of 400 digits"),
    "import-nested-5000-deep": (["import", "--db", "new.db", "deep.jsonl"],
                                "deep.jsonl: line 1: nested more than 8 deep"),
    "import-into-existing-db": (["import", "--db", "home.db", "deep.jsonl"], "nested"),
    "policy-text-for-map": ([*ANALYSE, "text-for-map.json"],
                            "text-for-map.json: organisation: must be an object, not text"),
    "policy-list-for-map": ([*ANALYSE, "list-for-map.json"],
                            'residents["r-1"]: must be an object, not a list'),
    "ack-past-64-bits": (["ack", "--db", "home.db", "9223372036854775808", "--outcome",
                          "useful"], "alert number 9223372036854775808 is outside"),
    "place-node-2-to-the-70": (["place", "--db", "home.db", str(2**70), "r-1"],
                               f"node id {2**70} is outside 0..4294967295"),
    "capture-stamped-2-to-the-63": (["ingest", "--db", "home.db", "late.kcap"],
                                    "received_ms 9223372036854775808, after the year 9999"),
    "place-mistyped-db": (["place", "--db", "hom.db", "7", "r-1"], "no database at hom.db"),
    "ingest-mistyped-db": (["ingest", "--db", "hom.db", "good.kcap"], "no database at hom.db"),
    # finding 5: a policy that would hold back alerts
    "policy-nan-throttle": ([*ANALYSE, "nan-throttle.json"], "NaN is not a JSON number"),
    "policy-infinite-throttle": ([*ANALYSE, "infinite-throttle.json"],
                                 "Infinity is not a JSON number"),
    "listen-nan-sensitivity": (["listen", "--db", "new.db", "--udp", "127.0.0.1:0",
                                "--alerts", "--policy", "nan-sensitivity.json", "--log",
                                "alerts.jsonl", "--capture", "new.kcap"],
                               "NaN is not a JSON number"),
    # finding 8: the host's parts
    "place-node-minus-1": (["place", "--db", "home.db", "-1", "r-1"],
                           "node id -1 is outside 0..4294967295"),
    "place-10-kB-resident": (["place", "--db", "home.db", "7", "r" * 10_000],
                             "resident must be at most 100 printable characters"),
    "keys-all-zero-key": (["keys", "--db", "new.db", "add", "7", "00" * 32], "weak key"),
    "keys-one-byte-repeated": (["keys", "--db", "new.db", "add", "7", "a5" * 32], "weak key"),
    "listen-bad-address": (["listen", "--db", "new.db", "--udp", "127.0.0.1:99999"],
                           "is not HOST:PORT"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_one_line_exit_1_and_leaves_nothing_behind(home: Path, case: str):
    args, said = CASES[case]
    before = files(home)
    proc = subprocess.run([sys.executable, "-m", "kinsight.cli", *args], cwd=home,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kinsight: "), proc.stderr
    assert said in lines[0], lines[0]
    assert len(lines[0]) < 300
    assert files(home) == before


def test_a_good_import_still_makes_its_database(home: Path):
    (home / "ok.jsonl").write_text(json.dumps(EVENT) + "\n")
    proc = subprocess.run([sys.executable, "-m", "kinsight.cli", "import", "--db", "new.db",
                           "ok.jsonl"], cwd=home, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (home / "new.db").exists()


@pytest.mark.parametrize("key, why", [
    (bytes(32), "a pattern of 1 byte repeated"),
    (b"\xa5" * 32, "a pattern of 1 byte repeated"),
    (bytes.fromhex("deadbeef") * 8, "a pattern of 4 bytes repeated"),
    (b"password" * 4, "a pattern of 8 bytes repeated"),
    (bytes([0, 1, 2, 3, 4, 5, 6] * 4 + [0, 1, 2, 3]), "a pattern of 7 bytes repeated"),
    (bytes([1, 2, 3, 4, 5, 6, 7]) * 2 + b"\x01\x02\x03", "a pattern of 7 bytes repeated"),
    (bytes([1, 2, 3] * 5 + [4] * 6 + [9]), "only 5 different byte values"),
], ids=["zeros", "one-byte", "deadbeef", "a-word", "seven-bytes", "seven-bytes-short",
        "five-values"])
def test_the_store_refuses_weak_keys(store: Store, key: bytes, why: str):
    with pytest.raises(ValueError, match=f"weak key \\({why}\\)"):
        store.set_node_key(7, key, now_ms=0)
    assert store.node_keys() == {}
    store.set_node_key(7, KEY, now_ms=0)  # bytes 0..31: no pattern, 32 values
    assert store.node_keys() == {7: KEY}
