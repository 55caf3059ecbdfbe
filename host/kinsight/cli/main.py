"""The ``kinsight`` command line: what each command is for, its options, and ``main``."""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from typing import NoReturn

from .. import __version__
from ..errors import KinsightError
from . import commands
from .commands import CommandError

_DESCRIPTION = """\
Kinsight helps a care team keep older people safe and independent at home.
Sensor nodes send what they notice; kinsight stores it, learns each resident's
own patterns and tells the right person, in plain words, when something changes.
It supports practitioners' judgement; it never replaces it."""

_EPILOG = """\
a home from scratch:
  kinsight keys --db home.db add 101 <64 hex digits>   accept node 101
  kinsight place --db home.db 101 r-1 --room lounge    its events are resident r-1's
  kinsight listen --db home.db --udp 0.0.0.0:5683 --alerts --policy policy.json
  kinsight analyse --db home.db --policy policy.json   each morning
  kinsight alerts --db home.db                         what was raised

'kinsight COMMAND --help' says more about each command."""

# name: (one line for the list of commands, what it does, examples)
_COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "listen": (
        "receive frames from the nodes, store them and acknowledge them",
        "Receive frames over UDP or a serial line (SLIP-framed, for a node or an ESP-NOW "
        "gateway on USB), check and store them, and acknowledge only what is stored. "
        "With --alerts the real-time rules (a long toilet visit, not up, no water, night "
        "wandering) run as frames arrive and on a regular tick. Stop it with Ctrl-C.",
        ("kinsight listen --db home.db --udp 0.0.0.0:5683",
         "kinsight listen --db home.db --serial /dev/ttyUSB0 --baud 115200",
         "kinsight listen --db home.db --udp 0.0.0.0:5683 --alerts --policy policy.json "
         "--log alerts.jsonl")),
    "serve": (
        "run the whole service: receive, store, ack, watch, analyse, send, report health",
        "One always-on process for a supervisor (systemd): frames from every transport "
        "stored and acked, the real-time rules on each batch and when a resident's next "
        "deadline comes, each resident's morning analysis at a local time of their own "
        "(missed mornings caught up), digests, quiet-hours holds, escalations and retries "
        "when due, and with --http GET /healthz and GET /metrics. Settings come from "
        "--config (TOML, see docs/operations.md), flags override them. SIGTERM or "
        "Ctrl-C stops it cleanly.",
        ("kinsight serve --db home.db --udp 0.0.0.0:5683 --http 127.0.0.1:8080",
         "kinsight serve --config /etc/kinsight/kinsight.toml",
         "kinsight serve --db home.db --serial /dev/ttyUSB0 --policy policy.json")),
    "users": (
        "the people who sign in to the care team's app, and what each may see",
        "Add, list or remove the people who sign in, or change a password. A coordinator "
        "sees every resident, a practitioner those given with --resident, a family member "
        "only their own resident. The password is read from standard input and kept only "
        "as an argon2 hash; every change is audited.",
        ("echo 'a long passphrase' | kinsight users --db home.db add ann --role coordinator "
         "--password-stdin",
         "kinsight users --db home.db add bob --role family --resident r-1 --password-stdin",
         "kinsight users --db home.db list",
         "kinsight users --db home.db passwd bob --password-stdin",
         "kinsight users --db home.db remove bob")),
    "report": (
        "the care team's pages as static HTML, for a real database",
        "Write the triage board, a page per resident (the last 60 days as charts, the "
        "alerts with their evidence, what was done) and the equipment page into a folder "
        "of plain HTML files, linked to each other, as a coordinator sees them.",
        ("kinsight report --db home.db --out report",
         "kinsight report --db home.db --out report --resident r-1")),
    "ingest": (
        "store the frames of capture files (as recorded by listen --capture)",
        "Replay capture files through the same checks as live frames. Every file is read "
        "and checked before anything is stored; frames already stored are left as they are.",
        ("kinsight ingest --db home.db day1.kcap day2.kcap",)),
    "keys": (
        "accept a node by storing its key, or list the nodes accepted",
        "A node's frames are accepted only once its key is stored. The key is the 32-byte "
        "secret given to the node when it was provisioned, as 64 hex digits.",
        ("kinsight keys --db home.db add 101 00112233...eeff",
         "kinsight keys --db home.db list",
         "kinsight keys --db home.db rotate 101",
         "kinsight keys --db home.db remove 101")),
    "ota": (
        "update a node's firmware over the air, or see how updates went",
        "Stage a firmware bundle for a node: the firmware folder's modules (the "
        "checkout's firmware by default, compiled by mpy-cross), packed and hashed. The "
        "node learns of it from its next ack, fetches it in pieces over its own uplink "
        "(each piece under its key; a power cut resumes where it stopped), checks the "
        "whole bundle's SHA-256, installs it beside the firmware it runs and restarts into "
        "it; a start that fails goes back to the firmware before. A running 'kinsight "
        "serve' or 'listen' on the database does the host's side. Without --node, or with "
        "--list, it lists the updates and what became of them.",
        ("kinsight ota --db home.db --node 101",
         "kinsight ota --db home.db --node 101 --firmware build/firmware",
         "kinsight ota --db home.db --list",
         "kinsight ota --db home.db --node 101 --cancel")),
    "nodes": (
        "what each node has sent: frames, records, lost and refused",
        "One line a node: frames stored, events, summaries and status reports, frames "
        "lost on the way (sequence gaps) and frames refused, then the refusals by reason.",
        ("kinsight nodes --db home.db", "kinsight nodes --db home.db --json")),
    "place": (
        "place a node with a resident, so that its events become theirs",
        "Say whose home a node is in (and in which room): its events then count as that "
        "resident's. The resident's time zone decides what a day and a night are.",
        ("kinsight place --db home.db 101 r-1 --room lounge",
         "kinsight place --db home.db 102 r-1 --room kitchen --tz Europe/Madrid")),
    "import": (
        "import sensor histories from other systems (JSON Lines)",
        "Import one event a line, e.g. {\"resident\": \"r-1\", \"sensor\": \"seat\", "
        "\"start\": \"2024-03-01T09:00:00\", \"end\": \"2024-03-01T09:40:00\"}. "
        "A file with a bad line is refused whole, every bad line named; the same event "
        "imported twice is stored once.",
        ("kinsight import --db home.db history.jsonl",
         "kinsight import --db home.db --tz Europe/Madrid casa.jsonl")),
    "analyse": (
        "learn each resident's new days, raise alerts and send what is due",
        "The morning run: each resident's days not analysed before go through their own "
        "model, the findings become alerts under the policy (care circle, consent, quiet "
        "hours, throttle), and what is due is sent. Without --policy nothing is sent: "
        "alerts are only stored (and logged with --log).",
        ("kinsight analyse --db home.db --policy policy.json --log alerts.jsonl",
         "kinsight analyse --db home.db --now 2024-05-02T07:00:00+01:00")),
    "replay": (
        "what Kinsight would have said: play a database's history as a deployment would",
        "Play the history in a database hour by hour on a simulated clock, as a "
        "deployment would have seen it (the real-time rules at each hour, the morning "
        "analysis each day), and store the alerts it would have raised as 'replayed': "
        "'kinsight alerts' lists them; they are never sent and never hold back a live "
        "alert. Replaying the same days again replaces them.",
        ("kinsight replay --db home.db", "kinsight replay --db home.db --from 2024-03-01 "
         "--to 2024-03-31 --json")),
    "alerts": (
        "list the alerts raised",
        "Every alert with its resident, condition, urgency, state and the words sent.",
        ("kinsight alerts --db home.db", "kinsight alerts --db home.db --resident r-1 --json")),
    "ack": (
        "acknowledge an alert with what came of it",
        "Close an alert with its outcome. False alarms teach Kinsight to be less quick "
        "to raise that condition for that resident; every acknowledgement is audited.",
        ("kinsight ack --db home.db 12 --outcome useful --by 'duty nurse' "
         "--note 'drinking more now'",)),
    "eval": (
        "measure how well alerts find changes, on simulated or real homes",
        "Score a detector: on a suite of simulated residents with known changes, or with "
        "--db on the real histories imported into a database, into which changes are "
        "written. Prints detection, lead time, false alerts per resident-month and "
        "precision; the last line is key=value figures.",
        ("kinsight eval", "kinsight eval --suite smoke --detector baseline",
         "kinsight eval --db home.db --json report.json")),
    "demo": (
        "the demonstration: four residents, end to end, to a report",
        "Four simulated residents over 60 days; their last days go through the real node "
        "firmware under MicroPython and a lossy UDP link to the host, then the morning "
        "analysis runs each day and an HTML report is written for the care team.",
        ("kinsight demo", "kinsight demo --out /srv/kinsight-demo --loss 0.2")),
    "bench": (
        "benchmarks: ingest speed, the firmware's costs, the learning engine, scoring a home, "
        "importing a history",
        "Each benchmark prints its figures; the last line is key=value pairs.",
        ("kinsight bench ingest", "kinsight bench firmware", "kinsight bench learn",
         "kinsight bench replay --db homes.db", "kinsight bench import --lines 1000000")),
}


class _UsageError(Exception):
    """A mistake on the command line; the message is the whole line to print."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one ``kinsight: ...`` line and exit
    status 1, like every other refusal (argparse's own way is the usage and status 2)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("kinsight").strip()
        where = f"{command}: " if command else ""
        raise _UsageError(f"{where}{message} (see '{self.prog} --help')")


def _whole(what: str, lo: int, hi: int) -> Callable[[str], int]:
    """An argument type: a whole number from ``lo`` to ``hi``, or a message saying so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} {value} is outside {lo}..{hi}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def _seconds(what: str, lo: float, hi: float) -> Callable[[str], float]:
    """An argument type: a number of seconds from ``lo`` to ``hi`` (never NaN)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not lo <= value <= hi:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"{what} {text} is outside {lo:g}..{hi:g} seconds")
        return value

    parse.__name__ = what
    return parse


def _text(what: str, lo: int, hi: int) -> Callable[[str], str]:
    """An argument type: ``lo`` to ``hi`` characters of text, no control characters."""
    def parse(text: str) -> str:
        if not lo <= len(text) <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be {lo} to {hi} characters, not "
                                              f"{len(text)}")
        if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text):
            raise argparse.ArgumentTypeError(f"{what} must not hold control characters or "
                                              "bytes that are not UTF-8")
        return text

    parse.__name__ = what
    return parse


NODE_ID = _whole("node id", 0, 2**32 - 1)
ALERT_ID = _whole("alert number", 1, 2**63 - 1)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    p = _Parser(prog="kinsight", description=_DESCRIPTION, epilog=_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"kinsight {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="say what happens as it happens")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str) -> argparse.ArgumentParser:
        summary, what, examples = _COMMANDS[name]
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
        return sub.add_parser(name, help=summary, description=textwrap.fill(what, 79),
                              epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)

    def db(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", required=True, help="the database file (SQLite)")

    def mtu(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--mtu", type=_whole("MTU", 32, 65535), default=250,
                        help="largest frame accepted (bytes)")

    sp = command("listen")
    db(sp)
    mtu(sp)
    sp.add_argument("--udp", metavar="HOST:PORT", help="address to listen on")
    sp.add_argument("--serial", metavar="PORT",
                    help="serial port to listen on instead (SLIP-framed), e.g. /dev/ttyUSB0")
    sp.add_argument("--baud", type=_whole("baud rate", 1, 10_000_000), default=115200,
                    help="baud rate of --serial")
    sp.add_argument("--capture", help="also append every datagram to this capture file")
    sp.add_argument("--idle-exit", type=_seconds("--idle-exit", 0, 10 * 365 * 86400),
                    metavar="SECONDS",
                    help="stop after this long without a datagram")
    sp.add_argument("--alerts", action="store_true",
                    help="run the real-time rules as frames arrive and raise alerts "
                    "(see docs/alerts.md)")
    sp.add_argument("--policy", help="with --alerts: alert policy (JSON, as for analyse); "
                    "default: send nothing, only store and log")
    sp.add_argument("--log", help="with --alerts: append each new alert to this JSON Lines file")
    sp.add_argument("--tick", type=_seconds("--tick", 0.01, 86400), metavar="SECONDS",
                    help="with --alerts: check every placed resident this often, frames or "
                    "not (default 60)")

    sp = command("serve")
    sp.add_argument("--db", help="the database: a file (SQLite) or a postgresql:// URL; or "
                    "db in --config")
    sp.add_argument("--config", metavar="FILE", help="settings (TOML); flags override them")
    sp.add_argument("--udp", metavar="HOST:PORT", help="receive frames over UDP here")
    sp.add_argument("--serial", metavar="PORT", help="and/or on this serial port (SLIP)")
    sp.add_argument("--baud", type=_whole("baud rate", 1, 10_000_000), default=None,
                    help="baud rate of --serial (default 115200)")
    sp.add_argument("--mqtt", metavar="URL", help="and/or from an MQTT broker: "
                    "mqtt://[USER[:PASSWORD]@]HOST[:PORT][?group=NAME] (mqtts:// for TLS; "
                    "a password is better kept in --config)")
    sp.add_argument("--mqtt-ca-file", metavar="FILE", help="with mqtts://: trust this "
                    "authority's certificates instead of the system's")
    sp.add_argument("--home-assistant", action="store_true", help="with --mqtt: publish "
                    "the status and open alerts of the residents whose policy says "
                    "home_assistant as Home Assistant entities (MQTT discovery)")
    sp.add_argument("--worker", metavar="NAME", help="one of several serve processes "
                    "sharing the store (a postgresql:// --db): look after a share of the "
                    "residents, by leases in the store (docs/operations.md)")
    sp.add_argument("--http", metavar="HOST:PORT", help="serve /healthz and /metrics here "
                    "(port 0: a free one)")
    sp.add_argument("--policy", help="alert policy (JSON); default: send nothing, store all")
    sp.add_argument("--morning", metavar="HH:MM",
                    help="each resident's morning analysis, at their local time (07:30)")
    sp.add_argument("--tick", type=_seconds("--tick", 0.01, 3600), metavar="SECONDS",
                    help="how often the real-time rules look at who is due (default 60)")
    sp.add_argument("--alert-log", metavar="FILE", help="append each alert to this JSON Lines "
                    "file")
    sp.add_argument("--log-format", choices=["text", "json"], default=None,
                    help="log lines as text (default) or one JSON object each")
    sp.add_argument("--clock", metavar="START[xRATE]",
                    help="run on a simulated clock from START (ISO 8601 with offset), RATE "
                    "times as fast as real time: for demonstrations and tests only")

    sp = command("users")
    db(sp)
    sp.add_argument("action", choices=["add", "list", "remove", "passwd"])
    sp.add_argument("name", nargs="?", help="the user's name (sign-in name)")
    sp.add_argument("--role", choices=["coordinator", "practitioner", "family"],
                    help="with add: what they may see")
    sp.add_argument("--resident", action="append", metavar="ID",
                    help="with add: a resident they look after (again for more)")
    sp.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input")
    sp.add_argument("--json", action="store_true", help="with list: as JSON")

    sp = command("report")
    db(sp)
    sp.add_argument("--out", required=True, help="the folder to write the pages into")
    sp.add_argument("--resident", action="append", metavar="ID",
                    help="only this resident (again for more)")
    sp.add_argument("--policy", help="the alert policy (JSON): what family may see")

    sp = command("ingest")
    db(sp)
    mtu(sp)
    sp.add_argument("capture", nargs="+", help="capture file(s), see docs/capture-format.md")

    sp = command("keys")
    db(sp)
    sp.add_argument("action", choices=["add", "list", "remove", "rotate"],
                    help="add a key, list the nodes, remove a node's key, or rotate it (a new "
                         "random key, printed for provisioning)")
    sp.add_argument("node", nargs="?", type=NODE_ID, help="node id")
    sp.add_argument("key", nargs="?", help="the node's key, as hex")

    sp = command("ota")
    db(sp)
    sp.add_argument("--node", type=NODE_ID, help="the node to update")
    sp.add_argument("--firmware", metavar="DIR",
                    help="a folder of firmware modules (.py, compiled here, or .mpy); "
                         "default: the checkout's firmware")
    sp.add_argument("--source", action="store_true",
                    help="send .py modules as source, not compiled")
    sp.add_argument("--list", action="store_true", help="list the updates staged so far")
    sp.add_argument("--cancel", action="store_true", help="withdraw the node's staged update")

    sp = command("nodes")
    db(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = command("place")
    db(sp)
    sp.add_argument("node", type=NODE_ID, help="node id")
    sp.add_argument("resident", help="resident's name or code")
    sp.add_argument("--room", help="where the node is")
    sp.add_argument("--tz", help="the resident's time zone (IANA name; default Europe/London)")

    sp = command("import")
    db(sp)
    sp.add_argument("--tz", default="Europe/London",
                    help="time zone of times given without an offset (IANA name)")
    sp.add_argument("file", nargs="+", help="JSON Lines file(s), one event a line")

    sp = command("analyse")
    db(sp)
    sp.add_argument("--policy", help="alert policy (JSON, see docs/alerts.md); default: "
                    "send nothing, only store and log")
    sp.add_argument("--log", help="append each new alert to this JSON Lines file")
    sp.add_argument("--detector", choices=["engine", "baseline"], default="engine",
                    help="the learning engine (default) or the fixed-threshold baseline")
    sp.add_argument("--now", help="analyse as of this ISO date-time with offset "
                    "(default: the clock)")

    sp = command("replay")
    db(sp)
    sp.add_argument("--from", dest="from_day", metavar="DATE",
                    help="the first day to play (default: the history's first)")
    sp.add_argument("--to", dest="to_day", metavar="DATE",
                    help="the last day to play (default: the history's last)")
    sp.add_argument("--resident", help="only this resident")
    sp.add_argument("--policy", help="alert policy (JSON, see docs/alerts.md): which "
                    "conditions, sensitivity, holidays; nothing is sent")
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = command("alerts")
    db(sp)
    sp.add_argument("--resident", help="only this resident's")
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = command("ack")
    db(sp)
    sp.add_argument("alert_id", type=ALERT_ID,
                    help="the alert's number, as kinsight alerts lists it")
    sp.add_argument("--outcome", required=True, choices=["useful", "not-useful", "false-alarm"])
    sp.add_argument("--note", default="", type=_text("--note", 0, 2000), help="what was found")
    sp.add_argument("--by", default="unknown", type=_text("--by", 1, 100),
                    help="who acknowledges")

    sp = command("eval")
    sp.add_argument("--suite", default="default", help="simulated suite: default or smoke")
    sp.add_argument("--json", metavar="OUT", help="also write the full report as JSON")
    sp.add_argument("--db", help="evaluate on a database's imported history instead")
    sp.add_argument("--detector", choices=["baseline", "engine"], default="engine",
                    help="the learning engine (default) or the fixed-threshold baseline")

    sp = command("demo")
    sp.add_argument("--out", help="folder for the demo's database and capture")
    sp.add_argument("--loss", type=float, default=0.1,
                    help="share of datagrams the demo's link drops (0..0.5)")

    sp = command("bench")
    sp.add_argument("what", choices=["ingest", "firmware", "learn", "replay", "analyse",
                                     "realtime", "import", "pages", "cluster"],
                    help="which benchmark")
    sp.add_argument("--frames", type=_whole("frames", 1, 10_000_000), default=20000,
                    help="frames to push through")
    sp.add_argument("--lines", type=_whole("lines", 1, 10_000_000), default=1_000_000,
                    help="with import: lines of the history file to import")
    sp.add_argument("--db", help="with replay: score the homes imported into this database "
                    "instead of a simulated one")

    table = {name: getattr(commands, f"do_{name}") for name in sub.choices}
    return p, table


def main(argv: Sequence[str] | None = None) -> int:
    parser, table = _parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"kinsight: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return table[args.command](args)
    except (CommandError, KinsightError) as exc:
        print(f"kinsight: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kinsight: interrupted", file=sys.stderr)
        return 130
    except (sqlite3.Error, OverflowError) as exc:
        # A database that is locked, full or damaged: say so, never a traceback.
        print(f"kinsight: the database could not do that: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a fault of ours: said in one line, the trace with -v
        if args.verbose:
            logging.getLogger("kinsight").error("internal error", exc_info=True)
        print(f"kinsight: internal error ({type(exc).__name__}: {exc}); run with -v for "
              "the details and please report it", file=sys.stderr)
        return 70

