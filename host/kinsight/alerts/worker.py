"""Sending alerts from a thread of its own, so that a slow server holds up nothing else.

A ``DeliveryWorker`` runs ``AlertRouter.deliver_due`` on its own thread with its own
connection to the database: a listener or the service wakes it after raising an
alert, and it also runs on its own when it starts (what a stopped service left unsent)
and every ``interval_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..store import Store
from .policy import Policy
from .router import AlertRouter
from .transports import TransportFactory

log = logging.getLogger(__name__)

INTERVAL_S = 60.0


def _wall_ms() -> int:
    return int(time.time() * 1000)


class DeliveryWorker:
    """Sends what is due (``AlertRouter.deliver_due``) from a thread of its own with
    its own connection to the database at ``db_path``: ``wake(now_ms)`` asks for a
    round, and a round also runs every ``interval_s``. A failed round is logged;
    what was not sent is retried by the next one."""

    def __init__(self, db_path: str | Path, policy: Policy, *,
                 clock: Callable[[], int] = _wall_ms, log_path: str | Path | None = None,
                 transports: TransportFactory | None = None, interval_s: float = INTERVAL_S,
                 on_done: Callable[[list[dict[str, Any]]], None] | None = None):
        self.db_path = str(db_path)
        self.policy = policy
        self.clock = clock
        self.log_path = log_path
        self.transports = transports
        self.interval_s = interval_s
        self.on_done = on_done  # told what each round tried
        self.rounds = 0
        self.sent = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kinsight-delivery",
                                        daemon=True)

    def start(self) -> DeliveryWorker:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self, now_ms: int | None = None) -> None:
        del now_ms  # the worker reads its own clock when it runs
        self._wake.set()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop after the round in progress (one last round sends what is due), waiting
        at most ``timeout_s``: a server that hangs must not hold up a shutdown, and what
        it did not take is still unsent in the store, for the next run."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("alert delivery still in progress at shutdown; what was not sent "
                        "goes out on the next run")

    def _run(self) -> None:
        with Store(self.db_path) as store:
            router = AlertRouter(self.policy, store, self.transports, clock=self.clock,
                                 log_path=self.log_path)
            first = True
            while True:
                # The first round at once: what a stopped service left unsent goes now.
                if not first:
                    self._wake.wait(self.interval_s)
                first = False
                self._wake.clear()
                try:
                    done = router.deliver_due(self.clock())
                except Exception:  # the next round retries what this one did not send
                    log.exception("delivering alerts failed")
                else:
                    self.rounds += 1
                    self.sent += sum(d.get("state") == "sent" for d in done)
                    if self.on_done is not None and done:
                        self.on_done(done)
                if self._stop.is_set():
                    return
