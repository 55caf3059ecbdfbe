"""What the node noticed but has not framed yet, kept on flash: a reset or a power
cut costs at most what the extractors noticed in the last moments.

Frames are kept full for the radio budget, so events wait up to half an hour for
a batch and interval summaries up to two hours. Until they are framed each one
is also here, in a file per kind (the node's ``events`` and ``summaries``) of
appended records:

    0x5A | type (1) | len (1) | payload (len) | crc32 (4)

* an item: type 1, payload = unix ms (8, big-endian) | the item in CBOR;
* framing: type 2, payload = boot (4) | seq (4) of the last frame that carries
  every item before it, written before those frames go to the outbox's flash.

Framing is: push the frames, note ``framing(kind, boot, seq)``, flush the outbox,
then ``framed(kind)`` removes the file. A cut before the outbox has the frame
leaves the items to frame again at the next start; a cut after leaves the
framing record, and ``recover`` finds (boot, seq) in the outbox and drops what
it covers: each item reaches the host once. Reading stops at the first torn or
altered record (CRC): an append cut short costs that item only.
"""

import os
import struct
from binascii import crc32

from micropython import const

from wirecbor import dumps, loads

_MAGIC = const(0x5A)
_ITEM = const(1)
_FRAMING = const(2)
_HEAD = const(3)
_CRC = const(4)
_MAX_PAYLOAD = const(255)


class JournalError(ValueError):
    pass


class Journal:
    """The per-kind journal files in ``folder`` (created if missing)."""

    def __init__(self, folder):
        self.folder = folder
        self.torn = 0  # torn or altered records found by recover()
        try:
            os.mkdir(folder)
        except OSError:
            pass

    def _path(self, kind):
        return "%s/%s" % (self.folder, kind)

    def _append(self, kind, rtype, payload):
        n = len(payload)
        if n > _MAX_PAYLOAD:
            raise JournalError("a journal record is at most %d bytes, not %d" % (_MAX_PAYLOAD, n))
        rec = bytearray(_HEAD + n + _CRC)
        rec[0] = _MAGIC
        rec[1] = rtype
        rec[2] = n
        rec[_HEAD:_HEAD + n] = payload
        struct.pack_into(">I", rec, _HEAD + n, crc32(memoryview(rec)[:_HEAD + n]) & 0xFFFFFFFF)
        with open(self._path(kind), "ab") as f:
            f.write(rec)

    def note(self, kind, unix_ms, item):
        """Keep ``item`` (a dict of the wire's integer keys) noticed at ``unix_ms``."""
        self._append(kind, _ITEM, struct.pack(">Q", unix_ms) + dumps(item))

    def framing(self, kind, boot, seq):
        """Every item noted so far is in frames up to (boot, seq), about to be flushed."""
        self._append(kind, _FRAMING, struct.pack(">II", boot, seq))

    def framed(self, kind):
        """The outbox has them on flash: forget them."""
        try:
            os.remove(self._path(kind))
        except OSError:
            pass

    def _records(self, kind):
        try:
            with open(self._path(kind), "rb") as f:
                data = f.read()
        except OSError:
            return
        pos = 0
        end = len(data)
        while pos + _HEAD + _CRC <= end:
            n = data[pos + 2]
            stop = pos + _HEAD + n
            if data[pos] != _MAGIC or stop + _CRC > end:
                self.torn += 1
                return
            (crc,) = struct.unpack_from(">I", data, stop)
            if crc32(memoryview(data)[pos:stop]) & 0xFFFFFFFF != crc:
                self.torn += 1
                return
            yield data[pos + 1], data[pos + _HEAD:stop]
            pos = stop + _CRC
        if pos != end:
            self.torn += 1

    def recover(self, kind, outbox):
        """The items of ``kind`` not yet in the outbox, as [(unix_ms, item)], oldest
        first. ``outbox.contains(boot, seq)`` says whether a framing reached it."""
        items = []
        for rtype, payload in self._records(kind):
            if rtype == _ITEM:
                (unix_ms,) = struct.unpack_from(">Q", payload, 0)
                try:
                    item = loads(payload[8:])
                except ValueError:
                    self.torn += 1
                    continue
                items.append((unix_ms, item))
            elif rtype == _FRAMING:
                boot, seq = struct.unpack_from(">II", payload, 0)
                if outbox.contains(boot, seq):
                    items = []
        return items


def recover_node(node):
    """Frame, on ``node`` (node.Node with this journal), what the last start noticed
    and never queued; their frames carry the old clock's time, which their ages count
    back from. Returns how many items."""
    from kinsight_wire import EV_AGO_DS, MAX_LIST_ITEMS, SM_AGO_S

    journal = node.journal
    n = 0
    for kind in ("events", "summaries"):
        items = journal.recover(kind, node.outbox)
        if not items:
            journal.framed(kind)  # nothing left, or all of it already queued
            continue
        time_s = max(t for t, _ in items) // 1000 + 1
        batch = []
        for unix_ms, item in items:
            if kind == "events":
                item[EV_AGO_DS] = (time_s * 1000 - unix_ms) // 100
            else:
                item[SM_AGO_S] = time_s - unix_ms // 1000
            batch.append(item)
        builder = node.builder
        build = builder.events if kind == "events" else builder.summaries
        size = 8 if kind == "events" else MAX_LIST_ITEMS  # as the node batches them
        node.outbox.flush()
        for at in range(0, len(batch), size):
            first = builder.counter.seq
            node.push(build(batch[at:at + size], time_s), first)
        node.commit(kind)
        n += len(items)
    node.recovered = n
    return n
