"""Updates over the air under MicroPython: a node fetching a bundle from a host that
loses and repeats, through a power cut, a torn piece and a bundle that cannot be
installed (the loader's trial and rollback: test_otaboot)."""

import gc
import os
from hashlib import sha256

# Compiled first, while the 112 KB heap is still in one piece.
from outbox import Outbox  # isort: skip

import otaboot
from framing import FrameBuilder, Signer, decode_frame, encode_frame
from kinsight_wire import (
    ACK_BOOT,
    ACK_SEQ,
    ACK_TIME_S,
    ACK_UPDATE_BUNDLE,
    ACK_UPDATE_SHA256,
    ACK_UPDATE_SIZE,
    BUNDLE_MAGIC,
    H_BOOT,
    H_SEQ,
    KIND_ACK,
    KIND_UPDATE_GET,
    KIND_UPDATE_PIECE,
    ST_BUNDLE,
    ST_BUNDLE_FAILED,
    UG_BUNDLE,
    UG_OFFSET,
    UG_PIECES,
    UP_BUNDLE,
    UP_DATA,
    UP_OFFSET,
    UPDATE_PIECE_BYTES,
)
from node import Node, Sink
from runner import eq
from sequence import SequenceCounter
from tempdir import TempDir
from update import Updater
from uplink import Backoff, Forwarder

NODE = 7
SIGNER = Signer(bytes(range(32)))
T0 = 1790000000


def bundle_of(files):
    gc.collect()
    out = bytearray(len(BUNDLE_MAGIC) + sum(5 + len(n) + len(d) for n, d in files))
    out[:4] = BUNDLE_MAGIC
    at = 4
    for name, data in files:
        out[at] = len(name)
        out[at + 1:at + 1 + len(name)] = name.encode()
        at += 1 + len(name)
        out[at:at + 4] = len(data).to_bytes(4, "big")
        out[at + 4:at + 4 + len(data)] = data
        at += 4 + len(data)
    return out


def files():
    gc.collect()  # the imports left the heap in pieces: room for the bundle first
    return [("runtime.py", b"VERSION = 'new'\n" * 40), ("node.mpy", bytes(range(256)) * 3)]


# --- fetching -----------------------------------------------------------------------------


class UpdateHost:
    """The far end of the uplink: acks every frame with the offer, and answers update
    requests with pieces of ``bundle``, losing the datagrams ``lose(i)`` picks and
    sending every third piece twice."""

    def __init__(self, bundle, bundle_id=12, lose=None, max_pieces=8):
        self.bundle = bundle
        self.max_pieces = max_pieces
        self.bundle_id = bundle_id
        self.digest = sha256(bytes(bundle)).digest()
        self.lose = lose or (lambda i: False)
        self.out = []
        self.n = 0
        self.host_seq = 0
        self.requests = []
        self.asks = []  # (boot, offset)
        self.offer = True
        self.statuses = []

    def _reply(self, kind, body):
        self.host_seq += 1
        self.n += 1
        if not self.lose(self.n):
            self.out.append(encode_frame(SIGNER, kind, NODE, 1, self.host_seq, T0, body))

    def send(self, frame):
        kind, header, body = decode_frame(SIGNER, frame)
        ack = {ACK_BOOT: header[H_BOOT], ACK_SEQ: header[H_SEQ], ACK_TIME_S: T0}
        if self.offer:
            ack[ACK_UPDATE_BUNDLE] = self.bundle_id
            ack[ACK_UPDATE_SIZE] = len(self.bundle)
            ack[ACK_UPDATE_SHA256] = self.digest
        if kind == KIND_UPDATE_GET:
            self.requests.append(body[UG_OFFSET])
            self.asks.append((header[H_BOOT], body[UG_OFFSET]))
            at = body[UG_OFFSET]
            for i in range(min(body[UG_PIECES], self.max_pieces)):
                piece = bytes(self.bundle[at:at + UPDATE_PIECE_BYTES])
                if not piece:
                    break
                body_out = {UP_BUNDLE: body[UG_BUNDLE], UP_OFFSET: at, UP_DATA: piece}
                self._reply(KIND_UPDATE_PIECE, body_out)
                if i % 3 == 2:
                    self._reply(KIND_UPDATE_PIECE, body_out)
                at += len(piece)
        elif kind == 3:
            self.statuses.append(body)
        self._reply(KIND_ACK, ack)

    def receive(self):
        return self.out.pop(0) if self.out else None

    def close(self):
        pass


def file_hash(path):
    h = sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(128)
            if not chunk:
                return h.digest()
            h.update(chunk)


def host_size(host):
    return len(host.bundle)


class Reboot(Exception):
    pass


def _reboot():
    raise Reboot


def make_node(flash, host):
    updater = Updater(flash + "/ota", _reboot)
    counter = SequenceCounter(flash + "/boot")
    outbox = Outbox(flash + "/outbox", max_frames=64, segment_frames=8, flush_every=2)
    forwarder = Forwarder(outbox, host, SIGNER, NODE, backoff=Backoff(first_ms=50, seed=1),
                          boot=counter.boot, updater=updater)
    node = Node(FrameBuilder(SIGNER, NODE, counter), outbox, forwarder, [], Sink(),
                status_s=3600, follow_host_clock=False, updater=updater)
    return node, updater


def run(node, start_ms, until_ms, step_ms=100):
    t = start_ms
    while t < until_ms:
        node.step(t)
        t += step_ms
    return t


def test_a_bundle_comes_over_a_lossy_link_and_is_installed():
    with TempDir() as flash:
        host = UpdateHost(bundle_of(files()), lose=lambda i: i % 7 == 3)
        node, updater = make_node(flash, host)
        rebooted = False
        try:
            run(node, 0, 600000)
        except Reboot:
            rebooted = True
        eq(rebooted, True, "the node resets into the new firmware")
        eq(updater.have, host_size(host))
        state = otaboot.read(flash + "/ota")
        eq((state["slot"], state["bundle"], state["trial"]), ("a", 12, 12))
        del node
        for name, data in files():
            want = sha256(data).digest()
            del data
            eq(file_hash(flash + "/ota/a/" + name), want, name)
        eq("part" in os.listdir(flash + "/ota"), False, "the fetched file is gone")
        eq(updater.stray > 0, True, "repeated pieces were ignored")


def test_the_next_start_after_a_power_cut_asks_from_where_it_was():
    with TempDir() as flash:
        host = UpdateHost(bundle_of(files()), max_pieces=1)
        node, updater = make_node(flash, host)
        t = 0
        while updater.have < host_size(host) // 2:
            node.step(t)
            t += 100
        have = updater.have
        del node, updater, host  # the power goes: nothing more is written
        gc.collect()
        host = UpdateHost(bundle_of(files()))
        node, updater = make_node(flash, host)
        try:
            run(node, 0, 600000)
        except Reboot:
            pass
        boot = node.builder.counter.boot
        eq([o for b, o in host.asks if b == boot][0], have, "the new start's first request")
        eq(otaboot.read(flash + "/ota")["bundle"], 12)


def test_a_torn_piece_is_fetched_again_whole():
    with TempDir() as flash:
        host = UpdateHost(bundle_of(files()), max_pieces=1)
        node, updater = make_node(flash, host)
        t = 0
        while updater.have < 3 * UPDATE_PIECE_BYTES:
            node.step(t)
            t += 100
        with open(flash + "/ota/part", "r+b") as f:  # a write the power cut garbled
            f.seek(10)
            f.write(b"\xff\xff")
        try:
            run(node, t, 600000)
        except Reboot:
            pass
        eq(updater.bad_hashes, 1)
        eq(host.requests.count(0), 2, "asked from the start again")
        eq(otaboot.read(flash + "/ota")["bundle"], 12)


def test_a_bundle_without_a_runtime_is_given_up_and_said_so():
    with TempDir() as flash:
        host = UpdateHost(bundle_of([("node.mpy", b"x" * 500)]), bundle_id=13)
        node, updater = make_node(flash, host)
        run(node, 0, 120000)  # no reset: nothing was installed
        eq(updater.failed, 13)
        eq(otaboot.read(flash + "/ota")["slot"], "")
        node.send_status(130000)
        run(node, 130000, 140000)
        eq(host.statuses[-1].get(ST_BUNDLE_FAILED), 13, "the host is told")
        asked = len(host.requests)
        run(node, 140000, 200000)
        eq(len(host.requests), asked, "the failed bundle is not fetched again")


def test_an_update_on_trial_is_confirmed_by_the_hosts_ack():
    with TempDir() as flash:
        otaboot.install("a", 12, flash + "/ota")
        otaboot.start(flash + "/ota")
        host = UpdateHost(bundle_of(files()), bundle_id=12)
        node, updater = make_node(flash, host)
        eq(updater.trial, 12)
        run(node, 0, 5000)
        eq(otaboot.read(flash + "/ota")["trial"], 0, "confirmed")
        eq(host.statuses[0].get(ST_BUNDLE), 12, "the status says what runs")
        eq(host.requests, [], "the bundle running is not fetched")


def test_in_safe_mode_it_fetches_nothing_and_says_what_runs():
    with TempDir() as flash:
        state = otaboot.read(flash + "/ota")
        state.update({"slot": "a", "bundle": 12, "failed": 13})
        otaboot.write(state, flash + "/ota")
        host = UpdateHost(bundle_of(files()), bundle_id=14)
        node, updater = make_node(flash, host)
        updater.enabled = False
        run(node, 0, 20000)
        eq(host.requests, [], "nothing fetched")
        eq((host.statuses[0].get(ST_BUNDLE), host.statuses[0].get(ST_BUNDLE_FAILED)), (12, 13))


def test_fetching_allocates_little_per_piece():
    with TempDir() as flash:
        big = bundle_of([("runtime.py", b"#" * 2500)])
        host = UpdateHost(big, max_pieces=1)
        node, updater = make_node(flash, host)
        t = run(node, 0, 3000)
        gc.collect()
        before = gc.mem_alloc()
        got = updater.pieces
        t = run(node, t, t + 30000)
        gc.collect()
        eq(updater.pieces - got > 5, True, "pieces came")
        eq(gc.mem_alloc() - before < 4096, True, "no growth: %d" % (gc.mem_alloc() - before))
