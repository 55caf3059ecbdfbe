"""A virtual Kinsight node: the real firmware under the MicroPython unix port, behind a pty.

``VirtualNode`` owns a pseudo-terminal (and optionally a TCP endpoint for
``socket://HOST:PORT``) and speaks a board's REPL protocols on it itself:
the friendly REPL, the raw REPL (Ctrl-A, Ctrl-B, Ctrl-C, Ctrl-D) and raw-paste
(Ctrl-E "A" Ctrl-A, with flow control), so plain ``mpremote`` works against it.
The code it receives runs in ONE MicroPython process (``device/agent.py``), one
globals dict, with the node's flash folder mounted at "/" and the firmware
"frozen" (precompiled, read-only, the virtual ``device/hal.py`` in place of
firmware/hal.py). A soft reboot kills that process and starts a fresh one on
the same flash folder, printing what a board prints, then runs boot.py (and
main.py from the friendly REPL) as a board does.

Sensors read a shared virtual world (``World``): replayed traces from
tools/traces.py, in real time, or values set live through ``World``'s methods,
``VirtualNode.control`` or the line protocol on ``--control HOST:PORT``
(``sit``, ``stand``, ``tap on 6``, ``tap off``, ``enter``, ``leave``,
``set NAME VALUE``, ``get``, ``trace NAME SEED [SPEED]``, ``stop``).

Run one with ``python -m kinsight_field.virtual_node --pty PATH [--flash DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import logging
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from kinsight import mpy

log = logging.getLogger(__name__)

ESP32_HEAP = "112K"

DEVICE_DIR = Path(__file__).resolve().parent / "device"
BANNER = (b"MicroPython v1.29.0 on 2025-01-01; Kinsight virtual node (unix port) with ESP32\r\n"
          b'Type "help()" for more information.\r\n')
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
SOFT_REBOOT = b"MPY: soft reboot\r\n"
PASTE_BANNER = b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== "
RAW_PASTE_WINDOW = 256
INTERRUPT_GRACE_S = 2.0
OUTPUT_CAP = 1 << 20

SEAT_EMPTY = 300
SEAT_SITTING = 1800
PULSES_PER_L = 450
TICK_S = 0.1

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5


class VirtualNodeError(Exception):
    pass


def _tool(name: str) -> str:
    return mpy.mpy_cross_binary() if name == "mpy-cross" else mpy.micropython_binary()


# --- the frozen modules ------------------------------------------------------------------------


def _cache_dir() -> Path:
    path = Path(tempfile.gettempdir()) / f"kinsight-vnode-mpy-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _frozen_sources() -> list[Path]:
    root = mpy.source_root()
    firmware = [p for p in sorted((root / "firmware").glob("*.py"))
                if p.name not in ("hal.py", "main.py", "boot.py")]
    return [*firmware, root / "shared" / "kinsight_wire.py", *sorted(DEVICE_DIR.glob("*.py"))]


def stage(rom: Path) -> None:
    """Compile the firmware, the shared constants and the device modules into rom (as
    .mpy, cached by content); a module mpy-cross rejects is staged as source."""
    cache = _cache_dir()
    jobs: list[tuple[Path, Path, subprocess.Popen[bytes]]] = []
    for source in _frozen_sources():
        data = source.read_bytes()
        cached = cache / f"{hashlib.sha1(data).hexdigest()}-{source.stem}.mpy"
        if cached.exists():
            shutil.copyfile(cached, rom / f"{source.stem}.mpy")
            continue
        tmp = cache / f"{cached.name}.{os.getpid()}.tmp"
        proc = subprocess.Popen([_tool("mpy-cross"), "-s", source.name, "-o", str(tmp),
                                 str(source)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        jobs.append((source, cached, proc))
    for source, cached, proc in jobs:
        _, err = proc.communicate()
        tmp = cache / f"{cached.name}.{os.getpid()}.tmp"
        if proc.returncode == 0:
            os.replace(tmp, cached)
            shutil.copyfile(cached, rom / f"{source.stem}.mpy")
        else:
            log.warning("mpy-cross rejects %s, staged as source: %s", source.name,
                        err.decode(errors="replace").strip())
            shutil.copyfile(source, rom / source.name)


# --- the virtual world -------------------------------------------------------------------------


def _traces_module() -> ModuleType:
    path = mpy.source_root() / "tools" / "traces.py"
    spec = importlib.util.spec_from_file_location("kinsight_vnode_traces", path)
    if spec is None or spec.loader is None:
        raise VirtualNodeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRACE_KINDS = {"seat": "seat", "tap": "pulses", "flow": "pulses", "presence": "presence",
               "bed": "bed"}


@dataclass
class _Player:
    key: str
    samples: Iterator[tuple[int, Any]]
    speed: float
    started: float
    upcoming: tuple[int, Any] | None = None


@dataclass
class World:
    """Each sensor's current raw value, as the virtual hal reads them (see device/hal.py)."""

    path: Path | None = None
    values: dict[str, int] = field(default_factory=lambda: {
        "seat": SEAT_EMPTY, "presence": 0, "pulses": 0})
    flow_l_min: float = 0.0
    _pulses: float = 0.0
    _players: dict[str, _Player] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _last_tick: float = field(default_factory=time.monotonic)

    def _write(self) -> None:
        if self.path is None:
            return
        text = "".join(f"{k} {v}\n" for k, v in sorted(self.values.items()))
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)

    def set(self, name: str, value: int) -> None:
        with self._lock:
            if name == "pulses":
                self._pulses = float(value)
            self.values[name] = int(value)
            self._write()

    def get(self, name: str) -> int | None:
        with self._lock:
            return self.values.get(name)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)

    def sit_down(self, counts: int = SEAT_SITTING) -> None:
        self.set("seat", counts)

    def stand_up(self) -> None:
        self.set("seat", SEAT_EMPTY)

    def tap_on(self, l_per_min: float = 6.0) -> None:
        with self._lock:
            self.tick()
            self.flow_l_min = l_per_min

    def tap_off(self) -> None:
        self.tap_on(0.0)

    def enter(self) -> None:
        self.set("presence", 1)

    def leave(self) -> None:
        self.set("presence", 0)

    def play(self, name: str, seed: int, speed: float = 1.0) -> None:
        """Replays tools/traces.py's trace for name (seat, tap, presence, bed) in real time."""
        traces = _traces_module()
        if name == "seat":
            samples = traces.seat_trace(seed)
        elif name in ("tap", "flow"):
            samples = traces.flow_trace(seed, counter_bits=16)
        elif name == "presence":
            samples = traces.presence_trace(seed)
        elif name == "bed":
            samples = traces.bed_trace(seed)
        else:
            raise VirtualNodeError(f"no trace for {name!r} (seat, tap, presence, bed)")
        with self._lock:
            self._players[name] = _Player(TRACE_KINDS[name], samples, speed, time.monotonic())
            self.tick()

    def stop(self, name: str = "all") -> None:
        with self._lock:
            if name == "all":
                self._players.clear()
            else:
                self._players.pop(name, None)

    def tick(self) -> None:
        """Advances the traces and the running tap to now."""
        with self._lock:
            now = time.monotonic()
            changed = False
            if self.flow_l_min > 0:
                self._pulses += self.flow_l_min * PULSES_PER_L / 60 * (now - self._last_tick)
                if int(self._pulses) != self.values.get("pulses"):
                    self.values["pulses"] = int(self._pulses)
                    changed = True
            self._last_tick = now
            for name, player in list(self._players.items()):
                due_ms = (now - player.started) * 1000 * player.speed
                while True:
                    if player.upcoming is None:
                        player.upcoming = next(player.samples, None)
                        if player.upcoming is None:
                            del self._players[name]
                            break
                    t_ms, value = player.upcoming
                    if t_ms > due_ms:
                        break
                    self.values[player.key] = int(value)
                    if player.key == "pulses":
                        self._pulses = float(int(value))
                    player.upcoming = None
                    changed = True
            if changed:
                self._write()

    def command(self, line: str) -> str:
        """One line of the control protocol; the reply ("ok ..." or "error ...")."""
        words = line.split()
        try:
            if not words:
                return "error empty command"
            verb, args = words[0].lower(), words[1:]
            if verb == "sit":
                self.sit_down(int(args[0]) if args else SEAT_SITTING)
            elif verb == "stand":
                self.stand_up()
            elif verb == "tap" and args and args[0] == "on":
                self.tap_on(float(args[1]) if len(args) > 1 else 6.0)
            elif verb == "tap" and args and args[0] == "off":
                self.tap_off()
            elif verb == "enter":
                self.enter()
            elif verb == "leave":
                self.leave()
            elif verb == "set" and len(args) == 2:
                self.set(args[0], int(args[1]))
            elif verb == "get":
                values = self.snapshot()
                if args:
                    return f"ok {args[0]}={values.get(args[0])}"
                return "ok " + " ".join(f"{k}={v}" for k, v in sorted(values.items()))
            elif verb == "trace" and len(args) in (2, 3):
                self.play(args[0], int(args[1]), float(args[2]) if len(args) == 3 else 1.0)
            elif verb == "stop":
                self.stop(args[0] if args else "all")
            elif verb == "help":
                return ("ok sit [COUNTS] | stand | tap on [L_MIN] | tap off | enter | leave | "
                        "set NAME VALUE | get [NAME] | trace NAME SEED [SPEED] | stop [NAME]")
            else:
                return f"error unknown command: {line.strip()}"
        except (ValueError, IndexError, VirtualNodeError) as exc:
            return f"error {exc}"
        return "ok"


def send_control(host: str, port: int, line: str, timeout: float = 5.0) -> str:
    """Sends one control command to a virtual node's --control endpoint; its reply."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(line.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.decode().strip()


# --- the MicroPython process -------------------------------------------------------------------


class Agent:
    """device/agent.py under the unix port: one interpreter, one globals dict."""

    def __init__(self, flash: Path, rom: Path, uid: str, boot: str,
                 heap: str = ESP32_HEAP) -> None:
        ctl_read, ctl_write = os.pipe()
        env = dict(os.environ, MICROPYPATH=str(rom), KINSIGHT_VNODE_FLASH=str(flash),
                   KINSIGHT_VNODE_ROM=str(rom), KINSIGHT_VNODE_UID=uid,
                   KINSIGHT_VNODE_BOOT=boot, KINSIGHT_VNODE_CTL=str(ctl_write))
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [_tool("micropython"), "-X", f"heapsize={heap}", "-m", "agent"],
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


# --- endpoints: the pty and TCP clients --------------------------------------------------------


class Endpoint:
    """One way in to the REPL: the pty master or a TCP client, with its output queue."""

    def __init__(self, name: str, fd: int, conn: socket.socket | None = None) -> None:
        self.name = name
        self.fd = fd
        self.conn = conn
        self.out = bytearray()
        os.set_blocking(fd, False)

    def read(self) -> bytes | None:
        """Bytes from the client; None when it went away."""
        try:
            if self.conn is not None:
                data = self.conn.recv(65536)
                return data or None
            return os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return None if self.conn is not None else b""

    def flush(self) -> None:
        while self.out:
            try:
                if self.conn is not None:
                    n = self.conn.send(self.out)
                else:
                    n = os.write(self.fd, self.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("%s: write failed: %s", self.name, exc)
                self.out.clear()
                return
            del self.out[:n]

    def write(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > OUTPUT_CAP:  # nobody reads: drop the oldest, as a UART would
            del self.out[:len(self.out) - OUTPUT_CAP]
        self.flush()


def _cooked(data: bytes) -> bytes:
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


def _uid_for(flash: Path) -> str:
    return hashlib.sha256(flash.resolve().name.encode()).hexdigest()[:12]


# --- the node ----------------------------------------------------------------------------------


class VirtualNode:
    """A virtual node serving its REPL on a pty (and optionally TCP) from a thread.

    >>> node = VirtualNode(flash)            # doctest: +SKIP
    >>> node.start(); node.world.sit_down()  # doctest: +SKIP
    """

    def __init__(self, flash: Path, pty_path: Path | None = None,
                 socket_addr: tuple[str, int] | None = None,
                 control_addr: tuple[str, int] | None = None,
                 traces: dict[str, int] | None = None, trace_speed: float = 1.0,
                 heap: str = ESP32_HEAP) -> None:
        self.heap = heap
        self.flash = flash.resolve()
        self.flash.mkdir(parents=True, exist_ok=True)
        self.pty_path = pty_path
        self.rom = Path(tempfile.mkdtemp(prefix="kinsight-vnode-"))
        self.world = World(path=self.rom / "world")
        self.world.set("pulses", 0)
        self._traces = dict(traces or {})
        self._trace_speed = trace_speed
        self._socket_addr = socket_addr
        self._control_addr = control_addr
        self.socket_address: tuple[str, int] | None = None
        self.control_address: tuple[str, int] | None = None
        self._sel = selectors.DefaultSelector()
        self._endpoints: list[Endpoint] = []
        self._current: Endpoint | None = None
        self._listener: socket.socket | None = None
        self._control: socket.socket | None = None
        self._control_clients: dict[socket.socket, bytes] = {}
        self._master = -1
        self._slave = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        # the REPL
        self.mode = "friendly"
        self._line = bytearray()
        self._paste_window = 0
        self._raw_paste = False
        self._busy: int | None = None
        self._on_done: Callable[[bytes, str], None] | None = None
        self._interrupt_deadline: float | None = None
        self._pending = bytearray()
        self._boot_steps: list[str] = []
        self._agent: Agent | None = None
        self.boots = 0

    # lifecycle

    def start(self) -> VirtualNode:
        stage(self.rom)
        for name, seed in self._traces.items():
            self.world.play(name, seed, self._trace_speed)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        slave_name = os.ttyname(self._slave)
        if self.pty_path is not None:
            with contextlib.suppress(FileNotFoundError):
                if self.pty_path.is_symlink():
                    self.pty_path.unlink()
            self.pty_path.symlink_to(slave_name)
        self.slave_name = slave_name
        pty = Endpoint("pty", self._master)
        self._endpoints.append(pty)
        self._current = pty
        self._sel.register(self._master, selectors.EVENT_READ, pty)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        if self._socket_addr is not None:
            self._listener = socket.create_server(self._socket_addr, reuse_port=False)
            self._listener.setblocking(False)
            self.socket_address = self._listener.getsockname()[:2]
            self._sel.register(self._listener, selectors.EVENT_READ, "listen")
        if self._control_addr is not None:
            self._control = socket.create_server(self._control_addr)
            self._control.setblocking(False)
            self.control_address = self._control.getsockname()[:2]
            self._sel.register(self._control, selectors.EVENT_READ, "control")
        self._boot(first=True)
        self._thread = threading.Thread(target=self._serve, name="virtual-node", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._agent is not None:
            self._agent.close()
            self._agent = None
        for sock in [self._listener, self._control, *self._control_clients]:
            if sock is not None:
                sock.close()
        for ep in self._endpoints:
            if ep.conn is not None:
                ep.conn.close()
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._sel.close()
        if self.pty_path is not None and self.pty_path.is_symlink():
            self.pty_path.unlink()
        shutil.rmtree(self.rom, ignore_errors=True)

    def __enter__(self) -> VirtualNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def control(self, line: str) -> str:
        return self.world.command(line)

    # output

    def _out(self, data: bytes) -> None:
        if data and self._current is not None:
            self._current.write(data)
            if self._current.out:
                self._watch_writes(self._current)

    def _watch_writes(self, ep: Endpoint) -> None:
        key = ep.conn if ep.conn is not None else ep.fd
        with contextlib.suppress(KeyError, ValueError):
            self._sel.modify(key, selectors.EVENT_READ | selectors.EVENT_WRITE, ep)

    # the MicroPython process

    def _boot(self, first: bool = False) -> None:
        """(Re)starts MicroPython on the flash folder: a power-on or a soft reboot."""
        if self._agent is not None:
            self._sel.unregister(self._agent.out)
            self._sel.unregister(self._agent.ctl)
            self._agent.close()
        if not first:
            self._out(SOFT_REBOOT)
        self.boots += 1
        stage(self.rom)  # the firmware as it is now: a reboot picks up edits
        self._agent = Agent(self.flash, self.rom, _uid_for(self.flash),
                            "power" if first else "soft", self.heap)
        self._sel.register(self._agent.out, selectors.EVENT_READ, "agent-out")
        self._sel.register(self._agent.ctl, selectors.EVENT_READ, "agent-ctl")
        self._busy = 0  # the agent's ready reply has seq 0
        self._on_done = lambda kind, text: self._next_boot_step()
        self._boot_steps = ["boot.py"]
        if self.mode == "friendly":
            self._boot_steps.append("main.py")
        self._raw_paste = False
        self._line.clear()

    def _next_boot_step(self) -> None:
        while self._boot_steps:
            name = self._boot_steps.pop(0)
            path = self.flash / name
            if path.is_file():
                self._run(b"x", name, path.read_bytes(), self._boot_step_done)
                return
        if self.mode == "raw":
            self._out(RAW_BANNER + b">")
        else:
            self._out(BANNER + b">>> ")

    def _boot_step_done(self, kind: bytes, text: str) -> None:
        self._out(_cooked(text.encode()))
        if kind == b"R":
            self._boot()
        else:
            self._next_boot_step()

    def _run(self, kind: bytes, filename: str, source: bytes,
             on_done: Callable[[bytes, str], None]) -> None:
        if self._agent is None:
            on_done(b"D", "OSError: virtual node: MicroPython is not running (Ctrl-D)\n")
            return
        self._busy = self._agent.send(kind, filename, source)
        self._on_done = on_done

    def _agent_replies(self) -> None:
        agent = self._agent
        if agent is None:
            return
        replies, closed = agent.read_replies()
        for kind, seq, text in replies:
            if seq != self._busy:
                continue  # a second reply after a late Ctrl-C
            self._out(_cooked(agent.read_output()))
            self._busy = None
            self._interrupt_deadline = None
            on_done, self._on_done = self._on_done, None
            if on_done is not None:
                on_done(kind, text)
            if self._busy is None and self._pending:
                pending = bytes(self._pending)
                self._pending.clear()
                self._feed(pending)
        if closed and agent is self._agent:
            self._out(_cooked(agent.read_output()))
            agent.proc.wait()
            if self._busy == 0:  # it never started: a reboot would fail the same way
                log.error("MicroPython failed to start (exit %s)", agent.proc.returncode)
                self._sel.unregister(agent.out)
                self._sel.unregister(agent.ctl)
                agent.close()
                self._agent = None
                self._busy = None
                self._out(b"virtual node: MicroPython failed to start; Ctrl-D retries\r\n")
                return
            log.warning("MicroPython exited (%s): rebooting", agent.proc.returncode)
            self._boot()

    # input: the REPL's state machine

    def _feed(self, data: bytes) -> None:
        for i, c in enumerate(data):
            if self._busy is not None:
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
            if self._busy is not None and i + 1 < len(data):
                self._pending += data[i + 1:]
                return

    def _interrupt(self) -> None:
        if self._agent is None or self._busy is None:
            return
        if self._busy == 0:
            return  # still starting: the unix port takes no SIGINT before it runs code
        self._agent.interrupt()
        if self._interrupt_deadline is None:
            self._interrupt_deadline = time.monotonic() + INTERRUPT_GRACE_S

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
                self._boot()
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
        self._out(b"\x04" + _cooked(text.encode()) + b"\x04")
        if kind == b"R":
            self._boot()
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
                self._boot()
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
        self._out(_cooked(text.encode()))
        if kind == b"R":
            self._out(b"\r\n")
            self._boot()
        else:
            self._out(b">>> ")

    # the loop

    def _serve(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                events = self._sel.select(timeout=TICK_S / 2)
            except OSError:
                break
            for key, mask in events:
                try:
                    self._event(key, mask)
                except Exception:
                    log.exception("virtual node: %s", key.data)
            now = time.monotonic()
            if self._interrupt_deadline is not None and now > self._interrupt_deadline:
                log.warning("Ctrl-C did not stop the program: restarting MicroPython")
                self._interrupt_deadline = None
                self._boot()
            if now >= next_tick:
                next_tick = now + TICK_S
                self.world.tick()

    def _event(self, key: selectors.SelectorKey, mask: int) -> None:
        data = key.data
        if data == "wake":
            os.read(self._wake_r, 64)
        elif data == "agent-out":
            if self._agent is not None:
                self._out(_cooked(self._agent.read_output()))
        elif data == "agent-ctl":
            self._agent_replies()
        elif data == "listen" and self._listener is not None:
            conn, addr = self._listener.accept()
            conn.setblocking(False)
            ep = Endpoint(f"tcp {addr}", conn.fileno(), conn)
            self._endpoints.append(ep)
            self._sel.register(conn, selectors.EVENT_READ, ep)
        elif data == "control" and self._control is not None:
            conn, _ = self._control.accept()
            conn.setblocking(False)
            self._control_clients[conn] = b""
            self._sel.register(conn, selectors.EVENT_READ, "control-client")
        elif data == "control-client":
            self._control_input(key.fileobj)  # type: ignore[arg-type]
        elif isinstance(data, Endpoint):
            if mask & selectors.EVENT_WRITE:
                data.flush()
                if not data.out:
                    self._sel.modify(key.fileobj, selectors.EVENT_READ, data)
            if mask & selectors.EVENT_READ:
                incoming = data.read()
                if incoming is None:
                    self._drop(data)
                elif incoming:
                    self._current = data
                    self._feed(incoming)

    def _drop(self, ep: Endpoint) -> None:
        if ep.conn is not None:
            self._sel.unregister(ep.conn)
            ep.conn.close()
        self._endpoints.remove(ep)
        if self._current is ep:
            self._current = self._endpoints[0] if self._endpoints else None

    def _control_input(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(4096)
        except OSError:
            chunk = b""
        if not chunk:
            self._sel.unregister(conn)
            self._control_clients.pop(conn, None)
            conn.close()
            return
        buf = self._control_clients[conn] + chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            reply = self.world.command(line.decode(errors="replace"))
            with contextlib.suppress(OSError):
                conn.sendall(reply.encode() + b"\n")
        self._control_clients[conn] = buf


# --- the command line --------------------------------------------------------------------------


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


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="kinsight-field virtual-node",
        description="Run a virtual Kinsight node (the firmware under the MicroPython unix "
                    "port) behind a pseudo-terminal that mpremote can connect to.")
    parser.add_argument("--pty", required=True, type=Path,
                        help="make PATH a link to the node's pseudo-terminal")
    parser.add_argument("--socket", type=_host_port, metavar="HOST:PORT",
                        help="also serve the REPL on TCP (mpremote connect socket://HOST:PORT)")
    parser.add_argument("--flash", type=Path, help="the node's flash folder "
                        "(default: a new temporary folder)")
    parser.add_argument("--traces", type=_traces_arg, action="append", default=[],
                        metavar="NAME=SEED[,...]",
                        help="replay tools/traces.py traces: seat, tap, presence, bed")
    parser.add_argument("--trace-speed", type=float, default=1.0,
                        help="replay traces this many times faster than real time")
    parser.add_argument("--control", type=_host_port, metavar="HOST:PORT",
                        help="accept world commands (sit, stand, tap on 6, enter, ...) here")
    parser.add_argument("--heap", default=ESP32_HEAP,
                        help="MicroPython heap (default %(default)s, an ESP32's; the "
                             "firmware's .mpy load into it, where a board runs them frozen)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    flash: Path = args.flash or Path(tempfile.mkdtemp(prefix="kinsight-flash-"))
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
        print(f"virtual-node: {exc}", file=sys.stderr)
        node.stop()
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

