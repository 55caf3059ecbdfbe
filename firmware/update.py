"""Firmware updates over the node's own uplink, a piece at a time.

The host offers a bundle in its acks (its id, size and SHA-256: ACK_UPDATE_*). The
Updater asks for it from the byte it has stored (an update-get frame, queued in the
outbox like any other: numbered, signed, sent again until acked) and appends each
piece that carries on from there to /ota/part. A piece is a frame under the node's
key, so only the host can have sent it; a power cut leaves a prefix, and the next
start asks from its end. With every byte in, the whole file must hash to the
offer's SHA-256; then it is unpacked file by file into the free slot, each file's
length checked, and ``otaboot.install`` makes it the firmware the next boot tries:
the node resets into it. A boot of it that fails goes back (otaboot).

    updater = Updater("/ota", hal.reset)
    forwarder = Forwarder(..., updater=updater)   # acks and pieces reach it
    node = Node(..., updater=updater)             # node.step runs updater.step(now_ms, node)

Nothing is fetched while an update is on trial, nor a bundle already running or one
that failed, nor in safe mode. The reset into a new bundle is no failed boot: the
``reboot`` runtime gives it tells the boot guard the firmware ran well first.
"""

import os
import time
from hashlib import sha256

from micropython import const

import otaboot
from kinsight_wire import (
    ACK_UPDATE_BUNDLE,
    ACK_UPDATE_SHA256,
    ACK_UPDATE_SIZE,
    BUNDLE_MAGIC,
    BUNDLE_NAME_MAX,
    MAX_BUNDLE_BYTES,
    MAX_UPDATE_PIECES,
    UG_BUNDLE,
    UG_OFFSET,
    UG_PIECES,
    UP_BUNDLE,
    UP_DATA,
    UP_OFFSET,
    UPDATE_PIECE_BYTES,
)

_RETRY_MS = const(3000)  # a request whose pieces have not all come by then is asked again
_GAP_WAIT_MS = const(300)  # after a piece past a gap, for the rest of the answer to come
_BUF = const(512)
_BAD_HASH_LIMIT = const(3)  # whole fetches that hashed wrong before the bundle is given up


class UpdateError(ValueError):
    """A bundle that cannot be installed (it hashed right: the host staged it so)."""


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def rmtree(path):
    if not _exists(path):
        return
    if os.stat(path)[0] & 0x4000:
        for name in os.listdir(path):
            rmtree(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


class Updater:
    def __init__(self, folder, reboot, enabled=True):
        self.folder = folder
        self.reboot = reboot
        # In safe mode it only says what runs and what failed: nothing is fetched, and a
        # trial that came to safe mode is not confirmed.
        self.enabled = enabled  # () -> reset into the new firmware (does not return)
        self._part = folder + "/part"
        self._meta = folder + "/part.meta"
        state = otaboot.read(folder)
        self.running = state["bundle"]  # 0: the board's own firmware
        self.failed = state["failed"]
        self.trial = state["trial"]
        self.offer = None  # (bundle, size, sha256) being fetched
        self.have = 0  # bytes of it stored
        self._asked_ms = None
        self._asked_until = 0
        self._now_ms = 0
        self._complete = False
        self.bad_hashes = 0
        self.pieces = 0  # pieces stored
        self.stray = 0  # pieces of another bundle or offset (late copies, losses)
        self._buf = bytearray(_BUF)

    # --- what the host sends -----------------------------------------------------------

    def offer_from(self, ack_body):
        """An ack's offer, if it carries one."""
        bundle = ack_body.get(ACK_UPDATE_BUNDLE)
        if bundle is None:
            return
        size = ack_body.get(ACK_UPDATE_SIZE)
        digest = ack_body.get(ACK_UPDATE_SHA256)
        if (not self.enabled or type(size) is not int or not 0 < size <= MAX_BUNDLE_BYTES
                or type(digest) is not bytes or len(digest) != 32):
            return
        if self.trial or bundle == self.running or bundle == self.failed:
            return
        if self.offer is not None and self.offer[0] == bundle:
            return
        self._start(bundle, size, digest)

    def piece(self, body):
        offer = self.offer
        if offer is None or body[UP_BUNDLE] != offer[0] or body[UP_OFFSET] != self.have:
            self.stray += 1
            if offer is not None and body[UP_OFFSET] > self.have and self._asked_ms is not None:
                # One before it was lost: ask again soon rather than at the timeout.
                self._asked_ms = self._now_ms + _GAP_WAIT_MS - _RETRY_MS
            return
        data = body[UP_DATA]
        if self.have + len(data) > offer[1]:
            self.stray += 1
            return
        with open(self._part, "ab") as f:
            f.write(data)
        self.have += len(data)
        self.pieces += 1
        self._asked_ms = self._now_ms  # the host is answering: wait for the rest
        if self.have >= self._asked_until:
            self._asked_ms = None  # all that was asked came: ask on at once
        if self.have == offer[1]:
            self._complete = True

    # --- the node's loop ---------------------------------------------------------------

    def step(self, now_ms, node):
        """``node`` (node.Node) queues the requests; its forwarder's acks confirm a trial,
        its outbox says whether the host has taken what was queued."""
        self._now_ms = now_ms
        if not self.enabled:
            return
        if self.trial and node.forwarder.acked:
            # The new firmware booted and reached the host: it stays.
            otaboot.confirm(self.folder)
            self.trial = 0
        offer = self.offer
        if offer is None:
            return
        if self._complete:
            self._finish(node.outbox)
            return
        asked = self._asked_ms
        if asked is not None and (time.ticks_diff(now_ms, asked) < _RETRY_MS
                                  or node.outbox.depth):
            return  # waiting for pieces, or for the host to take what is queued
        left = offer[1] - self.have
        pieces = min(MAX_UPDATE_PIECES, (left + UPDATE_PIECE_BYTES - 1) // UPDATE_PIECE_BYTES)
        node.update_get({UG_BUNDLE: offer[0], UG_OFFSET: self.have, UG_PIECES: pieces}, now_ms)
        self._asked_ms = now_ms
        self._asked_until = self.have + pieces * UPDATE_PIECE_BYTES

    # --- inside ------------------------------------------------------------------------

    def _start(self, bundle, size, digest):
        try:
            os.mkdir(self.folder)
        except OSError:
            pass
        meta = "%d %d %s" % (bundle, size, _hex(digest))
        have = 0
        try:
            with open(self._meta) as f:
                same = f.read().strip() == meta
            if same:
                have = os.stat(self._part)[6]
        except OSError:
            same = False
        if not same or have > size:
            have = 0
            with open(self._part, "wb"):
                pass
            with open(self._meta, "w") as f:
                f.write(meta + "\n")
        self.offer = (bundle, size, digest)
        self.have = have
        self._asked_ms = None
        self._complete = have == size

    def _finish(self, outbox):
        offer = self.offer
        if offer is None:
            return
        bundle, digest = offer[0], offer[2]
        self._complete = False
        if self._hash() != digest:
            # Pieces are authenticated, so a bad hash is a torn write at a power cut:
            # fetch it all again, a few times at most.
            self.bad_hashes += 1
            if self.bad_hashes >= _BAD_HASH_LIMIT:
                self._give_up(bundle)
            else:
                self._start_over()
            return
        slot = otaboot.free_slot(self.folder)
        try:
            self._unpack(otaboot.slot_path(slot, self.folder))
        except (UpdateError, OSError) as err:
            print("kinsight: update %d cannot be installed: %s" % (bundle, err))
            self._give_up(bundle)
            return
        otaboot.install(slot, bundle, self.folder)
        self._forget_part()
        outbox.flush()  # what waits for the host is on flash before the reset
        print("kinsight: update %d installed: restarting into it" % bundle)
        self.reboot()

    def _hash(self):
        h = sha256()
        buf = self._buf
        view = memoryview(buf)
        with open(self._part, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(view[:n])
        return h.digest()

    def _unpack(self, path):
        rmtree(path)
        os.mkdir(path)
        buf = self._buf
        names = 0
        with open(self._part, "rb") as f:
            if f.read(len(BUNDLE_MAGIC)) != BUNDLE_MAGIC:
                raise UpdateError("not a Kinsight bundle (no KSB1 at its start)")
            while True:
                head = f.read(1)
                if not head:
                    break
                name = f.read(head[0])
                if not 0 < len(name) <= BUNDLE_NAME_MAX or len(name) != head[0]:
                    raise UpdateError("a file name is cut short or too long")
                name = name.decode()
                if "/" in name or name.startswith(".") or not (
                        name.endswith(".mpy") or name.endswith(".py")):
                    raise UpdateError("%r is no module name" % name)
                length = f.read(4)
                if len(length) != 4:
                    raise UpdateError("%s has no length" % name)
                left = int.from_bytes(length, "big")
                with open(path + "/" + name, "wb") as out:
                    while left:
                        n = f.readinto(memoryview(buf)[:min(left, _BUF)])
                        if not n:
                            raise UpdateError("%s is cut short" % name)
                        out.write(memoryview(buf)[:n])
                        left -= n
                names += 1
        if not (_exists(path + "/runtime.mpy") or _exists(path + "/runtime.py")):
            raise UpdateError("the bundle has no runtime module to start (%d files)" % names)

    def _start_over(self):
        offer = self.offer
        self._forget_part()
        self.offer = None
        if offer is not None:
            self._start(offer[0], offer[1], offer[2])

    def _give_up(self, bundle):
        state = otaboot.read(self.folder)
        state["failed"] = bundle
        otaboot.write(state, self.folder)
        self.failed = bundle
        self.offer = None
        self._forget_part()

    def _forget_part(self):
        for path in (self._part, self._meta):
            try:
                os.remove(path)
            except OSError:
                pass


def _hex(data):
    return "".join("%02x" % b for b in data)
