"""The UDP listener under trouble: a full disk, replayed frames from other addresses.

Real sockets on 127.0.0.1 and real SQLite files; ``serve_ready`` is the listener's
own step, driven here one batch at a time so that what was acked is exact."""

from __future__ import annotations

import select
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from kinsight.errors import StoreFullError
from kinsight.ingest import Ingestor
from kinsight.ingest.udp import UdpListener
from kinsight.store import Store
from kinsight.wire import Header, encode_frame, open_frame

KEY = bytes(range(32))
NODE = 7
NOW_S = int(time.time())


def frame(seq: int, *, time_s: int = NOW_S, n: int = 3) -> bytes:
    return encode_frame(KEY, "events", Header(node_id=NODE, boot=1, seq=seq, time_s=time_s),
                        {"events": [{"type": "draw", "role": "tap", "ago_ds": 10 * i,
                                     "duration_ds": 50, "volume_ml": 100 + seq}
                                    for i in range(n)]})


class Peer:
    """A UDP socket somewhere on 127.0.0.1: a node, or someone replaying its frames."""

    def __init__(self, to: tuple[str, int]):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.to = to

    def send(self, *raws: bytes) -> None:
        for raw in raws:
            self.sock.sendto(raw, self.to)

    def acks(self, wait_s: float = 0.3) -> list[tuple[int, int | None]]:
        """(acked_seq, contiguous_seq) of every ack that arrives within wait_s."""
        out = []
        while select.select([self.sock], [], [], wait_s)[0]:
            body = open_frame(self.sock.recv(2048), KEY).body
            out.append((body.acked_seq, body.contiguous_seq))
            wait_s = 0.05
        return out

    def close(self) -> None:
        self.sock.close()


def serve(listener: UdpListener, expect: int) -> None:
    """Let the listener take one batch of the expect datagrams sent to it."""
    select.select([listener.sock], [], [], 2)
    got = 0
    for _ in range(50):
        got += listener.serve_ready()
        if got >= expect:
            return
        select.select([listener.sock], [], [], 0.05)
    pytest.fail(f"listener got {got} of {expect} datagrams")


@pytest.fixture
def db(tmp_path: Path):
    store = Store(tmp_path / "k.db")
    store.set_node_key(NODE, KEY, now_ms=0)
    yield store
    store.close()


@pytest.fixture
def listener(db):
    udp = UdpListener(Ingestor(db), "127.0.0.1", 0)
    yield udp
    udp.close()


def test_a_full_disk_acks_nothing_and_stores_everything_once_there_is_room(db, listener):
    node = Peer(listener.address)
    frames = [frame(s, n=8) for s in range(20)]
    # SQLite's own size limit makes a real SQLITE_FULL: the file may not grow by a page.
    db.conn.execute(f"PRAGMA max_page_count = {db.query('PRAGMA page_count')[0][0]}")
    node.send(*frames)
    serve(listener, 20)  # does not raise: the listener stays up
    assert node.acks() == []  # nothing stored, nothing acked
    assert db.query("SELECT COUNT(*) FROM frames") == [(0,)]
    assert db.query("SELECT COUNT(*) FROM events") == [(0,)]
    ingestor = listener.ingestor
    assert ingestor.stats.store_full == 1 and ingestor.stats.unstored == 20
    assert ingestor.stats.accepted == 0  # what was not stored is not counted as stored
    assert ingestor.store_full_since_ms is not None
    node.send(*frames)  # the node resends; still no room
    serve(listener, 20)
    assert node.acks() == [] and ingestor.stats.store_full == 2

    db.conn.execute("PRAGMA max_page_count = 1073741823")  # space returns
    node.send(*frames)
    serve(listener, 20)
    assert node.acks() == [(19, 19)]
    assert ingestor.store_full_since_ms is None
    assert db.query("SELECT seq FROM frames ORDER BY seq") == [(s,) for s in range(20)]
    assert db.query("SELECT COUNT(*) FROM events") == [(20 * 8,)]
    assert ingestor.stats.accepted == 20
    node.close()


def test_a_full_disk_in_a_batch_leaves_nothing_of_it(db):
    ingestor = Ingestor(db)
    ingestor.ingest_batch([frame(0)])
    before = db.query("SELECT * FROM frames") + db.query("SELECT * FROM events")
    db.conn.execute(f"PRAGMA max_page_count = {db.query('PRAGMA page_count')[0][0]}")
    with pytest.raises(StoreFullError, match="full"):
        ingestor.ingest_batch([frame(s, n=8) for s in range(1, 30)] + [b"garbage"])
    assert ingestor.acks == []
    assert db.query("SELECT * FROM frames") + db.query("SELECT * FROM events") == before
    assert db.reject_counts() == {}
    assert isinstance(StoreFullError("x"), OSError)
    assert not isinstance(StoreFullError("x"), sqlite3.Error)


def test_a_replay_from_another_address_never_takes_the_nodes_ack(db, listener):
    node, replayer = Peer(listener.address), Peer(listener.address)
    node.send(frame(0), frame(1))
    serve(listener, 2)
    assert node.acks() == [(1, 1)]
    replayer.send(frame(1))  # a copy of what the node sent, from elsewhere
    serve(listener, 1)
    assert replayer.acks(0.1) == [] and node.acks(0.1) == []
    for seq in range(2, 42):  # the node's new frame and a replay race, every time
        replayer.send(frame(seq - 1))
        node.send(frame(seq))
        replayer.send(frame(seq - 2))
        serve(listener, 3)
        assert node.acks(0.2) == [(seq, seq)], seq
    assert replayer.acks(0.1) == []
    assert listener.ingestor.stats.duplicates == 81
    node.close()
    replayer.close()


def test_a_node_whose_address_changes_is_answered_at_its_new_one(db, listener):
    old, new = Peer(listener.address), Peer(listener.address)
    old.send(frame(0))
    serve(listener, 1)
    assert old.acks() == [(0, 0)]
    new.send(frame(0))  # a resend from the new address: not yet proof it is the node
    serve(listener, 1)
    assert new.acks(0.1) == [] and old.acks(0.1) == []
    new.send(frame(1))  # a new frame, authenticated: the node is here now
    serve(listener, 1)
    assert new.acks() == [(1, 1)] and old.acks(0.1) == []
    new.send(frame(0))
    serve(listener, 1)
    assert new.acks() == [(0, 1)]
    old.close()
    new.close()


def test_after_a_restart_the_nodes_address_is_learnt_from_its_next_new_frame(db, listener):
    node = Peer(listener.address)
    Ingestor(db).ingest_batch([frame(0)])  # stored by the listener's earlier life
    node.send(frame(0))
    serve(listener, 1)
    assert node.acks(0.1) == []  # nobody known to answer yet
    node.send(frame(1), frame(0))
    serve(listener, 2)
    assert node.acks() == [(1, 1)]
    node.close()
