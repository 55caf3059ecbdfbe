"""A MicroPython board's REPL as mpremote sees it, byte by byte.

The friendly REPL (with paste mode, Ctrl-E), the raw REPL (Ctrl-A, Ctrl-B,
Ctrl-C, Ctrl-D) and raw-paste mode (Ctrl-E "A" Ctrl-A, with its flow control
window): what each byte does and what the board answers. Running the code is
the caller's: ``Repl`` hands each block over and prints what comes back.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

BANNER = (b"MicroPython v1.29.0 on 2025-01-01; Kinsight virtual node (unix port) with ESP32\r\n"
          b'Type "help()" for more information.\r\n')
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
SOFT_REBOOT = b"MPY: soft reboot\r\n"
PASTE_BANNER = b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== "
RAW_PASTE_WINDOW = 256

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5

# (kind, text) when a block ends: kind b"D" with the exception as MicroPython prints it
# (empty when none), b"R" when it raised SystemExit and the board soft-reboots, or b"H"
# when it asked for a hard reset (machine.reset()).
OnDone = Callable[[bytes, str], None]


def cooked(data: bytes) -> bytes:
    """Program output as a board sends it: every "\\n" as "\\r\\n"."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _needs_more(source: str) -> bool:
    """Whether the friendly REPL waits for more lines (a compound statement, open brackets)."""
    lines = source.split("\n")
    if len(lines) > 1:
        return lines[-1].strip() != ""
    text = lines[0].rstrip()
    depth = sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")
    return text.endswith(":") or text.endswith("\\") or depth > 0


class Repl:
    """The REPL's state machine, on top of a board given as callables.

    out sends bytes to the client; run(kind, filename, source, on_done) runs a block
    (kind b"x" as a file, b"s" as one friendly-REPL statement) and calls on_done when
    it ends; reboot soft-reboots; interrupt is Ctrl-C for a running program; running
    tells whether one is (or the board is still booting); hard_reset is a reset the
    program asked for (machine.reset()), soft by default.
    """

    def __init__(self, out: Callable[[bytes], None],
                 run: Callable[[bytes, str, bytes, OnDone], None],
                 reboot: Callable[[], None], interrupt: Callable[[], None],
                 running: Callable[[], bool],
                 hard_reset: Callable[[], None] | None = None) -> None:
        self._out = out
        self._run = run
        self._reboot = reboot
        self._hard_reset = hard_reset or reboot
        self._interrupt = interrupt
        self._running = running
        self.mode = "friendly"
        self._line = bytearray()
        self._paste_window = 0
        self._raw_paste = False
        self._pending = bytearray()

    def feed(self, data: bytes) -> None:
        """Takes bytes from the client; while a program runs, they wait (Ctrl-C aside)."""
        for i, c in enumerate(data):
            if self._running():
                if c == CTRL_C:
                    self._interrupt()
                else:
                    self._pending.append(c)
                continue
            if self._raw_paste:
                self._raw_paste_byte(c)
            elif self.mode == "raw":
                self._raw_byte(c)
            elif self.mode == "paste":
                self._paste_byte(c)
            else:
                self._friendly_byte(c)
            if self._running() and i + 1 < len(data):
                self._pending += data[i + 1:]
                return

    def reset(self) -> None:
        """At a reboot: a half-sent line and raw-paste mode go; raw or friendly stays."""
        self._raw_paste = False
        self._line.clear()

    def resume(self) -> None:
        """Takes the bytes that came while a program ran, now that it has ended."""
        if self._pending:
            pending = bytes(self._pending)
            self._pending.clear()
            self.feed(pending)

    def _raw_byte(self, c: int) -> None:
        if c == CTRL_A:
            if len(self._line) == 2 and self._line[0] == CTRL_E:
                self._start_raw_paste(self._line[1])
                return
            self._line.clear()
            self._out(RAW_BANNER + b">")
        elif c == CTRL_B:
            self._line.clear()
            self.mode = "friendly"
            self._out(b"\r\n" + BANNER + b">>> ")
        elif c == CTRL_C:
            self._line.clear()
        elif c == CTRL_D:
            self._out(b"OK")
            if not self._line:
                self._out(b"\r\n")
                self._reboot()
                return
            source = bytes(self._line)
            self._line.clear()
            self._run(b"x", "<stdin>", source, self._raw_done)
        else:
            self._line.append(c)

    def _start_raw_paste(self, command: int) -> None:
        self._line.clear()
        if command != ord("A"):
            self._out(b"R\x00")
            return
        self._out(b"R\x01" + struct.pack("<H", RAW_PASTE_WINDOW) + b"\x01")
        self._raw_paste = True
        self._paste_window = RAW_PASTE_WINDOW

    def _raw_paste_byte(self, c: int) -> None:
        if c == CTRL_D:
            self._raw_paste = False
            self._out(b"\x04")
            source = bytes(self._line)
            self._line.clear()
            self._run(b"x", "<stdin>", source, self._raw_done)
            return
        self._line.append(c)
        self._paste_window -= 1
        if self._paste_window == 0:
            self._paste_window = RAW_PASTE_WINDOW
            self._out(b"\x01")

    def _raw_done(self, kind: bytes, text: str) -> None:
        self._out(b"\x04" + cooked(text.encode()) + b"\x04")
        if kind == b"H":
            self._hard_reset()
        elif kind == b"R":
            self._reboot()
        else:
            self._out(b">")

    def _friendly_byte(self, c: int) -> None:
        if c == CTRL_A:
            self._line.clear()
            self.mode = "raw"
            self._out(b"\r\n" + RAW_BANNER + b">")
        elif c == CTRL_B:
            self._line.clear()
            self._out(b"\r\n" + BANNER + b">>> ")
        elif c == CTRL_C:
            self._line.clear()
            self._out(b"\r\n>>> ")
        elif c == CTRL_D:
            if not self._line:
                self._out(b"\r\n")
                self._reboot()
        elif c == CTRL_E:
            self._line.clear()
            self.mode = "paste"
            self._out(PASTE_BANNER)
        elif c in (8, 127):
            if self._line and self._line[-1] != 10:
                self._line.pop()
                self._out(b"\x08 \x08")
        elif c == 13:
            self._out(b"\r\n")
            source = self._line.decode(errors="replace")
            if _needs_more(source):
                self._line.append(10)
                self._out(b"... ")
                return
            self._line.clear()
            if not source.strip():
                self._out(b">>> ")
                return
            self._run(b"s", "<stdin>", source.encode(), self._friendly_done)
        elif c == 10:
            pass
        elif c >= 32 or c == 9:
            self._line.append(c)
            self._out(bytes([c]))

    def _paste_byte(self, c: int) -> None:
        if c == CTRL_C:
            self._line.clear()
            self.mode = "friendly"
            self._out(b"\r\n>>> ")
        elif c == CTRL_D:
            self.mode = "friendly"
            self._out(b"\r\n")
            source = bytes(self._line)
            self._line.clear()
            self._run(b"x", "<stdin>", source, self._friendly_done)
        elif c == 13:
            self._line.append(10)
            self._out(b"\r\n=== ")
        elif c != 10:
            self._line.append(c)
            self._out(bytes([c]))

    def _friendly_done(self, kind: bytes, text: str) -> None:
        self._out(cooked(text.encode()))
        if kind in (b"R", b"H"):
            self._out(b"\r\n")
            self._hard_reset() if kind == b"H" else self._reboot()
        else:
            self._out(b">>> ")
