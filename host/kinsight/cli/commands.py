"""What each ``kinsight`` command does: one ``do_<name>`` a command, thin over the layers.

Every failure the user can act on is a CommandError (or a KinsightError);
``main`` prints it as ``kinsight: message`` and exits with status 1.

Only ``import``, ``keys add`` and ``listen`` make a database that is not there yet;
every other command refuses a ``--db`` that does not exist (a mistyped path must not
quietly start an empty home). A command that makes a file and is then refused removes
it again: a refusal leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from ..ingest import AfterBatch, IngestLimits, Ingestor
from ..ingest.serial_port import SerialListener
from ..ingest.udp import UdpListener, parse_hostport
from ..learning import Detector
from ..store import Store
from ..wire import CaptureWriter, read_capture
from .serve import do_serve as do_serve  # the table of commands finds it here
from .users import do_report as do_report
from .users import do_users as do_users

if TYPE_CHECKING:
    from ..alerts import AlertRecord, DeliveryWorker, Policy
    from ..service import RealtimeWatcher


class CommandError(Exception):
    """A command cannot do what it was asked; the message says why and what to do."""


def _store(args: argparse.Namespace, *, create: bool = False) -> Store:
    return Store(args.db, create=create)


class _NewFiles:
    """The files among ``db`` and ``others`` that do not exist yet (a new database counts
    with its -wal, -shm and -journal files): ``remove`` takes away those this command
    made."""

    def __init__(self, db: str, *others: str | None):
        names = [db, *(p for p in others if p)]
        if not os.path.lexists(db):  # an existing database's -wal may be another's, live
            names += [f"{db}{end}" for end in ("-wal", "-shm", "-journal")]
        self.new = [p for p in names if not os.path.lexists(p)]
        self.kept = False

    def keep(self) -> None:
        """From here on the files hold what the command did: never remove them."""
        self.kept = True

    def remove(self) -> None:
        if self.kept:
            return
        for p in self.new:
            try:
                os.remove(p)
            except FileNotFoundError:
                pass


@contextmanager
def _undo_on_refusal(db: str, *others: str | None) -> Iterator[_NewFiles]:
    """Remove the files made inside the block if it raises (unless it called ``keep``)."""
    made = _NewFiles(db, *others)
    try:
        yield made
    except BaseException:
        made.remove()
        raise


def _limits(args: argparse.Namespace) -> IngestLimits:
    return IngestLimits(max_frame_bytes=args.mtu)


def _print_stats(stats: dict[str, object]) -> None:
    for key, value in stats.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        print(f"  {key}: {value}")


def do_ingest(args: argparse.Namespace) -> int:
    # Read and check every file first: a bad file must leave the store untouched.
    captures = [(path, read_capture(path)) for path in args.capture]
    with _store(args) as store:
        ingestor = Ingestor(store, limits=_limits(args), make_acks=False)
        for path, records in captures:
            ingestor.ingest_batch(records)
            print(f"{path}: {len(records)} frames")
        ingestor.expire(max((t for _, recs in captures for _, t in recs), default=0)
                        + ingestor.limits.reassembly.timeout_ms + 1)
        _print_stats(ingestor.stats.as_dict())
    return 0


def do_listen(args: argparse.Namespace) -> int:
    if (args.udp is None) == (args.serial is None):
        raise CommandError("listen needs exactly one of --udp HOST:PORT or --serial PORT")
    if args.udp is not None:
        parse_hostport(args.udp)  # a mistyped address is refused before anything is made
    with _undo_on_refusal(args.db, args.log, args.capture) as made:
        policy = _listen_policy(args)
        with _store(args, create=True) as store:
            return _listen(args, store, policy, made)


def _listen(args: argparse.Namespace, store: Store, policy: Policy | None,
            made: _NewFiles) -> int:
    ingestor = Ingestor(store, limits=_limits(args))
    watcher, worker = _watcher(args, store, policy) if policy is not None else (None, None)
    after_batch = None if watcher is None else _after_batch(ingestor, watcher)
    capture = None
    try:
        capture = CaptureWriter.open(args.capture) if args.capture else None
        listener, where = _listener(args, ingestor, capture, after_batch)
    except BaseException:
        if capture is not None:
            capture.close()
        if worker is not None:
            worker.close()
        raise
    made.keep()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"listening on {where}", flush=True)
    if watcher is not None:
        print(f"real-time alerts on: every frame with events, and all placed residents "
              f"every {watcher.tick_ms / 1000:g} s", flush=True)
    try:
        stats = listener.serve(stop=stop, idle_exit_s=args.idle_exit)
    finally:
        listener.close()
        if capture is not None:
            capture.close()
        if worker is not None:
            worker.close()
    if isinstance(listener, UdpListener):
        print(f"stopped after {listener.datagrams} datagrams")
    else:
        print(f"stopped after {listener.frames} frames")
    _print_stats(stats.as_dict())
    if watcher is not None and worker is not None:
        print(f"  alerts raised: {watcher.alerts_raised}; messages sent: {worker.sent}")
    return 0


def _after_batch(ingestor: Ingestor, watcher: RealtimeWatcher) -> AfterBatch:
    def after_batch(nodes: frozenset[int]) -> None:
        while ingestor.full_spells:  # the store had been full: equipment, once it is not
            watcher.storage_was_full(*ingestor.full_spells.pop(0))
        watcher(nodes)
    return after_batch


def _listen_policy(args: argparse.Namespace) -> Policy | None:
    """The alert policy when --alerts is on (checked before anything is opened)."""
    from ..alerts import Policy

    if not args.alerts:
        if args.policy or args.log or args.tick is not None:
            raise CommandError("--policy, --log and --tick go with --alerts")
        return None
    if args.log:
        try:
            Path(args.log).open("a", encoding="utf-8").close()
        except OSError as exc:
            raise CommandError(f"cannot write the alert log {args.log}: "
                               f"{exc.strerror or exc}") from None
    return Policy.load(args.policy) if args.policy else Policy()


def _watcher(args: argparse.Namespace, store: Store, policy: Policy
             ) -> tuple[RealtimeWatcher, DeliveryWorker]:
    from ..alerts import AlertRouter, DeliveryWorker
    from ..service import RealtimeWatcher
    from ..service.watcher import TICK_S

    def clock() -> int:
        return int(time.time() * 1000)

    def say(a: AlertRecord) -> None:
        print(f"alert {a.id} {a.resident} {a.condition} ({a.severity}): {a.text}", flush=True)

    router = AlertRouter(policy, store, clock=clock, log_path=args.log)
    # Sending has a thread of its own: a server that is down must not hold up the acks.
    worker = DeliveryWorker(args.db, policy, clock=clock, log_path=args.log,
                            interval_s=args.tick or TICK_S).start()
    return (RealtimeWatcher(store, router, clock, tick_s=args.tick or TICK_S, on_alert=say,
                            deliver=worker.wake), worker)


def _listener(args: argparse.Namespace, ingestor: Ingestor, capture: CaptureWriter | None,
              after_batch: AfterBatch | None = None
              ) -> tuple[UdpListener | SerialListener, str]:
    if args.serial is not None:
        if args.baud <= 0:
            raise CommandError(f"--baud {args.baud} is not a baud rate")
        return (SerialListener(ingestor, args.serial, args.baud, capture=capture,
                               after_batch=after_batch),
                f"serial {args.serial} at {args.baud} baud")
    host, port = parse_hostport(args.udp)
    udp = UdpListener(ingestor, host, port, capture=capture, after_batch=after_batch)
    return udp, f"udp {udp.address[0]}:{udp.address[1]}"


def do_keys(args: argparse.Namespace) -> int:
    if args.action in ("remove", "rotate"):
        return _change_key(args)
    if args.action == "list":
        if args.node is not None or args.key is not None:
            raise CommandError("keys list takes no NODE or KEY")
        with _store(args) as store:
            for node_id in sorted(store.node_keys()):
                print(node_id)
        return 0
    if args.node is None or args.key is None:
        raise CommandError("keys add needs NODE and KEY (64 hex digits)")
    try:
        key = bytes.fromhex(args.key)
    except ValueError:
        shown = args.key if len(args.key) <= 80 else args.key[:77] + "..."
        raise CommandError(f"key {shown!r} is not hex digits") from None
    # The store checks the key again (length, weak keys) before anything is written.
    with _undo_on_refusal(args.db), _store(args, create=True) as store:
        try:
            store.set_node_key(args.node, key, now_ms=int(time.time() * 1000))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    print(f"node {args.node}: key stored")
    return 0


def _change_key(args: argparse.Namespace) -> int:
    """``keys remove NODE``: the node's frames are refused from now on; ``keys rotate
    NODE``: a new random key replaces the old one and is printed, for provisioning the
    node with it. Its stored records stay, and a running listener takes the change
    from its next batch."""
    if args.node is None or args.key is not None:
        raise CommandError(f"keys {args.action} needs NODE only")
    with _store(args, create=False) as store:
        if args.node not in store.node_keys():
            raise CommandError(f"node {args.node} has no key in {args.db}")
        if args.action == "remove":
            store.remove_node_key(args.node)
            print(f"node {args.node}: key removed; its frames are refused from now on")
        else:
            key = secrets.token_bytes(32)
            store.set_node_key(args.node, key, now_ms=int(time.time() * 1000))
            print(f"node {args.node}: new key {key.hex()} (provision the node with it; "
                  "frames under the old key are refused from now on)")
    return 0


def do_nodes(args: argparse.Namespace) -> int:
    with _store(args) as store:
        nodes = store.node_summaries()
        rejects = store.reject_counts()
    if args.json:
        print(json.dumps({"nodes": [n.__dict__ for n in nodes], "rejected": rejects}, indent=2))
        return 0
    print(f"{'node':>10} {'frames':>7} {'events':>7} {'summaries':>9} {'statuses':>8} "
          f"{'lost':>5} {'rejected':>8}")
    for n in nodes:
        print(f"{n.node_id:>10} {n.frames:>7} {n.events:>7} {n.summaries:>9} {n.statuses:>8} "
              f"{n.lost:>5} {n.rejected:>8}")
    print("rejected frames by reason: " +
          (", ".join(f"{k} {v}" for k, v in rejects.items()) or "none"))
    return 0


def do_bench(args: argparse.Namespace) -> int:
    from .. import bench

    return bench.run(args.what, frames=args.frames, db=args.db, lines=args.lines)


def do_demo(args: argparse.Namespace) -> int:
    from .. import demo

    return demo.run(out_dir=Path(args.out) if args.out else None, loss=args.loss)


def do_import(args: argparse.Namespace) -> int:
    from ..residents import HistoryError, import_files

    try:
        # A new database is made only to be filled: a refused import takes it away again.
        with _undo_on_refusal(args.db), _store(args, create=True) as store:
            results = import_files(store, args.file, args.tz)
    except HistoryError as exc:
        for line in exc.lines():
            print(f"kinsight: {line}", file=sys.stderr)
        return 1
    for r in results:
        print(f"{r.path}: {r.events} events, {r.inserted} new, {r.duplicates} already stored, "
              f"residents {', '.join(r.residents)}")
    return 0


def _detector_factory(name: str) -> Callable[[], Detector]:
    from ..learning import BaselineDetector, EngineDetector

    return BaselineDetector if name == "baseline" else EngineDetector


def do_eval(args: argparse.Namespace) -> int:
    make = _detector_factory(args.detector)
    if args.db is not None:
        from ..evaluation import evaluate_db

        report = evaluate_db(args.db, args.json, detector=args.detector)
        for line in report.condition_lines():
            print(line)
        print(report.last_line())
        return 0
    from ..evaluation import SUITES, run_suite

    if args.suite not in SUITES:
        raise CommandError(f"no suite {args.suite!r} (one of {', '.join(SUITES)})")
    report = run_suite(args.suite, make())
    for line in report.condition_lines():
        print(line)
    if args.json:
        report.write_json(args.json)
    print(report.last_line())
    return 0


def do_place(args: argparse.Namespace) -> int:
    from ..residents import place

    with _store(args) as store:
        try:
            place(store, args.node, args.resident, args.room, args.tz)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    print(f"node {args.node}: placed with {args.resident}"
          + (f" in {args.room}" if args.room else ""))
    return 0


def _time_ms(text: str | None) -> int:
    if text is None:
        return int(time.time() * 1000)
    from datetime import datetime

    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--now {text!r} is not an ISO 8601 date-time") from None
    if t.tzinfo is None:
        raise CommandError(f"--now {text!r} needs an offset, e.g. +00:00")
    return int(t.timestamp() * 1000)


def do_analyse(args: argparse.Namespace) -> int:
    from ..alerts import AlertRouter, Policy
    from ..service import analyse

    policy = Policy.load(args.policy) if args.policy else Policy()
    now = _time_ms(args.now)
    with _store(args) as store:
        router = AlertRouter(policy, store, clock=lambda: now, log_path=args.log)
        summary = analyse(store, router, now, detector=args.detector)
    for resident, r in summary.residents.items():
        print(f"{resident}: {r['activities']} activities, {r['days_analysed']} new days, "
              f"{r['findings']} findings, {r['raised']} alerts raised ({r['model']})")
    for a in summary.raised:
        print(f"  alert {a.id} {a.resident} {a.condition} ({a.severity}): {a.text}")
    sent = sum(d["state"] == "sent" for d in summary.deliveries)
    print(f"alerts raised: {len(summary.raised)}; deliveries: {sent} sent, "
          f"{len(summary.deliveries) - sent} failed (retried next run)")
    return 0


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def do_replay(args: argparse.Namespace) -> int:
    from ..alerts import Policy
    from ..service import replay

    first, last = _day(args.from_day, "--from"), _day(args.to_day, "--to")
    if first is not None and last is not None and last < first:
        raise CommandError(f"--to {last} is before --from {first}")
    policy = Policy.load(args.policy) if args.policy else Policy()
    with _store(args) as store:
        alerts = replay(store, policy, first, last,
                        only=[args.resident] if args.resident else None)
    if args.json:
        print(json.dumps([a.as_dict() for a in alerts], indent=2))
        return 0
    for a in alerts:
        print(f"{a.day} {a.resident} {a.condition} ({a.severity}): {a.text}")
    urgent = sum(a.severity == "urgent" for a in alerts)
    print(f"would have raised {len(alerts)} alerts ({urgent} urgent); stored as 'replayed', "
          "never sent")
    return 0


def do_alerts(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from ..alerts import list_alerts

    with _store(args) as store:
        alerts = list_alerts(store, args.resident)
    if args.json:
        print(json.dumps([a.as_dict() for a in alerts], indent=2))
        return 0
    for a in alerts:
        when = datetime.fromtimestamp(a.created_ms / 1000, tz=timezone.utc)
        print(f"{a.id:>4} {when:%Y-%m-%d %H:%M}Z {a.resident} {a.condition} {a.severity} "
              f"[{a.state}] day {a.day}: {a.text}")
    if not alerts:
        print("no alerts")
    return 0


def do_ack(args: argparse.Namespace) -> int:
    from ..alerts import AlertRouter, Policy

    with _store(args) as store:
        rec = AlertRouter(Policy(), store).acknowledge(args.alert_id, args.by, args.outcome,
                                                        args.note)
    print(f"alert {rec.id} acknowledged by {rec.acknowledged_by}: {rec.outcome}")
    return 0


def do_ota(args: argparse.Namespace) -> int:
    from .ota import do_ota as stage_or_list  # its mpy-cross and bundle code, when asked

    return stage_or_list(args)
