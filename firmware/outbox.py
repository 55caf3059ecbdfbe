"""Store-and-forward queue of frames in flash, kept until the host acks them.

    box = Outbox("/outbox", max_frames=512, segment_frames=16, flush_every=16)
    box.push(boot, seq, frame)      # queue a frame (kept in RAM until flushed)
    box.pending(8)                  # the 8 oldest unacked frames, to send
    box.ack(boot, seq, contiguous)  # what an ack from the host says is stored
    box.flush()                     # on a timer, and before sleeping or rebooting

On flash (LittleFS on the node, a folder on the unix port) the queue is a run
of segment files ``qXXXXXXXX`` (8 hex digits, rising; oldest first), each
holding up to ``segment_frames`` records appended one after the other:

    0xA5 | len (1) | boot (4, big-endian) | seq (4) | frame (len) | crc32 (4)

The CRC-32 covers every byte of the record before it. A record that is short,
or has a wrong magic byte, length or CRC is damage: a tear (power lost
mid-append) at the end, or a flipped byte (worn flash) in the middle. Reading
then looks for the next whole record after it, so one bad byte costs one frame,
not the rest of its segment; the acks file's word on the records after the
damage is not trusted (they are sent again: the host takes duplicates). A
damaged segment is closed: new records go to a new segment.

Acknowledgement progress is the file ``acks`` (written to ``acks.tmp`` then
renamed), rewritten by flush() when acks changed what is on flash:

    count (1) | count * [segment id (4) | boot (4) | seq (4) | bitmap (4)] | crc32 (4)

one entry per partly acked segment, naming its first record's (boot, seq) so
that an entry can never be applied to another segment that took the same id.
A segment whose every record is acked is deleted at once.

What a power loss can cost: the frames pushed since the last flush() that
were not acked yet (at most ``flush_every``: push() flushes a full buffer
before it takes another frame). Nothing flushed is lost: a tear only cuts the record being written.
Acks received since the last flush() are forgotten, so those frames are sent
again (the host takes them as duplicates).

Flash is bounded: at most ``max_frames`` records. When a flush needs room the
oldest segment is deleted, and its unacked frames are counted in ``dropped``.
Records are indexed in RAM in one fixed bytearray per segment (12 bytes a frame); the write
buffer is one bytearray allocated at construction.
"""

import os
import struct
from array import array
from binascii import crc32

from micropython import const

_MAGIC = const(0xA5)
_HEAD = const(10)  # magic, len, boot, seq
_CRC = const(4)
_OVERHEAD = const(14)
_MAX_FRAME = const(250)
_MAX_SEGMENT_FRAMES = const(32)  # the bitmap of an acks entry is 32 bits
_ENTRY = const(16)
_MAX_BUFFERED = const(64)
_META = const(12)
_META_FMT = ">IIHBB"
_PREFIX = "q"
_ACKS = "acks"
_TMP = ".tmp"
_U32 = 0xFFFFFFFF


class OutboxError(ValueError):
    pass


def _is_segment(name):
    if len(name) != 9 or name[0] != _PREFIX:
        return False
    for c in name[1:]:
        if c not in "0123456789abcdef":
            return False
    return True


class _Segment:
    """One segment file's records: 12 bytes each in one bytearray, as
    boot (4), seq (4), offset in the file (2), length (1), acked (1)."""

    def __init__(self, ident, capacity):
        self.ident = ident
        self.count = 0
        self.unacked = 0
        self.size = 0  # bytes of valid records
        self.closed = False
        self.damaged_at: int | None = None  # index of the first record after damage
        self.meta = bytearray(_META * capacity)

    def add(self, boot, seq, length, offset=None):
        if offset is None:
            offset = self.size
        struct.pack_into(_META_FMT, self.meta, self.count * _META, boot, seq, offset, length, 0)
        self.count += 1
        self.unacked += 1
        self.size = offset + _OVERHEAD + length

    def first(self):
        return struct.unpack_from(">II", self.meta, 0)

    def acked(self, i):
        return self.meta[i * _META + _META - 1]

    def mark(self, i):
        """Marks record i acked; True when it was not yet."""
        pos = i * _META + _META - 1
        if self.meta[pos]:
            return False
        self.meta[pos] = 1
        self.unacked -= 1
        return True

    def ack(self, boot, seq, contiguous):
        newly = 0
        meta = self.meta
        for i in range(self.count):
            pos = i * _META
            if not meta[pos + _META - 1]:
                b, s = struct.unpack_from(">II", meta, pos)
                if b == boot and (s == seq or s <= contiguous):
                    meta[pos + _META - 1] = 1
                    newly += 1
        self.unacked -= newly
        return newly


class Outbox:
    def __init__(self, folder, max_frames=512, segment_frames=16, flush_every=16):
        if not 1 <= segment_frames <= _MAX_SEGMENT_FRAMES:
            raise OutboxError("segment_frames must be 1..%d, not %d"
                              % (_MAX_SEGMENT_FRAMES, segment_frames))
        if max_frames < 2 * segment_frames:
            raise OutboxError("max_frames (%d) must be at least two segments (%d)"
                              % (max_frames, 2 * segment_frames))
        if not 1 <= flush_every <= min(_MAX_BUFFERED, max_frames - segment_frames):
            raise OutboxError("flush_every must be 1..%d (and leave a segment of max_frames),"
                              " not %d" % (_MAX_BUFFERED, flush_every))
        self.folder = folder
        self.max_frames = max_frames
        self.segment_frames = segment_frames
        self.flush_every = flush_every
        self.dropped = 0  # unacked frames lost to a full queue
        self.writes = 0  # file writes (appends and acks-file replacements)
        self.removes = 0  # segment files deleted
        self.torn = 0  # torn segment tails found at start
        self._segments = []  # oldest first
        self._stored = 0  # records on flash, acked or not
        self._acks_dirty = False
        # The RAM buffer: records laid out as on flash, ready to write.
        self._buf = bytearray(flush_every * (_OVERHEAD + _MAX_FRAME))
        self._bmv = memoryview(self._buf)
        self._b_count = 0
        self._b_size = 0
        self._b_offsets = array("H", [0] * flush_every)
        self._b_acked = bytearray(flush_every)
        self._b_boots = array("I", [0] * flush_every)
        self._b_seqs = array("I", [0] * flush_every)
        self._head = bytearray(_HEAD)
        try:
            os.mkdir(folder)
        except OSError:
            pass
        self._next_id = 0
        self._load()

    # --- what the node sees ---------------------------------------------------------------

    @property
    def depth(self):
        """Frames waiting for an ack, on flash and in the buffer."""
        n = 0
        for seg in self._segments:
            n += seg.unacked
        for i in range(self._b_count):
            if not self._b_acked[i]:
                n += 1
        return n

    @property
    def buffered(self):
        """Frames pushed and not yet on flash."""
        return self._b_count

    def contains(self, boot, seq):
        """Whether (boot, seq) is queued, on flash or in the buffer, acked or not."""
        for i in range(self._b_count):
            if self._b_boots[i] == boot and self._b_seqs[i] == seq:
                return True
        for seg in self._segments:
            meta = seg.meta
            for i in range(seg.count):
                b, s = struct.unpack_from(">II", meta, i * _META)
                if b == boot and s == seq:
                    return True
        return False

    def push(self, boot, seq, frame):
        length = len(frame)
        if not 1 <= length <= _MAX_FRAME:
            raise OutboxError("a frame is 1..%d bytes, not %d" % (_MAX_FRAME, length))
        if not (0 <= boot <= _U32 and 0 <= seq <= _U32):
            raise OutboxError("boot and seq must be 0..4294967295, not %r, %r" % (boot, seq))
        if self._b_count == self.flush_every:
            # Flushed when the next frame comes, not when the buffer fills: frames
            # acked in the meantime are never written at all.
            self.flush()
        i = self._b_count
        off = self._b_size
        struct.pack_into(">BBII", self._buf, off, _MAGIC, length, boot, seq)
        end = off + _HEAD + length
        self._buf[off + _HEAD:end] = frame
        crc = crc32(self._bmv[off:end]) & _U32
        struct.pack_into(">I", self._buf, end, crc)
        self._b_offsets[i] = off
        self._b_acked[i] = 0
        self._b_boots[i] = boot
        self._b_seqs[i] = seq
        self._b_count = i + 1
        self._b_size = end + _CRC

    def pending(self, n):
        """Up to n of the oldest unacked frames, oldest first."""
        out = []
        for seg in self._segments:
            if len(out) >= n:
                return out
            if not seg.unacked:
                continue
            with open(self._path(seg.ident), "rb") as f:
                for i in range(seg.count):
                    if seg.acked(i):
                        continue
                    _b, _s, off, length, _a = struct.unpack_from(_META_FMT, seg.meta, i * _META)
                    f.seek(off + _HEAD)
                    out.append(f.read(length))
                    if len(out) >= n:
                        return out
        for i in range(self._b_count):
            if len(out) >= n:
                break
            if not self._b_acked[i]:
                off = self._b_offsets[i]
                out.append(bytes(self._bmv[off + _HEAD:off + _HEAD + self._buf[off + 1]]))
        return out

    def ack(self, boot, seq, contiguous=None):
        """Marks acked the frame (boot, seq) and every frame of that boot with a
        sequence number <= contiguous. Returns how many frames it newly acked."""
        if contiguous is None:
            contiguous = -1
        newly = 0
        for i in range(self._b_count):
            if not self._b_acked[i] and self._b_boots[i] == boot:
                s = self._b_seqs[i]
                if s == seq or s <= contiguous:
                    self._b_acked[i] = 1
                    newly += 1
        emptied = False
        for seg in self._segments:
            if seg.unacked:
                got = seg.ack(boot, seq, contiguous)
                if got:
                    newly += got
                    self._acks_dirty = True
                    if not seg.unacked:
                        emptied = True
        if emptied:
            for seg in [s for s in self._segments if not s.unacked]:
                self._remove(seg)
        return newly

    def flush(self):
        """Writes the buffered unacked frames to flash, and the ack progress if it
        changed. The node calls it on a timer and before sleeping or rebooting."""
        keep = 0
        for i in range(self._b_count):
            if not self._b_acked[i]:
                keep += 1
        while self._segments and self._stored + keep > self.max_frames:
            seg = self._segments[0]
            self.dropped += seg.unacked
            self._remove(seg)
        i = 0
        while i < self._b_count:
            if self._b_acked[i]:
                i += 1
                continue
            seg = self._tail()
            with open(self._path(seg.ident), "ab") as f:
                while i < self._b_count and seg.count < self.segment_frames:
                    if not self._b_acked[i]:
                        off = self._b_offsets[i]
                        length = self._buf[off + 1]
                        f.write(self._bmv[off:off + _OVERHEAD + length])
                        seg.add(self._b_boots[i], self._b_seqs[i], length)
                        self._stored += 1
                    i += 1
            self.writes += 1
            if seg.count == self.segment_frames:
                seg.closed = True
        self._b_count = 0
        self._b_size = 0
        if self._acks_dirty:
            self._write_acks()

    # --- flash ------------------------------------------------------------------------------

    def _path(self, ident):
        return "%s/%s%08x" % (self.folder, _PREFIX, ident)

    def _tail(self):
        if self._segments:
            seg = self._segments[-1]
            if not seg.closed and seg.count < self.segment_frames:
                return seg
            seg.closed = True
        seg = _Segment(self._next_id, self.segment_frames)
        self._next_id += 1
        self._segments.append(seg)
        return seg

    def _remove(self, seg):
        try:
            os.remove(self._path(seg.ident))
        except OSError:
            pass
        self.removes += 1
        self._stored -= seg.count
        self._segments.remove(seg)

    def _write_acks(self):
        entries = [s for s in self._segments if s.unacked < s.count]
        data = bytearray(1 + _ENTRY * len(entries) + _CRC)
        data[0] = len(entries)
        pos = 1
        for seg in entries:
            bits = 0
            for i in range(seg.count):
                if seg.acked(i):
                    bits |= 1 << i
            boot, seq = seg.first()
            struct.pack_into(">IIII", data, pos, seg.ident, boot, seq, bits)
            pos += _ENTRY
        struct.pack_into(">I", data, pos, crc32(memoryview(data)[:pos]) & _U32)
        path = self.folder + "/" + _ACKS
        with open(path + _TMP, "wb") as f:
            f.write(data)
        try:
            os.rename(path + _TMP, path)
        except OSError:  # FAT will not rename onto a file; losing it only costs resends
            try:
                os.remove(path)
            except OSError:
                pass
            os.rename(path + _TMP, path)
        self.writes += 1
        self._acks_dirty = False

    def _load(self):
        names = sorted(n for n in os.listdir(self.folder) if _is_segment(n))
        for name in names:
            ident = int(name[1:], 16)
            if ident >= self._next_id:
                self._next_id = ident + 1
            seg = self._read_segment(ident)
            if seg.count == 0:
                try:
                    os.remove(self._path(ident))
                except OSError:
                    pass
                continue
            self._segments.append(seg)
            self._stored += seg.count
        self._read_acks()
        for seg in [s for s in self._segments if not s.unacked]:
            self._remove(seg)
        # The newest segment may take more records unless it is full or torn.
        for seg in self._segments[:-1]:
            seg.closed = True

    def _record_at(self, f, pos):
        """(boot, seq, length) of a whole record at ``pos``, None if there is none
        (False at the end of the file)."""
        head = self._head
        f.seek(pos)
        got = f.readinto(head)
        if not got:
            return False
        if got != _HEAD or head[0] != _MAGIC or not 1 <= head[1] <= _MAX_FRAME:
            return None
        length = head[1]
        # Read into the write buffer: at start it holds nothing yet, and it is as large.
        rest = self._bmv[:length + _CRC]
        if f.readinto(rest) != length + _CRC:
            return None
        if crc32(rest[:length], crc32(head)) & _U32 != struct.unpack_from(
                ">I", self._buf, length)[0]:
            return None
        boot, seq = struct.unpack_from(">II", head, 2)
        return boot, seq, length

    def _read_segment(self, ident):
        seg = _Segment(ident, self.segment_frames)
        with open(self._path(ident), "rb") as f:
            end = f.seek(0, 2)
            pos = 0
            while pos < end:
                rec = self._record_at(f, pos)
                if rec is None:
                    # Damage: the next whole record, if any, is somewhere after it.
                    if seg.damaged_at is None:
                        seg.damaged_at = seg.count
                        self.torn += 1
                    pos += 1
                    continue
                if rec is False or seg.count == self.segment_frames:
                    break
                boot, seq, length = rec
                seg.add(boot, seq, length, pos)
                pos += _OVERHEAD + length
        if seg.damaged_at is not None or seg.count == self.segment_frames:
            seg.closed = True  # never append after damage
        return seg

    def _read_acks(self):
        try:
            with open(self.folder + "/" + _ACKS, "rb") as f:
                # The count first, then what it says: a boot allocates what the file
                # holds, not room for 255 entries.
                count = f.read(1)
                if not count:
                    return
                data = count + f.read(count[0] * _ENTRY + _CRC + 1)
        except OSError:
            return
        if len(data) < 1 + _CRC or len(data) != 1 + data[0] * _ENTRY + _CRC:
            return
        end = len(data) - _CRC
        if crc32(memoryview(data)[:end]) & _U32 != struct.unpack_from(">I", data, end)[0]:
            return
        by_id = {}
        for seg in self._segments:
            by_id[seg.ident] = seg
        for pos in range(1, end, _ENTRY):
            ident, boot, seq, bits = struct.unpack_from(">IIII", data, pos)
            seg = by_id.get(ident)
            if seg is None or seg.first() != (boot, seq):
                continue  # deleted since, or the id was taken again
            # After damage, record i may not be the one the entry meant: unacked.
            top = seg.count if seg.damaged_at is None else seg.damaged_at
            for i in range(top):
                if bits & (1 << i):
                    seg.mark(i)
