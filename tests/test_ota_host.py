"""The host's side of updates over the air, on both backends: a staged bundle offered in
the node's acks (and announced to a node heard from before it was staged), its requests
answered with pieces under its key, and its status frames saying what became of it;
``kinsight ota`` packs, stages, lists and withdraws, refusing what it cannot send."""

from __future__ import annotations

import hashlib

import pytest

import kinsight_wire as wire
from kinsight.cli import main
from kinsight.errors import BundleError
from kinsight.ingest import Ingestor
from kinsight.store import Store, updates
from kinsight.wire import Header, encode_frame, open_frame
from kinsight.wire.bundle import pack, unpack

KEY = bytes(range(32))
T0 = 1_790_000_000
NODE = 7
BUNDLE = pack({"runtime.mpy": bytes(range(256)) * 3, "node.mpy": b"M" * 500})


def frame(kind: str, seq: int, body: dict, boot: int = 1) -> bytes:
    return encode_frame(KEY, kind, Header(node_id=NODE, boot=boot, seq=seq, time_s=T0), body)


def status(seq: int, **extra: object) -> bytes:
    return frame("status", seq, {"firmware": "0.2.0", "uptime_s": 1, "reset_cause": "hard",
                                 **extra})


def replies(ingestor: Ingestor, kind: str):
    return [open_frame(f, KEY) for n, f in ingestor.acks if n == NODE and
            open_frame(f, KEY).kind == kind]


def test_a_staged_bundle_is_offered_served_in_pieces_and_settled_by_status(store: Store):
    store.set_node_key(NODE, KEY, now_ms=0)
    clock = [T0 * 1000]
    ingestor = Ingestor(store, clock_ms=lambda: clock[0])
    ingestor.ingest_batch([status(0)])
    assert replies(ingestor, "ack")[0].body.update_bundle is None  # nothing staged yet
    bundle = updates.stage(store, NODE, BUNDLE, "0.3.0", now_ms=1)
    # The node is told without waiting for its next frame, once.
    (announced,) = ingestor.announcements(every_ms=0)
    offer = open_frame(announced[1], KEY).body
    assert (offer.acked_boot, offer.acked_seq, offer.update_bundle, offer.update_size,
            offer.update_sha256) == (1, 0, bundle, len(BUNDLE), hashlib.sha256(BUNDLE).digest())
    assert ingestor.announcements(every_ms=0) == []
    clock[0] += 31_000  # an ack can be lost: said again until the node asks
    assert len(ingestor.announcements(every_ms=0)) == 1
    # Its requests are frames of its own: stored, acked (with the offer), answered.
    got = b""
    seq = 1
    first = frame("update_get", 1, {"bundle": bundle, "offset": 0, "pieces": 8})
    while len(got) < len(BUNDLE):
        ingestor.ingest_batch([first if seq == 1 else frame(
            "update_get", seq, {"bundle": bundle, "offset": len(got), "pieces": 8})])
        assert replies(ingestor, "ack")[0].body.update_bundle == bundle
        for piece in replies(ingestor, "update_piece"):
            assert piece.body.offset == len(got) and piece.body.bundle == bundle
            assert len(piece.body.data) <= wire.UPDATE_PIECE_BYTES
            got += piece.body.data
        seq += 1
    assert got == BUNDLE and unpack(got).keys() == {"node.mpy", "runtime.mpy"}
    clock[0] += 60_000
    assert ingestor.announcements(every_ms=0) == []  # it asked: no need to say it again
    assert updates.updates(store, NODE)[0].fetched >= len(BUNDLE)
    # Sent again (its pieces lost): answered again.
    ingestor.ingest_batch([first])
    assert len(replies(ingestor, "update_piece")) == min(8, -(-len(BUNDLE) // 192))
    # A bundle not staged for it is not served.
    ingestor.ingest_batch([frame("update_get", seq, {"bundle": bundle + 5, "offset": 0,
                                                       "pieces": 2})])
    assert replies(ingestor, "update_piece") == []
    # The new firmware's status: installed, and no more offers.
    ingestor.ingest_batch([frame("status", 0, {"firmware": "0.3.0", "uptime_s": 1,
                                                "reset_cause": "hard", "bundle": bundle},
                                 boot=2)])
    assert [u.state for u in updates.updates(store, NODE)] == ["installed"]
    assert replies(ingestor, "ack")[0].body.update_bundle is None


def test_a_bundle_the_node_rolled_back_is_marked_failed(store: Store):
    store.set_node_key(NODE, KEY, now_ms=0)
    bundle = updates.stage(store, NODE, BUNDLE, "0.3.0", now_ms=1)
    ingestor = Ingestor(store, clock_ms=lambda: T0 * 1000)
    ingestor.ingest_batch([status(0, bundle_failed=bundle, crashes=1, crash_time_s=T0 - 5,
                                  crash_cause="hard", crash_what="ImportError: x")])
    assert [u.state for u in updates.updates(store, NODE)] == ["failed"]
    assert replies(ingestor, "ack")[0].body.update_bundle is None
    assert store.query("SELECT crash_what, crash_cause FROM statuses") == [
        ("ImportError: x", "hard")]


def test_bundles_refuse_what_a_node_cannot_install():
    with pytest.raises(BundleError, match="runtime"):
        pack({"node.mpy": b"x"})
    with pytest.raises(BundleError, match="board's image"):
        pack({"runtime.mpy": b"x", "hal.mpy": b"x"})
    with pytest.raises(BundleError, match="module file name"):
        pack({"runtime.mpy": b"x", "../etc.py": b"x"})
    with pytest.raises(BundleError, match="KSB1"):
        unpack(b"nope")


def test_kinsight_ota_stages_lists_and_withdraws(tmp_path, capsys):
    db = str(tmp_path / "home.db")
    assert main(["keys", "--db", db, "add", str(NODE), KEY.hex()]) == 0
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "runtime.py").write_text("import node\n")
    (fw / "node.py").write_text('FIRMWARE_VERSION = "9.9.9"\n')
    (fw / "hal.py").write_text("import machine\n")  # the board's: left out
    assert main(["ota", "--db", db, "--node", str(NODE), "--firmware", str(fw)]) == 0
    out = capsys.readouterr().out
    assert "bundle 1 staged (firmware 9.9.9, 2 files" in out
    with Store(db) as store:
        (u,) = updates.updates(store)
        data = updates.bundle_bytes(store, u.bundle)
    assert data is not None and sorted(unpack(data[1])) == ["node.mpy", "runtime.mpy"]
    assert unpack(data[1])["runtime.mpy"][:1] == b"M"  # compiled by mpy-cross
    assert main(["ota", "--db", db, "--list"]) == 0
    assert "node 7, firmware 9.9.9" in capsys.readouterr().out
    assert main(["ota", "--db", db, "--node", str(NODE), "--cancel"]) == 0
    assert "withdrawn" in capsys.readouterr().out
    # Refusals: one line each, nothing staged.
    assert main(["ota", "--db", db, "--node", "8"]) == 1
    assert "node 8 has no key" in capsys.readouterr().err
    (fw / "runtime.py").write_text("def (:\n")
    assert main(["ota", "--db", db, "--node", str(NODE), "--firmware", str(fw)]) == 1
    assert "mpy-cross cannot compile runtime.py" in capsys.readouterr().err
    assert main(["ota", "--db", str(tmp_path / "none.db"), "--node", "7"]) == 1
    with Store(db) as store:
        assert [u.state for u in updates.updates(store)] == ["cancelled"]
