"""Whether a frame's stamp could be true, and warnings that a flood cannot multiply.

A node's clock is set from the host's acks; until its first ack (after a reset
with no clock) it stamps 1970 or 2000, and a broken clock can say anything. Such
a frame is quarantined, not filed: it is archived whole (so it is acked, and the
ack gives the node the host's time) with the reason, and its records are left
out. ``StampLimits`` says what is plausible.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..wire import Header

#: Why a frame was kept whole but its records not filed.
IMPLAUSIBLE_TIME = "implausible_time"


@dataclass(frozen=True)
class StampLimits:
    #: A frame's stamp is implausible before this (2024-01-01: no node of this protocol
    #: ran earlier; an unset node clock says 1970 or 2000) ...
    earliest_time_s: int = 1_704_067_200
    #: ... or more than this before its key was added (clocks of the provisioning
    #: machine and the host may differ a little) ...
    provisioned_margin_s: int = 3_600
    #: ... or more than this ahead of when the host received it.
    max_ahead_s: int = 86_400

    def __post_init__(self) -> None:
        if min(self.provisioned_margin_s, self.max_ahead_s) < 0:
            raise ValueError("time margins must not be negative")


def _utc(time_s: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time_s))


class StampCheck:
    """Judges stamps against StampLimits and when each node's key was added."""

    def __init__(self, limits: StampLimits, added_ms: Callable[[int], int | None]):
        self.limits = limits
        self._added_ms = added_ms
        self._added: dict[int, tuple[bytes, int | None]] = {}  # node: (key, added_ms)

    def check(self, h: Header, key: bytes, received_ms: int) -> str | None:
        """Why the frame's stamp cannot be true, or None. The ack still goes (the frame is
        kept whole) and sets the node's clock, so its next frames are stamped right."""
        lim = self.limits
        floor_s, since = lim.earliest_time_s, "2024"
        cached = self._added.get(h.node_id)
        if cached is None or cached[0] != key:  # a new key is a new provisioning
            cached = self._added[h.node_id] = (key, self._added_ms(h.node_id))
        added_ms = cached[1]
        # A frame received before its key was added here (a capture ingested into a
        # store built later) cannot be judged by the key's date.
        if added_ms is not None and received_ms >= added_ms:
            key_floor_s = added_ms // 1000 - lim.provisioned_margin_s
            if key_floor_s > floor_s:
                floor_s, since = key_floor_s, "its key was added"
        if h.time_s < floor_s:
            return (f"node {h.node_id} boot {h.boot} seq {h.seq} is stamped {_utc(h.time_s)}, "
                    f"before {since} ({_utc(floor_s)})")
        if h.time_s > received_ms // 1000 + lim.max_ahead_s:
            return (f"node {h.node_id} boot {h.boot} seq {h.seq} is stamped {_utc(h.time_s)}, "
                    f"over {lim.max_ahead_s} s ahead of the host ({_utc(received_ms // 1000)})")
        return None


class QuietLog:
    """At most one warning per topic every interval_s (the rest at debug level, and
    counted in the next warning): a flood of garbage must not fill the disk with logs."""

    def __init__(self, log: logging.Logger, interval_s: float = 10.0):
        self.log = log
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def warn(self, topic: str, msg: str, *args: object, level: int = logging.WARNING) -> None:
        now = time.monotonic()
        last = self._last.get(topic)
        if last is not None and now - last < self.interval_s:
            self._held[topic] += 1
            self.log.debug(msg, *args)
            return
        self._last[topic] = now
        held = self._held.pop(topic, 0)
        if held:
            self.log.log(level, msg + " (and %d more like it not logged)", *args, held)
        else:
            self.log.log(level, msg, *args)
