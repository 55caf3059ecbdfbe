"""``kinsight serve``: one process that receives, stores, acks, watches, analyses, sends.

A ``Service`` runs, each on a thread of its own with its own connection to the
store:

* one receiver per transport (UDP, serial, MQTT): frames stored in one transaction a
  batch and acked after the commit, exactly as ``kinsight listen`` does (over MQTT the
  broker's message is acknowledged after the commit too); each batch's nodes
  are handed to the scheduler, never waited for, so checks never hold up the acks;
* the ``Scheduler``: the real-time rules on each batch's residents and, on its tick,
  on those whose deadline has come; each resident's morning analysis at their own
  local time, missed mornings caught up;
* the ``DeliveryWorker``: digests at their hour, quiet-hours holds, escalations and
  retries, woken after each alert and once a minute.

``health()`` says whether all is well (the store writable, every transport and thread
up, when a frame last came, what is overdue for sending); ``metrics`` counts. Stopping
(``stop``) lets each thread finish what it has in hand: a batch being stored is stored
and acked, and the scheduler's step ends before its connection closes.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..alerts import AlertRecord, AlertRouter, DeliveryWorker, Policy
from ..alerts.transports import TransportFactory
from ..ingest import IngestLimits, Ingestor, IngestStats
from ..ingest.mqtt import MqttListener, MqttSettings
from ..ingest.serial_port import SerialListener
from ..ingest.udp import UdpListener
from ..residents import residents
from ..store import Store
from .homeassistant import HomeAssistant
from .leases import Leases
from .metrics import ServiceMetrics
from .mornings import DEFAULT_MORNING_MIN
from .scheduler import Scheduler
from .watcher import TICK_S

LEASE_REFRESH_S = 5.0
HOME_ASSISTANT_S = 10.0  # how often the entities' states are brought up to date

log = logging.getLogger(__name__)

# No frame for this long from a store that had them: the nodes or the network are down.
STALE_AFTER_S = 4 * 3600.0


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class ServiceSettings:
    """What a service runs (validated at the edge: ``service.config``)."""

    db: str
    udp: tuple[str, int] | None = None
    serial: str | None = None
    baudrate: int = 115200
    mqtt: MqttSettings | None = None
    worker: str | None = None  # one of several sharing the store: look after a share
    home_assistant: bool = False  # with mqtt: residents' status as Home Assistant entities
    morning_min: int = DEFAULT_MORNING_MIN
    tick_s: float = TICK_S
    alert_log: str | None = None
    stale_after_s: float = STALE_AFTER_S


class _Receiver:
    """One transport's thread: its listener, ingestor and store connection."""

    def __init__(self, kind: str, store: Store, ingestor: Ingestor,
                 listener: UdpListener | SerialListener | MqttListener, where: str):
        self.kind = kind
        self.store = store
        self.ingestor = ingestor
        self.listener = listener
        self.where = where
        self.thread: threading.Thread | None = None
        self.failed: str | None = None

    @property
    def acks_sent(self) -> int:
        return self.listener.acks_sent


class Service:
    """See the module's docstring. ``clock`` is the service's time in ms (a simulated
    clock for tests and demonstrations); ``transports`` makes the delivery channels."""

    def __init__(self, settings: ServiceSettings, policy: Policy, *,
                 clock: Callable[[], int] = _wall_ms,
                 transports: TransportFactory | None = None,
                 limits: IngestLimits | None = None,
                 on_alert: Callable[[AlertRecord], None] | None = None):
        self.settings = settings
        self.policy = policy
        self.clock = clock
        self.transports = transports
        self.limits = limits
        self.on_alert = on_alert
        self.metrics = ServiceMetrics(self._ingest_stats,
                                      lambda: sum(r.acks_sent for r in self.receivers))
        self.receivers: list[_Receiver] = []
        self.started_ms: int | None = None
        self.last_frame_ms: int | None = None
        self._stop = threading.Event()
        self._nodes: queue.SimpleQueue[frozenset[int]] = queue.SimpleQueue()
        self._worker: DeliveryWorker | None = None
        self._scheduler_thread: threading.Thread | None = None
        self._scheduler_failed: str | None = None
        self._ready = threading.Event()
        self._accepted_seen = 0
        self.step_error: str | None = None  # the last scheduler step's failure, if it failed
        self.leases: Leases | None = None  # with ``worker``: the residents it looks after
        self.home_assistant: HomeAssistant | None = None

    # --- starting and stopping ------------------------------------------------------------

    def start(self) -> list[str]:
        """Open every transport and start the threads; the endpoints bound, one line
        each (``udp 127.0.0.1:PORT``). A transport that cannot open raises, with
        nothing left running."""
        Store(self.settings.db).close()  # made (and migrated) once, before the threads
        try:
            if self.settings.udp is not None:
                self.receivers.append(self._udp(*self.settings.udp))
            if self.settings.serial is not None:
                self.receivers.append(self._serial(self.settings.serial))
            if self.settings.mqtt is not None:
                self.receivers.append(self._mqtt(self.settings.mqtt))
        except BaseException:
            for r in self.receivers:
                r.listener.close()
                r.store.close()
            self.receivers.clear()
            raise
        self.started_ms = self.clock()
        self._worker = DeliveryWorker(self.settings.db, self.policy, clock=self.clock,
                                      log_path=self.settings.alert_log,
                                      transports=self.transports,
                                      on_done=self._delivered).start()
        self._scheduler_thread = threading.Thread(target=self._schedule, daemon=True,
                                                  name="kinsight-scheduler")
        self._scheduler_thread.start()
        for r in self.receivers:
            r.thread = threading.Thread(target=self._receive, args=(r,), daemon=True,
                                        name=f"kinsight-{r.kind}")
            r.thread.start()
        self._ready.wait(10)
        return [f"{r.kind} {r.where}" for r in self.receivers]

    @property
    def _shared_ingest(self) -> bool:
        """Whether this service's ingestors share the store with other writers: several
        transports here, or a broker's stream shared with other workers."""
        s = self.settings
        return s.mqtt is not None or (s.udp is not None and s.serial is not None)

    def _udp(self, host: str, port: int) -> _Receiver:
        store = Store(self.settings.db)
        ingestor = Ingestor(store, limits=self.limits, clock_ms=self.clock,
                            shared=self._shared_ingest)
        try:
            listener = UdpListener(ingestor, host, port, after_batch=self._announce)
        except BaseException:
            store.close()
            raise
        host_bound, port_bound = listener.address
        return _Receiver("udp", store, ingestor, listener, f"{host_bound}:{port_bound}")

    def _serial(self, device: str) -> _Receiver:
        store = Store(self.settings.db)
        ingestor = Ingestor(store, limits=self.limits, clock_ms=self.clock,
                            shared=self._shared_ingest)
        try:
            listener = SerialListener(ingestor, device, self.settings.baudrate,
                                      after_batch=self._announce)
        except BaseException:
            store.close()
            raise
        return _Receiver("serial", store, ingestor, listener, device)

    def _mqtt(self, settings: MqttSettings) -> _Receiver:
        store = Store(self.settings.db)
        ingestor = Ingestor(store, limits=self.limits, clock_ms=self.clock,
                            shared=self._shared_ingest)
        try:
            listener = MqttListener(ingestor, settings, after_batch=self._announce)
        except BaseException:
            store.close()
            raise
        return _Receiver("mqtt", store, ingestor, listener, settings.where)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every thread after what it has in hand, waiting ``timeout_s`` at most."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for r in self.receivers:
            if r.thread is not None:
                r.thread.join(max(0.1, deadline - time.monotonic()))
            r.listener.close()
            r.store.close()
        if self._scheduler_thread is not None:
            self._scheduler_thread.join(max(0.1, deadline - time.monotonic()))
        if self._worker is not None:
            self._worker.close(max(0.1, deadline - time.monotonic()))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the threads ----------------------------------------------------------------------

    def _announce(self, nodes: frozenset[int]) -> None:
        if nodes:
            self._nodes.put(nodes)

    def _receive(self, r: _Receiver) -> None:
        try:
            r.listener.serve(stop=self._stop)
        except Exception as exc:  # the service goes on; health says this transport is down
            r.failed = f"{type(exc).__name__}: {exc}"
            log.exception("%s transport stopped", r.kind)

    def _schedule(self) -> None:
        try:
            with Store(self.settings.db) as store:
                router = AlertRouter(self.policy, store, self.transports, clock=self.clock,
                                     log_path=self.settings.alert_log)
                leases = None
                if self.settings.worker is not None:
                    leases = self.leases = Leases(store, self.settings.worker)
                    leases.refresh(residents(store), self.clock())
                scheduler = Scheduler(store, router, self.clock, tick_s=self.settings.tick_s,
                                      morning_min=self.settings.morning_min,
                                      on_alert=self._alerted,
                                      on_analysed=self._analysed,
                                      owns=None if leases is None else lambda: leases.mine)
                seen = _last_event_rowid(store)
                ha = None
                if self.settings.home_assistant and self.settings.mqtt is not None:
                    ha = self.home_assistant = HomeAssistant(self.settings.mqtt, self.policy)
                ha_at = time.monotonic()
                refresh_at = time.monotonic() + LEASE_REFRESH_S
                self._ready.set()
                while not self._stop.is_set():
                    nodes = self._wait_for_nodes(0.2)
                    if leases is not None:
                        # Another worker may have stored our residents' events.
                        more, seen = _event_nodes_since(store, seen)
                        nodes |= more
                        if time.monotonic() >= refresh_at:
                            refresh_at = time.monotonic() + LEASE_REFRESH_S
                            leases.refresh(residents(store), self.clock())
                    checks = scheduler.watcher.checks
                    try:
                        scheduler.step(nodes)
                    except Exception as exc:  # a locked or full store: the next step retries
                        self.step_error = f"{type(exc).__name__}: {exc}"
                        log.exception("a scheduler step failed; the next one tries again")
                        for n in nodes:  # their residents are checked at the next step
                            self._nodes.put(frozenset({n}))
                        self._stop.wait(1.0)
                        continue
                    self.step_error = None
                    self.metrics.checks.inc(scheduler.watcher.checks - checks)
                    if ha is not None and time.monotonic() >= ha_at:
                        ha_at = time.monotonic() + HOME_ASSISTANT_S
                        try:
                            ha.publish(store)
                        except Exception:  # the household's display must not stop the service
                            log.exception("publishing to Home Assistant failed")
                    self._note_frames()
        except Exception as exc:
            self._scheduler_failed = f"{type(exc).__name__}: {exc}"
            log.exception("the scheduler stopped")
        finally:
            self._ready.set()
            if self.home_assistant is not None:
                self.home_assistant.close()
            if self.leases is not None:
                try:  # a clean stop hands its residents over at once
                    with Store(self.settings.db) as store:
                        Leases(store, self.leases.owner).release()
                except Exception:
                    log.exception("could not hand the leases back (they run out by themselves)")

    def _wait_for_nodes(self, wait_s: float) -> frozenset[int]:
        try:
            nodes = set(self._nodes.get(timeout=wait_s))
        except queue.Empty:
            return frozenset()
        while True:  # everything waiting, in one step
            try:
                nodes |= self._nodes.get_nowait()
            except queue.Empty:
                return frozenset(nodes)

    def _note_frames(self) -> None:
        accepted = sum(s.accepted for s in self._ingest_stats())
        if accepted != self._accepted_seen:
            self._accepted_seen = accepted
            self.last_frame_ms = self.clock()

    def _alerted(self, rec: AlertRecord) -> None:
        self.metrics.alerts.labels(rec.condition, rec.severity).inc()
        if self._worker is not None:
            self._worker.wake()
        if self.on_alert is not None:
            self.on_alert(rec)

    def _analysed(self, resident: str, seconds: float) -> None:
        del resident
        self.metrics.analysis.observe(seconds)

    def _delivered(self, done: list[dict[str, Any]]) -> None:
        for d in done:
            self.metrics.deliveries.labels(str(d.get("state", "unknown"))).inc()

    def _ingest_stats(self) -> list[IngestStats]:
        return [r.ingestor.stats for r in self.receivers]

    # --- health ---------------------------------------------------------------------------

    def health(self, store: Store) -> dict[str, Any]:
        """The service's health, read through ``store`` (a connection of the caller's
        thread): ``status`` "ok" or "degraded", and the ``reasons``."""
        now = self.clock()
        reasons: list[str] = []
        writable = _writable(store)
        if not writable:
            reasons.append("the store is not writable")
        transports = {}
        for r in self.receivers:
            up = r.thread is not None and r.thread.is_alive() and r.failed is None
            why = r.failed or "stopped"
            if up and isinstance(r.listener, MqttListener) and not r.listener.connected:
                up, why = False, "the broker is not connected; reconnecting"
            transports[f"{r.kind} {r.where}"] = "up" if up else f"down ({why})"
            if not up:
                reasons.append(f"{r.kind} transport {r.where} is down")
        threads = {"scheduler": self._scheduler_thread is not None
                   and self._scheduler_thread.is_alive() and self._scheduler_failed is None,
                   "delivery": self._worker is not None and self._worker.alive}
        for name, alive in threads.items():
            if not alive:
                reasons.append(f"the {name} thread is not running"
                               + (f" ({self._scheduler_failed})" if name == "scheduler"
                                  and self._scheduler_failed else ""))
        if self.step_error is not None:
            reasons.append(f"the scheduler's last step failed ({self.step_error})")
        age_s = None if self.last_frame_ms is None else (now - self.last_frame_ms) / 1000
        if age_s is not None and age_s > self.settings.stale_after_s:
            reasons.append(f"no frame for {age_s / 3600:.1f} h")
        backlog = _backlog(store)
        if backlog:
            reasons.append(f"{backlog} messages could not be sent and wait for a retry")
        self.metrics.last_frame_age.set(-1 if age_s is None else age_s)
        self.metrics.backlog.set(backlog)
        return {"status": "degraded" if reasons else "ok", "reasons": reasons,
                "store_writable": writable, "transports": transports,
                "threads": {k: "up" if v else "down" for k, v in threads.items()},
                "last_frame_age_s": None if age_s is None else round(age_s, 1),
                "delivery_backlog": backlog,
                **({} if self.leases is None else {"worker": self.leases.owner,
                                                   "residents_owned": len(self.leases.mine)}),
                "uptime_s": round((now - (self.started_ms or now)) / 1000, 1)}


def _last_event_rowid(store: Store) -> int:
    return int(store.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0])


def _event_nodes_since(store: Store, rowid: int) -> tuple[frozenset[int], int]:
    """The nodes whose events were stored after ``rowid`` (by anyone), and the new mark."""
    rows = store.conn.execute("SELECT node_id, MAX(rowid) FROM events WHERE rowid > ? "
                              "GROUP BY node_id", (rowid,)).fetchall()
    if not rows:
        return frozenset(), rowid
    return frozenset(int(n) for n, _ in rows), max(int(m) for _, m in rows)


def _writable(store: Store) -> bool:
    """Whether a write could start now: a write lock taken and let go at once."""
    try:
        store.conn.execute("BEGIN IMMEDIATE")
        store.conn.execute("ROLLBACK")
    except sqlite3.Error:
        return False
    return True


def _backlog(store: Store) -> int:
    """Messages that could not be sent and wait for a retry."""
    try:
        row = store.conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'failed'").fetchone()
    except sqlite3.OperationalError:  # no alert ever: no table yet
        return 0
    return int(row[0])
