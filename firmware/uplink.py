"""Getting queued frames to the host: the UDP link (mechanism) and the
Forwarder (policy: what to send, when to retry, how long to back off).

    uplink = UdpUplink(socket, "192.168.1.10", 5683)
    forwarder = Forwarder(outbox, uplink, signer, node_id)
    while True:                       # in the node's asyncio loop
        forwarder.step(time.ticks_ms())
        await asyncio.sleep_ms(100)

Every uplink (UdpUplink, uplink_serial.SerialUplink, gateway.EspNowUplink)
has send(frame), which raises OSError when the frame could not go out,
receive(), one frame or None without waiting long, and close().
"""

# At the top, not where it is used: importing a built-in that files may extend (os,
# socket) searches sys.path on the filesystem each time, garbage amid the boot.
import os
import time

from micropython import const

from framing import FrameError, parse_reply
from kinsight_wire import ACK_BOOT, ACK_CONTIGUOUS, ACK_SEQ, ACK_TIME_S, KIND_ACK

_RECV_MAX = const(512)
_EAGAIN = const(11)
_ETIMEDOUT = const(110)
_ACKS_PER_STEP = const(32)


class UdpUplink:
    """Datagrams to and from one host. The socket is made on first use and made
    again after any error, so a network that comes back is used again."""

    def __init__(self, socket_module, host, port, timeout_ms=0):
        self.socket_module = socket_module
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self._sock = None
        self._addr = None
        self.reconnects = 0

    def _socket(self):
        if self._sock is None:
            sm = self.socket_module
            if self._addr is None:
                self._addr = sm.getaddrinfo(self.host, self.port)[0][-1]
            sock = sm.socket(sm.AF_INET, sm.SOCK_DGRAM)
            sock.settimeout(self.timeout_ms / 1000)
            self._sock = sock
        return self._sock

    def _drop(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
            self._addr = None  # the host's address may have changed too
            self.reconnects += 1

    def send(self, frame):
        try:
            self._socket().sendto(frame, self._addr)
        except OSError:
            self._drop()
            raise

    def receive(self):
        try:
            return self._socket().recv(_RECV_MAX)
        except OSError as err:
            code = err.args[0] if err.args else None
            if code != _EAGAIN and code != _ETIMEDOUT:
                self._drop()  # e.g. ECONNREFUSED after an ICMP error: start afresh
            return None

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Backoff:
    """Delays that grow by ``factor`` from ``first_ms`` to ``max_ms``, each spread
    by +-``jitter`` (a share of it) so nodes that lost the host together do not
    come back together. A seed makes the sequence repeatable."""

    def __init__(self, first_ms=500, max_ms=60000, factor=2, jitter=0.25, seed=None):
        if first_ms < 1 or max_ms < first_ms or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("backoff needs 1 <= first_ms <= max_ms, factor >= 1, 0 <= jitter < 1")
        self.first_ms = first_ms
        self.max_ms = max_ms
        self.factor = factor
        self.jitter = jitter
        if seed is None:
            seed = int.from_bytes(os.urandom(4), "big")
        self._state = (seed & 0xFFFFFFFF) or 0x9E3779B9
        self._current = first_ms

    def _random(self):
        """xorshift32: uniform in [0, 1)."""
        x = self._state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._state = x
        return x / 4294967296

    def next_delay_ms(self):
        base = self._current
        self._current = min(int(base * self.factor), self.max_ms)
        spread = base * self.jitter * (2 * self._random() - 1)
        return max(1, int(base + spread))

    def reset(self):
        self._current = self.first_ms


class Forwarder:
    """Sends the outbox's oldest unacked frames, a window at a time, and applies
    the acks that come back. When a round gets no ack at all it waits a backoff
    delay before the next; any ack resets the backoff.

    The host's time (``last_host_time_s``) is taken only from an ack that newly
    stores a frame of this boot (``boot``; any boot when None): a replayed ack,
    a week old or from a minute ago, stores nothing new and cannot move the
    node's clock."""

    def __init__(self, outbox, uplink, signer, node_id, window=8, backoff=None, boot=None,
                 updater=None):
        self.outbox = outbox
        self.boot = boot
        self.uplink = uplink
        self.signer = signer
        self.node_id = node_id
        self.window = window
        self.backoff = backoff if backoff is not None else Backoff()
        self.sent = 0  # frames handed to the uplink
        self.acked = 0  # frames newly acked
        self.bad_acks = 0  # datagrams that were no valid ack for this node
        self.send_errors = 0
        self.rounds = 0
        self.last_host_time_s = None
        self.updater = updater  # update.Updater: offers in acks, and pieces, go to it
        self._next_ms = None

    def poll_acks(self):
        """Applies the acks waiting now; returns how many frames they newly acked."""
        newly = 0
        for _ in range(_ACKS_PER_STEP):
            raw = self.uplink.receive()
            if raw is None:
                break
            try:
                kind, body = parse_reply(self.signer, raw, self.node_id)
            except FrameError:
                self.bad_acks += 1
                continue
            updater = self.updater
            if kind != KIND_ACK:
                if updater is not None:
                    updater.piece(body)
                continue
            if updater is not None:
                updater.offer_from(body)
            boot, seq, host_time_s = body[ACK_BOOT], body[ACK_SEQ], body[ACK_TIME_S]
            contiguous = body.get(ACK_CONTIGUOUS)
            got = self.outbox.ack(boot, seq, contiguous)
            if got and (self.boot is None or boot == self.boot):
                self.last_host_time_s = host_time_s
            newly += got
        self.acked += newly
        return newly

    def step(self, now_ms):
        """One round: take acks, and send a window if it is time. Returns the
        frames sent. ``now_ms`` is a millisecond clock (time.ticks_ms())."""
        got = self.poll_acks()
        if got:
            self.backoff.reset()
            self._next_ms = now_ms
        if self.outbox.depth == 0:
            self.backoff.reset()
            self._next_ms = None
            return 0
        if self._next_ms is not None and time.ticks_diff(now_ms, self._next_ms) < 0:
            return 0
        frames = self.outbox.pending(self.window)
        sent = 0
        for frame in frames:
            try:
                self.uplink.send(frame)
            except OSError:
                self.send_errors += 1
                break
            sent += 1
        self.sent += sent
        self.rounds += 1
        if self.poll_acks():
            self.backoff.reset()
            self._next_ms = now_ms
        else:
            self._next_ms = time.ticks_add(now_ms, self.backoff.next_delay_ms())
        return sent
