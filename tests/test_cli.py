"""The kinsight command: capture ingest, the UDP listener, keys, nodes, errors."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinsight.cli import main
from kinsight.store import Store
from kinsight.wire import Header, encode_frame, fragment_frame, open_frame, write_capture
from kinsight.wire.capture import MAGIC

KEY = bytes(range(32))
T0 = 1_790_000_000


def frame(seq: int, node: int = 7, *, t0: int = T0) -> bytes:
    return encode_frame(KEY, "events", Header(node_id=node, boot=2, seq=seq, time_s=t0 + seq), {
        "events": [{"type": "visit", "role": "toilet", "ago_ds": 100, "duration_ds": 900}]})


def kinsight(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "k.db")
    assert kinsight("keys", "--db", path, "add", "7", KEY.hex()) == 0
    return path


def table_dump(path: str) -> list[tuple]:
    with Store(path) as s:
        return [(t, *r) for t in ("frames", "events", "rejected")
                for r in s.query(f"SELECT * FROM {t} ORDER BY 1")]


def test_ingest_capture_twice_changes_nothing(db, tmp_path, capsys):
    big = encode_frame(KEY, "events", Header(node_id=7, boot=2, seq=10, time_s=T0), {
        "events": [{"type": "draw", "role": "tap", "ago_ds": i, "volume_ml": i} for i in
                   range(30)]})
    parts = fragment_frame(KEY, big, node_id=7, boot=2, time_s=T0, first_seq=11)
    records = [(frame(s), T0 * 1000 + s) for s in range(5)] + [(b"\xff\x00junk", T0 * 1000)]
    records += [(p, T0 * 1000 + 20) for p in parts]
    cap = tmp_path / "day.kcap"
    write_capture(cap, records)
    assert kinsight("ingest", "--db", db, str(cap)) == 0
    out = capsys.readouterr().out
    assert f"{cap}: {len(records)} frames" in out
    # 5 frames, the fragments, and the message they make
    assert f"accepted: {5 + len(parts) + 1}" in out
    assert "decode 1" in out and "reassembled: 1" in out
    first = table_dump(db)
    assert kinsight("ingest", "--db", db, str(cap)) == 0
    assert f"duplicates: {5 + len(parts)}" in capsys.readouterr().out
    assert table_dump(db) == first
    with Store(db) as s:
        assert s.query("SELECT COUNT(*) FROM events")[0][0] == 5 + 30


def test_bad_capture_is_refused_whole_and_named(db, tmp_path, capsys):
    good = tmp_path / "good.kcap"
    write_capture(good, [(frame(0), 1)])
    cut = tmp_path / "cut.kcap"
    write_capture(cut, [(frame(1), 1), (frame(2), 2)])
    cut.write_bytes(cut.read_bytes()[:-5])
    assert kinsight("ingest", "--db", db, str(good), str(cut)) == 1
    err = capsys.readouterr().err
    assert err.startswith("kinsight: ") and "cut.kcap" in err and "cut short" in err
    assert table_dump(db) == []  # the good file was not ingested either

    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert kinsight("ingest", "--db", db, str(other)) == 1
    assert "not a Kinsight capture file" in capsys.readouterr().err
    future = tmp_path / "v9.kcap"
    future.write_bytes(MAGIC[:6] + b"\x09\n")
    assert kinsight("ingest", "--db", db, str(future)) == 1
    assert "format version 9" in capsys.readouterr().err
    assert kinsight("ingest", "--db", db, str(tmp_path / "missing.kcap")) == 1
    assert "cannot read" in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path, capsys):
    db = str(tmp_path / "k.db")
    assert kinsight("keys", "--db", db, "add", "7", "zz") == 1
    assert capsys.readouterr().err == "kinsight: key 'zz' is not hex digits\n"
    assert kinsight("keys", "--db", db, "add", "7", "00" * 8) == 1
    assert "16 to 64 bytes" in capsys.readouterr().err
    assert kinsight("nodes", "--db", str(tmp_path / "none.db")) == 1
    assert capsys.readouterr().err == f"kinsight: no database at {tmp_path / 'none.db'}\n"
    assert kinsight("listen", "--db", db, "--udp", "nohost") == 1
    assert "HOST:PORT" in capsys.readouterr().err


def test_nodes_reports_lost_and_rejected(db, tmp_path, capsys):
    cap = tmp_path / "c.kcap"
    write_capture(cap, [(frame(0), T0 * 1000), (frame(3), T0 * 1000 + 2),
                        (frame(4)[:-1] + b"!", T0 * 1000 + 3)])
    kinsight("ingest", "--db", db, str(cap))
    capsys.readouterr()
    assert kinsight("nodes", "--db", db) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["7", "2", "2", "0", "0", "2", "1"]
    assert out[-1] == "rejected frames by reason: bad_tag 1"


@pytest.mark.slow
def test_listen_over_udp_acks_after_storing(db, tmp_path):
    cap = tmp_path / "live.kcap"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinsight.cli", "listen", "--db", db, "--udp", "127.0.0.1:0",
         "--capture", str(cap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on udp 127.0.0.1:"), line + proc.stderr.read()
        port = int(line.rsplit(":", 1)[1])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(5)
        acks = []
        now_s = int(time.time())  # a live node's frames carry the host's time
        for seq in range(3):
            sock.sendto(frame(seq, t0=now_s), ("127.0.0.1", port))
            acks.append(open_frame(sock.recv(2048), KEY).body)
        sock.sendto(b"not a frame", ("127.0.0.1", port))
        sock.sendto(frame(1, t0=now_s), ("127.0.0.1", port))  # a retransmission: acked again
        again = open_frame(sock.recv(2048), KEY).body
        assert [(a.acked_boot, a.acked_seq, a.contiguous_seq) for a in acks] == \
            [(2, 0, 0), (2, 1, 1), (2, 2, 2)]
        assert (again.acked_seq, again.contiguous_seq) == (1, 2)
        assert abs(again.host_time_s - time.time()) < 60
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped after 5 datagrams" in out and "duplicates: 1" in out and "decode 1" in out
    with Store(db) as s:
        assert s.query("SELECT seq FROM frames ORDER BY seq") == [(0,), (1,), (2,)]
        assert s.reject_counts() == {"decode": 1}
    # The capture holds all five datagrams and replays to the same store contents.
    before = table_dump(db)
    assert main(["ingest", "--db", db, str(cap)]) == 0
    assert table_dump(db) == before


COMMANDS = ("listen", "ingest", "keys", "nodes", "place", "import", "analyse", "replay",
            "alerts", "ack", "eval", "demo", "bench")


def test_help_speaks_to_users_with_an_example_for_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        kinsight("--help")
    assert done.value.code == 0
    top = capsys.readouterr().out
    assert "care team" in top and "kinsight COMMAND --help" in top
    for word in ("do_", "table of commands", "``"):
        assert word not in top
    for name in COMMANDS:
        assert f"    {name} " in top, name
        with pytest.raises(SystemExit):
            kinsight(name, "--help")
        text = capsys.readouterr().out
        description = text.split("\n\n")[1]
        assert len(description.split()) >= 8, f"{name}: {description!r}"
        examples = text.split("examples:\n", 1)[1].splitlines()
        assert examples and all(e.startswith(f"  kinsight {name}") for e in examples), name


def test_numbers_out_of_range_are_refused_by_name_never_with_a_traceback(db, capsys):
    for args, said in ((["ack", "--db", db, "9223372036854775808", "--outcome", "useful"],
                        "alert number 9223372036854775808 is outside 1..9223372036854775807"),
                       (["place", "--db", db, "99999999999", "r-1"],
                        "node id 99999999999 is outside 0..4294967295"),
                       (["keys", "--db", db, "add", "-1", KEY.hex()],
                        "node id -1 is outside 0..4294967295"),
                       (["listen", "--db", db, "--udp", "127.0.0.1:0", "--mtu", "5"],
                        "MTU 5 is outside 32..65535"),
                       (["ack", "--db", db, "seven", "--outcome", "useful"],
                        "'seven' is not a whole number")):
        assert kinsight(*args) == 1
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err
        assert err.startswith(f"kinsight: {args[0]}: argument ") and err.count("\n") == 1


def test_a_fault_of_ours_is_one_line_too(db, capsys, monkeypatch):
    from kinsight.cli import commands

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(commands, "do_nodes", broken)
    assert kinsight("nodes", "--db", db) == 70
    err = capsys.readouterr().err
    assert err.startswith("kinsight: internal error (RuntimeError: a bug)")
    assert "Traceback" not in err


def test_keys_rotate_prints_a_new_key_and_remove_forgets_it(db, capsys, tmp_path):
    with Store(db) as s:
        old = s.node_keys()[7]
    assert kinsight("keys", "--db", db, "rotate", "7") == 0
    out = capsys.readouterr().out
    new = bytes.fromhex(out.split("new key ")[1].split()[0])
    with Store(db) as s:
        assert s.node_keys()[7] == new != old
    assert kinsight("keys", "--db", db, "remove", "7") == 0
    assert "key removed" in capsys.readouterr().out
    with Store(db) as s:
        assert 7 not in s.node_keys()
    for args, words in ((("remove", "7"), "node 7 has no key"),
                        (("rotate", "8"), "node 8 has no key"),
                        (("rotate", "7", "00" * 32), "needs NODE only")):
        assert kinsight("keys", "--db", db, *args) == 1
        assert words in capsys.readouterr().err
    missing = str(tmp_path / "nothing.db")
    assert kinsight("keys", "--db", missing, "rotate", "7") == 1
    assert not Path(missing).exists()
