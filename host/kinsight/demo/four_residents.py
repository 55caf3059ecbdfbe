"""``kinsight demo``: four simulated residents, end to end, to a report for the care team.

Four residents (a well one, and the three case studies: Mrs S, Daphne and John)
live 60 simulated days (``kinsight.simulation``, fixed seeds, each change starting inside
the window). Their last days go through the real firmware: the raw sensor signals
of those days (chair pressure, tap pulses, toilet presence, and for the two
residents with a wearable its heart rate once a second) are fed to the
firmware's extractors under the MicroPython unix port with an ESP32-sized heap;
each resident's seat, tap, toilet and heart_rate nodes frame the events (and the
wearable's 15-minute summaries, whose resting rates become the days' heart rate)
with the firmware's FrameBuilder and send them over loopback UDP, through a link
that drops some datagrams, to the host's UDP listener, which checks, stores and
acks them; nodes send again what was not acked. A forged frame and a replayed one
are sent too. The earlier history (and the sensors without a node here: bed,
stairs) enters as ``kinsight import`` JSON Lines. Then each resident's days go
through the learning engine, and ``kinsight.reports`` writes an HTML page per resident and
an overview for the care team. The demo exits non-zero if any event or summary
went missing.
"""

from __future__ import annotations

import array
import json
import logging
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ConfigError
from ..ingest import Ingestor
from ..ingest.udp import UdpListener
from ..learning import Alert, personal_features
from ..reports import ResidentPage, Span, write_reports
from ..residents import Activity, all_activities, import_files, place
from ..simulation import micropython as mpy
from ..store import Store
from ..wire import CaptureWriter

log = logging.getLogger(__name__)

START = date(2024, 3, 4)
DAYS = 60
FIRMWARE_DAYS = 3  # the last days, raw signals through the firmware
TZ = "Europe/London"
ROLES = ("seat", "tap", "toilet", "heart_rate")  # heart_rate: for a wearable's wearer
_MAIN = {"seat": "sit", "tap": "draw", "toilet": "visit"}  # the episodes simulated
_ROOMS = {"seat": "living room", "tap": "kitchen", "toilet": "bathroom",
          "heart_rate": "living room"}  # where the wearable's node listens for it


@dataclass(frozen=True)
class Resident:
    rid: str  # the resident's id in the store
    name: str
    persona: str
    seed: int
    about: str
    variant: dict[str, Any] = field(default_factory=dict)

    @property
    def roles(self) -> tuple[str, ...]:
        """The resident's nodes: heart_rate only for a persona with a wearable."""
        from ..simulation import PERSONAS

        worn = PERSONAS[self.persona].routine.hr is not None
        return tuple(role for role in ROLES if worn or role != "heart_rate")

    def node_id(self, index: int, role: str) -> int:
        return 100 * (index + 1) + 1 + ROLES.index(role)


# Seeds fixed; each change starts after the engine's 14 learning days.
RESIDENTS = (
    Resident("healthy", "Well resident", "healthy", 1, "a well resident, no changes simulated"),
    Resident("mrs_s", "Mrs S", "mrs_s", 12,
             "74, home from hospital; simulated: drinks less, up at night, heart rate up "
             "(dehydration)", {"onset_day": 30}),
    Resident("daphne", "Daphne", "daphne", 13,
             "83, barely drinks, slow on the stairs; simulated: a urinary infection",
             {"onset_day": 26}),
    Resident("john", "John", "john", 14,
             "74, Parkinson's; simulated: mobility declining slowly before a fall",
             {"onset_day": 14, "lead_days": 32}),
)


def _say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201 - the demo talks to the person running it


class Progress:
    """A progress bar on stderr; plain lines when stderr is not a terminal."""

    def __init__(self, total: float) -> None:
        self.total = total
        self.done = 0.0
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.label = ""

    def step(self, label: str, amount: float = 0.0) -> None:
        self.done = min(self.total, self.done + amount)
        changed = label != self.label
        self.label = label
        share = self.done / self.total
        elapsed = time.monotonic() - self.started
        if self.tty:
            bar = "#" * int(30 * share) + "-" * (30 - int(30 * share))
            sys.stderr.write(f"\r[{bar}] {share:4.0%} {elapsed:5.1f} s  {label[:50]:<50}")
            sys.stderr.flush()
        elif changed:
            sys.stderr.write(f"[{share:4.0%}] {elapsed:5.1f} s  {label}\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


@dataclass
class _Lived:
    resident: Resident
    scenario: Any
    activities: list[Activity]
    firmware_truth: dict[str, int] = field(default_factory=dict)  # role -> episodes rendered


def run(out_dir: Path | None = None, loss: float = 0.1, seed: int = 7) -> int:
    if not 0 <= loss <= 0.5:
        raise ConfigError(f"--loss {loss} is outside 0..0.5")
    started = time.monotonic()
    out = Path(out_dir or "kinsight-demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    db = out / "kinsight.db"
    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), out / "demo.kcap"):
        stale.unlink(missing_ok=True)
    work = out / "work"
    work.mkdir(exist_ok=True)
    progress = Progress(100)
    try:
        code = _run(out, work, loss, seed, progress, started)
    finally:
        progress.close()
    return code


def _run(out: Path, work: Path, loss: float, seed: int, progress: Progress,
         started: float) -> int:
    from ..simulation import simulate

    progress.step("simulating 4 residents over 60 days", 2)
    lived = []
    for r in RESIDENTS:
        scenario, acts = simulate(r.persona, r.seed, DAYS, START, outages=False,
                                  resident=r.rid, **r.variant)
        lived.append(_Lived(r, scenario, acts))
    progress.step("compiling the firmware for MicroPython", 3)
    compiled = mpy.compile_modules(_fresh(work / "mpy"))
    keys = {r.node_id(i, role): secrets.token_bytes(32)
            for i, r in enumerate(RESIDENTS) for role in r.roles}
    with Store(out / "kinsight.db") as store:
        for node, key in keys.items():
            # Provisioned when the simulated deployment began: the days they replay
            # are stamped after that, as a real home's would be.
            store.set_node_key(node, key, now_ms=_midnight_ms(START))
        for i, r in enumerate(RESIDENTS):
            for role in r.roles:
                place(store, r.node_id(i, role), r.rid, _ROOMS[role], tz=TZ)
        ingestor = Ingestor(store)
        capture = CaptureWriter.open(out / "demo.kcap")
        listener = UdpListener(ingestor, "127.0.0.1", 0, capture=capture)
        stop = threading.Event()
        thread = threading.Thread(target=listener.serve, kwargs={"stop": stop, "tick_s": 0.05},
                                  daemon=True)
        thread.start()
        host, port = listener.address
        try:
            history, reports = _run_nodes(lived, work, compiled, host, port, keys, loss, seed,
                                          progress)
            progress.step("sending a forged frame and a replayed one", 2)
            _attack(out / "demo.kcap", host, port)
        finally:
            stop.set()
            thread.join(timeout=10)
            listener.close()
            capture.close()
        progress.step("importing the earlier history (JSON Lines)", 3)
        path = work / "history.jsonl"
        _write_jsonl(path, history)
        import_files(store, [path], tz=TZ)
        progress.done = 70
        alerts = analyse_days(store, progress)
        every = all_activities(store)
        pages = [_page(lv, personal_features(every.get(lv.resident.rid, []), tz=TZ)[0],
                       alerts[lv.resident.rid]) for lv in lived]
        progress.step("writing the reports", 2)
        overview = write_reports(out / "report", pages, today=START + timedelta(days=DAYS - 1))
        from ..alerts import Policy
        from ..web.report import write_report

        write_report(store, out / "care", Policy())  # what kinsight report writes
        progress.step("done", 100)
        progress.close()
        return _summarise(store, ingestor, lived, reports, alerts, overview, out,
                          time.monotonic() - started)


def analyse_days(store: Store, progress: Progress | None = None) -> dict[str, list[Alert]]:
    """The days as ``kinsight serve`` would have lived them: its scheduler on a simulated
    clock, an hour a tick (the real-time rules on whoever is due, each resident's
    morning analysis at 07:00), with the default policy (store and log, send nothing);
    every resident's alerts."""
    from ..alerts import AlertRouter, Policy, list_alerts
    from ..service import play

    router = AlertRouter(Policy(), store)
    for d in range(DAYS + 1):
        day = START + timedelta(days=d)
        play(store, router, _midnight_ms(day), _midnight_ms(day + timedelta(days=1)),
             morning_min=7 * 60)
        if progress is not None:
            progress.step(f"kinsight serve's day, on a simulated clock: {day:%d %b}",
                          25 / (DAYS + 1))
    out: dict[str, list[Alert]] = {r.rid: [] for r in RESIDENTS}
    for rec in list_alerts(store):
        out.setdefault(rec.resident, []).append(
            Alert(rec.resident, date.fromisoformat(rec.day), rec.condition, rec.severity,
                  rec.text))
    for alerts in out.values():
        alerts.sort(key=lambda a: a.day)
    return out


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if f.is_file():
            f.unlink()
    return folder


def _midnight_ms(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), ZoneInfo(TZ)).timestamp() * 1000)


def _run_nodes(lived: list[_Lived], work: Path, compiled: Path, host: str, port: int,
               keys: dict[int, bytes], loss: float, seed: int, progress: Progress
               ) -> tuple[list[Activity], dict[str, dict[str, Any]]]:
    """Render each resident's last days as raw signals and start their nodes; the
    activities that go in as imported history instead; each resident's node report."""
    from ..simulation import render

    history: list[Activity] = []
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for i, lv in enumerate(lived):
        r = lv.resident
        progress.step(f"raw signals for {r.name}'s last {FIRMWARE_DAYS} days", 5)
        through_nodes: set[Activity] = set()
        day_args: list[list[object]] = []
        for d in range(DAYS - FIRMWARE_DAYS, DAYS):
            day = START + timedelta(days=d)
            t0, t1 = _midnight_ms(day), _midnight_ms(day + timedelta(days=1))
            raw = render(lv.activities, t0, t1, f"demo/{r.rid}/{d}")
            prefix = work / f"{r.rid}-{day.isoformat()}"
            Path(f"{prefix}.seat").write_bytes(array.array("H", raw.seat).tobytes())
            Path(f"{prefix}.tap").write_bytes(array.array("I", raw.tap).tobytes())
            Path(f"{prefix}.toilet").write_bytes(bytes(int(p) for p in raw.toilet))
            if "heart_rate" in r.roles:
                Path(f"{prefix}.heart_rate").write_bytes(bytes(raw.heart_rate))
            day_args.append([t0 // 1000, str(prefix)])
            through_nodes.update(raw.events)
            for a in raw.events:
                lv.firmware_truth[a.sensor] = lv.firmware_truth.get(a.sensor, 0) + 1
        history.extend(a for a in lv.activities if a not in through_nodes)
        config = work / f"{r.rid}.json"
        config.write_text(json.dumps({
            "host": host, "port": port, "loss": loss, "seed": seed + i, "days": day_args,
            "nodes": [[role, r.node_id(i, role), keys[r.node_id(i, role)].hex(),
                       str(_fresh(work / f"flash-{r.node_id(i, role)}"))]
                      for role in r.roles]}))
        procs[r.rid] = mpy.popen("resident_node", str(config), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, compiled=compiled)
    reports: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 300
    base = progress.done
    while any(p.poll() is None for p in procs.values()):
        done = sum(p.poll() is not None for p in procs.values())
        target = base + 40 * done / len(procs)
        progress.step(f"nodes under MicroPython: {done}/{len(procs)} residents sent",
                      max(0.0, min(target + 8, progress.done + 0.3) - progress.done))
        time.sleep(0.25)
        if time.monotonic() > deadline:
            for p in procs.values():
                p.kill()
            raise ConfigError("the demo nodes did not finish within 5 minutes")
    for rid, p in procs.items():
        out_text, err_text = (s.decode(errors="replace") for s in p.communicate())
        lines = out_text.strip().splitlines()
        if p.returncode != 0 or not lines:
            raise ConfigError(f"the nodes of {rid} failed under MicroPython: "
                              f"{(err_text or out_text).strip()[-400:]}")
        reports[rid] = json.loads(lines[-1])
    return history, reports


def _write_jsonl(path: Path, acts: list[Activity]) -> None:
    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(
            timespec="milliseconds")

    with path.open("w") as f:
        for a in acts:
            row: dict[str, Any] = {"resident": a.resident, "sensor": a.sensor,
                                   "start": iso(a.start_ms), "end": iso(a.end_ms)}
            if a.value is not None:
                row["value"] = a.value
            if a.room is not None:
                row["room"] = a.room
            f.write(json.dumps(row) + "\n")


def _page(lv: _Lived, feats: dict[date, dict[str, float]], alerts: list[Alert]
          ) -> ResidentPage:
    r = lv.resident
    spans = [Span(c.onset, c.crisis, f"simulated change: {c.condition.replace('_', ' ')}")
             for c in lv.scenario.changes]
    last = START + timedelta(days=DAYS - FIRMWARE_DAYS)
    notes = [f"Days from {last:%d %b} on came from the sensor nodes' own firmware "
             "(under MicroPython); earlier days were imported as history."]
    return ResidentPage(r.rid, r.name, r.about, START, DAYS, feats, spans, alerts, notes)


def _attack(capture_path: Path, host: str, port: int) -> None:
    """Replay a frame the host already has, and send one with a byte changed."""
    from ..wire import read_capture

    records = read_capture(capture_path)
    original = records[len(records) // 2][0]
    forged = bytearray(original)
    forged[-1] ^= 0x01  # the tag: still well-formed, so it is the tag check that refuses it
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for raw in (original, bytes(forged)):
        sock.sendto(raw, (host, port))
    sock.close()
    time.sleep(0.5)


def _summarise(store: Store, ingestor: Ingestor, lived: list[_Lived],
               reports: dict[str, dict[str, Any]], alerts: dict[str, list[Alert]],
               overview: Path, out: Path, seconds: float) -> int:
    nodes = {n.node_id: n for n in store.node_summaries()}
    kinds = {(n, t): c for n, t, c in store.query(
        "SELECT node_id, type, COUNT(*) FROM events GROUP BY node_id, type")}
    rested = dict(store.query("SELECT node_id, COUNT(*) FROM summaries WHERE role = "
                              "'heart_rate' AND hr_rest_bpm IS NOT NULL GROUP BY node_id"))
    ok = True
    sent_total = stored_total = summaries_total = 0
    _say(f"Kinsight demo: {len(lived)} residents over {DAYS} days "
         f"({START:%d %b %Y} to {START + timedelta(days=DAYS - 1):%d %b %Y}), simulated")
    _say(f"  the last {FIRMWARE_DAYS} days: raw sensor signals through the firmware's "
         f"extraction under MicroPython ({mpy.ESP32_HEAP} of heap beyond its modules, as an "
         "ESP32 has), framed, sent over lossy UDP, stored; earlier days imported as history")
    for lv in lived:
        r = lv.resident
        rep = reports[r.rid]
        parts = []
        for n in rep["nodes"]:
            s = nodes.get(n["node"])
            stored = s.events if s else 0
            sent_total += n["events"]
            stored_total += stored
            truth = lv.firmware_truth.get(n["role"], 0)
            summaries = s.summaries if s else 0
            summaries_total += summaries
            if n["role"] == "heart_rate":
                parts.append(f"heart_rate: {truth} readings rendered, {n['summaries']} summaries "
                             f"sent, {summaries} stored, {rested.get(n['node'], 0)} with a "
                             "resting rate")
            else:
                main = kinds.get((n["node"], _MAIN[n["role"]]), 0)
                parts.append(f"{n['role']}: {main} of {truth} {_MAIN[n['role']]}s found, "
                             f"{n['events']} events sent, {stored} stored")
            if (stored != n["events"] or summaries != n["summaries"] or not n["complete"]
                    or (s and s.lost)):
                ok = False
        _say(f"  {r.name:<8} nodes: {'; '.join(parts)} ({rep['dropped_by_link']} of "
             f"{rep['datagrams']} datagrams dropped by the link)")
    stats = ingestor.stats.as_dict()
    rejected = ", ".join(f"{k} {v}" for k, v in stats["rejected"].items()) or "none"  # type: ignore[attr-defined]
    _say(f"  host: {stats['accepted']} frames stored, {stats['duplicates']} duplicates acked "
         f"again, rejected: {rejected}")
    imported = store.query("SELECT COUNT(*) FROM activities")[0][0]
    _say(f"  events stored: {stored_total} from the nodes, {imported} imported as history; "
         f"{summaries_total} heart rate summaries from the nodes")
    _say("  alerts (as kinsight serve would have raised them: each resident's own patterns "
         "each morning, and the real-time rules through the day):")
    for lv in lived:
        r = lv.resident
        found = alerts[r.rid]
        health = [a for a in found if a.condition != "device"]
        changes = ", ".join(f"{c.condition} from {c.onset:%d %b}" for c in lv.scenario.changes)
        _say(f"    {r.name:<8} {len(health)} health alerts, {len(found) - len(health)} "
             f"equipment; simulated change: {changes or 'none'}")
        if health:
            a = health[0]
            _say(f"             first, {a.day:%d %b} ({a.severity}): {a.text}")
    _say(f"  database: {out / 'kinsight.db'}")
    _say(f"  report:   {overview}")
    _say(f"  the care team's pages (kinsight report): {out / 'care' / 'index.html'}")
    _say(f"  took {seconds:.0f} s")
    if not ok or sent_total != stored_total:
        _say("  MISMATCH: the host did not store every event and summary the nodes sent")
        return 1
    _say("  every event and summary the nodes sent is stored once, in spite of the lossy link")
    return 0


if __name__ == "__main__":
    sys.exit(run(Path("kinsight-demo")))
