"""The ``kinsight`` command line: the parser, and ``main``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import KinsightError
from . import commands
from .commands import CommandError


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    p = argparse.ArgumentParser(prog="kinsight", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--version", action="version", version=f"kinsight {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help)

    def db(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", required=True, help="SQLite database file")

    def mtu(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--mtu", type=int, default=250, help="largest frame accepted (bytes)")

    sp = command("ingest", "ingest capture files into the store")
    db(sp)
    mtu(sp)
    sp.add_argument("capture", nargs="+", help="capture file(s), see docs/capture-format.md")

    sp = command("listen", "receive frames over UDP or a serial line, store them and ack them")
    db(sp)
    mtu(sp)
    sp.add_argument("--udp", metavar="HOST:PORT", help="address to listen on")
    sp.add_argument("--serial", metavar="PORT",
                    help="serial port to listen on instead (SLIP-framed), e.g. /dev/ttyUSB0")
    sp.add_argument("--baud", type=int, default=115200, help="baud rate of --serial")
    sp.add_argument("--capture", help="also append every datagram to this capture file")
    sp.add_argument("--idle-exit", type=float, metavar="SECONDS",
                    help="stop after this long without a datagram")
    sp.add_argument("--alerts", action="store_true",
                    help="run the real-time rules as frames arrive and raise alerts "
                    "(see docs/alerts.md)")
    sp.add_argument("--policy", help="with --alerts: alert policy (JSON, as for analyse); "
                    "default: send nothing, only store and log")
    sp.add_argument("--log", help="with --alerts: append each new alert to this JSON Lines file")
    sp.add_argument("--tick", type=float, metavar="SECONDS",
                    help="with --alerts: check every placed resident this often, frames or "
                    "not (default 60)")

    sp = command("keys", "register node keys (so the host accepts a node) or list them")
    db(sp)
    sp.add_argument("action", choices=["add", "list"])
    sp.add_argument("node", nargs="?", type=int, help="node id")
    sp.add_argument("key", nargs="?", help="the node's key, as hex")

    sp = command("nodes", "what each node has sent: frames, records, lost and rejected")
    db(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = command("bench", "benchmarks; the last line is key=value figures")
    sp.add_argument("what", choices=["ingest", "firmware", "learn"])
    sp.add_argument("--frames", type=int, default=20000, help="frames to push through")

    sp = command("demo", "run nodes under MicroPython against a host and summarise")
    sp.add_argument("--out", help="folder for the demo's database and capture")
    sp.add_argument("--loss", type=float, default=0.1,
                    help="share of datagrams the demo's link drops (0..0.5)")

    sp = command("eval", "run a scenario suite (or a database's history) through a detector")
    sp.add_argument("--suite", default="default", help="simulated suite: default or smoke")
    sp.add_argument("--json", metavar="OUT", help="also write the full report as JSON")
    sp.add_argument("--db", help="evaluate on a database's imported history instead")
    sp.add_argument("--detector", choices=["baseline", "engine"], default="engine",
                    help="the learning engine (default) or the fixed-threshold baseline")

    sp = command("import", "import sensor histories from other systems (JSON Lines)")
    db(sp)
    sp.add_argument("--tz", default="Europe/London",
                    help="time zone of times given without an offset (IANA name)")
    sp.add_argument("file", nargs="+", help="JSON Lines file(s), one event a line")

    sp = command("place", "place a node with a resident (its events become theirs)")
    db(sp)
    sp.add_argument("node", type=int, help="node id")
    sp.add_argument("resident", help="resident's name or code")
    sp.add_argument("--room", help="where the node is")
    sp.add_argument("--tz", help="the resident's time zone (IANA name; default Europe/London)")

    sp = command("analyse", "learn each resident's days, raise and deliver alerts")
    db(sp)
    sp.add_argument("--policy", help="alert policy (JSON, see docs/alerts.md); default: "
                    "send nothing, only store and log")
    sp.add_argument("--log", help="append each new alert to this JSON Lines file")
    sp.add_argument("--detector", choices=["engine", "baseline"], default="engine")
    sp.add_argument("--now", help="analyse as of this ISO date-time with offset "
                    "(default: the clock)")

    sp = command("alerts", "list alerts")
    db(sp)
    sp.add_argument("--resident", help="only this resident's")
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = command("ack", "acknowledge an alert with its outcome")
    db(sp)
    sp.add_argument("alert_id", type=int)
    sp.add_argument("--outcome", required=True, choices=["useful", "not-useful", "false-alarm"])
    sp.add_argument("--note", default="", help="what was found")
    sp.add_argument("--by", default="unknown", help="who acknowledges")

    table = {name: getattr(commands, f"do_{name}") for name in sub.choices}
    return p, table


def main(argv: Sequence[str] | None = None) -> int:
    parser, table = _parser()
    args = parser.parse_args(argv)
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

