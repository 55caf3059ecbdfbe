"""A virtual Kinsight node: the real firmware under the MicroPython unix port, behind a pty.

``VirtualNode`` owns a pseudo-terminal (and optionally a TCP endpoint for
``socket://HOST:PORT``) and speaks a board's REPL protocols on it itself:
the friendly REPL, the raw REPL (Ctrl-A, Ctrl-B, Ctrl-C, Ctrl-D) and raw-paste
(Ctrl-E "A" Ctrl-A, with flow control), so plain ``mpremote`` works against it.
The code it receives runs in ONE MicroPython process (``device/agent.py``), one
globals dict, with the node's flash folder mounted at "/" and the firmware
"frozen" (precompiled, read-only, the virtual ``device/hal.py`` in place of
firmware/hal.py). Its NVS, where the secrets are, is a file beside the flash
folder (FLASH.nvs) that no path on the node reaches. A soft reboot kills that
process and starts a fresh one on the same flash folder, printing what a board
prints, then runs boot.py (and main.py from the friendly REPL) as a board does.

Sensors read a shared virtual world (``World``): replayed traces from
tools/traces.py, in real time, or values set live through ``World``'s methods,
``VirtualNode.control`` or the line protocol on ``--control HOST:PORT``
(``sit``, ``stand``, ``tap on 6``, ``tap off``, ``enter``, ``leave``,
``set NAME VALUE``, ``get``, ``trace NAME SEED [SPEED]``, ``stop``).

Run one with ``python -m kinsight_field.virtual_node --pty PATH [--flash DIR]``.

This module is the virtual node's command line and the names to import it by;
the parts live beside it: node_server.py (``VirtualNode``, its thread and its
boots), repl.py (the REPL protocols), agent_process.py (the MicroPython
process), endpoints.py (the pty and TCP clients), frozen_modules.py (staging
the firmware) and virtual_world.py (``World``, the control protocol and
``send_control``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path

from .agent_process import ESP32_HEAP
from .frozen_modules import stage
from .node_server import VirtualNode
from .virtual_world import TRACE_KINDS, VirtualNodeError, World, send_control

__all__ = ["ESP32_HEAP", "VirtualNode", "VirtualNodeError", "World", "build_parser", "main",
           "send_control", "stage"]


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


def _traces_arg(text: str) -> dict[str, int]:
    traces: dict[str, int] = {}
    for item in text.split(","):
        name, sep, seed = item.partition("=")
        if not sep or name not in TRACE_KINDS or not seed.lstrip("-").isdigit():
            raise argparse.ArgumentTypeError(
                f"{item!r}: traces are NAME=SEED with NAME one of {', '.join(TRACE_KINDS)}")
        traces[name] = int(seed)
    return traces


def _heap_arg(text: str) -> str:
    """A MicroPython heap size: bytes, or K or M of them (64K up to 64M)."""
    t = text.strip().upper()
    scale = {"K": 1024, "M": 1024 * 1024}.get(t[-1:], 1)
    digits = t[:-1] if scale > 1 else t
    if not digits.isdigit() or not 64 * 1024 <= int(digits) * scale <= 64 * 1024 * 1024:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a heap is bytes or K or M of them, 64K to 64M (e.g. 112K)")
    return t


def _speed_arg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0.01 <= v <= 10_000:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{text!r}: a speed from 0.01 to 10000")
    return v


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="kinsight-field virtual-node",
        description="Run a virtual Kinsight node (the firmware under the MicroPython unix "
                    "port) behind a pseudo-terminal that mpremote can connect to.")
    parser.add_argument("--pty", required=True, type=Path,
                        help="make PATH a link to the node's pseudo-terminal")
    parser.add_argument("--socket", type=_host_port, metavar="HOST:PORT",
                        help="also serve the REPL on TCP (mpremote connect socket://HOST:PORT)")
    parser.add_argument("--flash", type=Path, help="the node's flash folder, its NVS "
                        "(secrets) in the file FLASH.nvs beside it (default: a new "
                        "temporary folder, removed on exit)")
    parser.add_argument("--traces", type=_traces_arg, action="append", default=[],
                        metavar="NAME=SEED[,...]",
                        help="replay tools/traces.py traces: seat, tap, presence, bed")
    parser.add_argument("--trace-speed", type=_speed_arg, default=1.0,
                        help="replay traces this many times faster than real time")
    parser.add_argument("--control", type=_host_port, metavar="HOST:PORT",
                        help="accept world commands (sit, stand, tap on 6, enter, ...) here")
    parser.add_argument("--heap", type=_heap_arg, default=ESP32_HEAP,
                        help="the heap a board has free for the firmware (default "
                             "%(default)s, an ESP32's with its firmware frozen); the node "
                             "gets this plus what the firmware's modules take once imported "
                             "on the unix port, measured at each boot (docs/node.md)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.flash is not None:
        return _run(args, args.flash)
    with tempfile.TemporaryDirectory(prefix="kinsight-node-") as tmp:
        return _run(args, Path(tmp) / "flash")  # its NVS file goes beside it, in tmp too


def _run(args: argparse.Namespace, flash: Path) -> int:
    traces: dict[str, int] = {}
    for item in args.traces:
        traces.update(item)
    node = VirtualNode(flash, pty_path=args.pty, socket_addr=args.socket,
                       control_addr=args.control, traces=traces, trace_speed=args.trace_speed,
                       heap=args.heap)
    stopping = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        node.start()
    except (OSError, VirtualNodeError) as exc:
        print(f"kinsight-field virtual-node: {exc}", file=sys.stderr)
        return 1
    print(f"virtual node on {args.pty} (flash {flash})", flush=True)
    if node.socket_address is not None:
        host, port = node.socket_address
        print(f"REPL on socket://{host}:{port}", flush=True)
    if node.control_address is not None:
        host, port = node.control_address
        print(f"control on {host}:{port}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

