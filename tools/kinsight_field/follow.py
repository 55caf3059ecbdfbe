"""``kinsight-field logs --follow``: a running node's console lines, read passively.

Every other command opens the node's raw REPL (Link.open sends Ctrl-C), which stops
the node's program; following only listens on the serial line or socket:// and
sends nothing, so the node keeps sensing and sending. The lines are firmware/
console.py's, with whatever else the node prints (a traceback, a REPL prompt).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import serial

from .link import CommandError, check_port, last_error_line


def follow_logs(args: argparse.Namespace) -> int:
    if args.seconds is not None and args.seconds <= 0:
        raise CommandError(f"--seconds {args.seconds}: give a number of seconds above 0")
    until = f"for {args.seconds:g} s" if args.seconds is not None else "until Ctrl-C"

    def opened() -> None:
        # On stderr, so that stdout is the node's lines alone (for grep or a file).
        print(f"following {args.port} {until}; the node keeps running", file=sys.stderr,
              flush=True)

    try:
        follow(args.port, args.baud, lambda line: print(line, flush=True), args.seconds,
               opened)
    except KeyboardInterrupt:
        pass  # how a follow ends: not a failure, and the node was never touched
    except BrokenPipeError:  # piped into `head` or the like, which has seen enough
        sys.stdout = open(os.devnull, "w")  # Python flushes stdout at exit: not into the pipe
        return 0
    print(f"stopped following {args.port}", file=sys.stderr, flush=True)
    return 0


def follow(port: str, baud: int, on_line: Callable[[str], None],
           seconds: float | None = None, on_open: Callable[[], None] | None = None) -> None:
    """Hands each line the node prints to on_line, sending the node nothing.

    Link.open enters the raw REPL with Ctrl-C, which stops the node's program; this
    only listens, so the program keeps sensing and sending. It returns after
    ``seconds`` (None: never; Ctrl-C is the caller's to catch); on_open is called once
    the port is open.
    """
    is_socket = check_port(port, baud)
    try:
        # DTR and RTS stay asserted, as the port opens with them: an ESP32 board's
        # auto-reset circuit resets it only when one changes without the other.
        line: Any = serial.serial_for_url(port, baudrate=baud, timeout=0.2)
    except (serial.SerialException, OSError, ValueError) as exc:
        if is_socket:
            raise CommandError(f"nothing answers at {port} ({exc}): start the node "
                               "(or the virtual node) and check the address") from None
        raise CommandError(f"cannot open {port} ({last_error_line(str(exc))}): close the "
                           "other program using it and try again") from None
    deadline = None if seconds is None else time.monotonic() + seconds
    pending = b""
    try:
        if on_open is not None:
            on_open()
        while deadline is None or time.monotonic() < deadline:
            try:
                data = line.read(line.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                raise CommandError(f"the connection to {port} was lost ({exc}): check the "
                                   "cable (or that the node still runs) and follow again"
                                   ) from None
            if not data:
                continue
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                on_line(raw.decode(errors="replace").rstrip("\r"))
    finally:
        line.close()
        if pending.strip():
            on_line(pending.decode(errors="replace").rstrip("\r"))
