"""The MicroPython unix port process behind a virtual node, running device/agent.py.

One interpreter and one globals dict for a node's whole uptime, as on a board:
a soft reboot is a new process. Code goes in on its stdin, program output comes
back on its stdout and one reply per block on a pipe of its own (the framing is
in device/agent.py's docstring).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import struct
import subprocess
from pathlib import Path

from kinsight.simulation import micropython as mpy

log = logging.getLogger(__name__)

ESP32_HEAP = "112K"


class Agent:
    """device/agent.py under the unix port: one interpreter, one globals dict."""

    def __init__(self, flash: Path, rom: Path, uid: str, boot: str,
                 heap: str = ESP32_HEAP, nvs: Path | None = None) -> None:
        ctl_read, ctl_write = os.pipe()
        env = dict(os.environ, MICROPYPATH=str(rom), KINSIGHT_VNODE_FLASH=str(flash),
                   KINSIGHT_VNODE_ROM=str(rom), KINSIGHT_VNODE_UID=uid,
                   KINSIGHT_VNODE_BOOT=boot, KINSIGHT_VNODE_CTL=str(ctl_write))
        env.pop("PYTHONPATH", None)
        env.pop("KINSIGHT_VNODE_NVS", None)
        if nvs is not None:  # else the secrets last as long as this process (device/hal.py)
            env["KINSIGHT_VNODE_NVS"] = str(nvs)
        self.proc = subprocess.Popen(
            [mpy.micropython_binary(), "-X", f"heapsize={heap}", "-m", "agent"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, cwd=str(flash), pass_fds=(ctl_write,), start_new_session=True)
        os.close(ctl_write)
        self.ctl = ctl_read
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.out = self.proc.stdout.fileno()
        self.stdin = self.proc.stdin
        os.set_blocking(self.out, False)
        os.set_blocking(self.ctl, False)
        self.ctl_buf = b""
        self.seq = 0

    def send(self, kind: bytes, filename: str, source: bytes) -> int:
        self.seq += 1
        payload = filename.encode() + b"\0" + source
        try:
            self.stdin.write(kind + struct.pack("<II", self.seq, len(payload)) + payload)
            self.stdin.flush()
        except OSError as exc:
            log.warning("agent gone: %s", exc)
        return self.seq

    def interrupt(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)

    def read_output(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(self.out, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def read_replies(self) -> tuple[list[tuple[bytes, int, str]], bool]:
        """Complete replies (kind, seq, text) on the control pipe, and whether it closed."""
        closed = False
        while True:
            try:
                chunk = os.read(self.ctl, 65536)
            except BlockingIOError:
                break
            if not chunk:
                closed = True
                break
            self.ctl_buf += chunk
        replies: list[tuple[bytes, int, str]] = []
        while len(self.ctl_buf) >= 9:
            seq, length = struct.unpack("<II", self.ctl_buf[1:9])
            if len(self.ctl_buf) < 9 + length:
                break
            kind = self.ctl_buf[:1]
            text = self.ctl_buf[9:9 + length].decode(errors="replace")
            self.ctl_buf = self.ctl_buf[9 + length:]
            replies.append((kind, seq, text))
        return replies, closed

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        with contextlib.suppress(OSError):
            os.close(self.ctl)
