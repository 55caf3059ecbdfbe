"""VirtualNode: a node's REPL served on a pty (and TCP) from one thread, run by MicroPython.

The thread multiplexes the clients (endpoints.py), the MicroPython process
(agent_process.py) and the world's control clients (virtual_world.py), feeds the
clients' bytes to the REPL (repl.py), and boots the node as a board does: the
frozen firmware staged afresh (frozen_modules.py), then boot.py, and main.py
from the friendly REPL. What boot.py and main.py print goes to every client, as a
board's UART reaches whoever listens (``kinsight-field logs --follow``, which sends
nothing); a REPL answer goes to the client that asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import selectors
import shutil
import socket
import tempfile
import threading
import time
import tty
import weakref
from pathlib import Path

from .agent_process import ESP32_HEAP, Agent
from .endpoints import Endpoint
from .frozen_modules import heap_bytes, import_cost, stage
from .repl import BANNER, RAW_BANNER, SOFT_REBOOT, OnDone, Repl, cooked
from .virtual_world import World

log = logging.getLogger(__name__)

INTERRUPT_GRACE_S = 2.0
TICK_S = 0.1


def nvs_for(flash: Path) -> Path:
    """Where a virtual node on this flash folder keeps its NVS (its secrets)."""
    return flash.with_name(flash.name + ".nvs")


def _uid_for(flash: Path) -> str:
    return hashlib.sha256(flash.resolve().name.encode()).hexdigest()[:12]


class VirtualNode:
    """A virtual node serving its REPL on a pty (and optionally TCP) from a thread.

    >>> node = VirtualNode(flash)            # doctest: +SKIP
    >>> node.start(); node.world.sit_down()  # doctest: +SKIP
    """

    def __init__(self, flash: Path, pty_path: Path | None = None,
                 socket_addr: tuple[str, int] | None = None,
                 control_addr: tuple[str, int] | None = None,
                 traces: dict[str, int] | None = None, trace_speed: float = 1.0,
                 heap: str = ESP32_HEAP, nvs: Path | None = None) -> None:
        self.heap = heap  # what a board has free for the firmware (its modules frozen)
        self.import_cost = 0  # measured at each boot (frozen_modules.import_cost)
        self.flash = flash.resolve()
        self.flash.mkdir(parents=True, exist_ok=True)
        # The node's NVS partition (its secrets): a file beside the flash folder, so that
        # nothing on the node's filesystem reaches it, kept as long as the flash is.
        self.nvs = nvs.resolve() if nvs is not None else nvs_for(self.flash)
        self.pty_path = pty_path
        self.rom = Path(tempfile.mkdtemp(prefix="kinsight-vnode-"))
        # stop() removes it; this is for a node that is never stopped (or never started)
        self._remove_rom = weakref.finalize(self, shutil.rmtree, self.rom, ignore_errors=True)
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
        self._stopped = False
        self._busy: int | None = None  # the seq of the block running; 0 till the agent is up
        self._on_done: OnDone | None = None
        self._interrupt_deadline: float | None = None
        self._boot_steps: list[str] = []
        self._booting = False  # boot.py and main.py run: their output goes to every client
        self._repl = Repl(self._out, self._run, self._boot, self._interrupt,
                          lambda: self._busy is not None,
                          hard_reset=lambda: self._boot(hard=True))
        self._agent: Agent | None = None
        self.boots = 0

    # lifecycle

    def start(self) -> VirtualNode:
        try:
            self._start()
        except BaseException:
            self.stop()  # a node that failed to start holds nothing open, leaves no folder
            raise
        return self

    def _start(self) -> None:
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

    def stop(self) -> None:
        if self._stopped:
            return  # twice would close descriptor numbers that may be reused by now
        self._stopped = True
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
        self._remove_rom()

    def __enter__(self) -> VirtualNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def secrets(self) -> dict[str, bytes]:
        """What the node's NVS holds, read from the host file (for tests and a look)."""
        try:
            stored = json.loads(self.nvs.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): bytes.fromhex(v) for k, v in stored.items()}

    @property
    def running(self) -> bool:
        """Whether a program runs (main.py's loop, or a client's command)."""
        return self._busy is not None

    @property
    def mode(self) -> str:
        """The REPL's: "friendly", "paste" or "raw"."""
        return self._repl.mode

    def control(self, line: str) -> str:
        return self.world.command(line)

    # output

    def _out(self, data: bytes) -> None:
        if not data:
            return
        # A board has one UART: what its program prints reaches whoever listens, also a
        # client that never sent a byte (logs --follow). A REPL answer goes to the client
        # that asked, so two clients' sessions do not mix.
        for ep in self._endpoints if self._booting else [self._current]:
            if ep is not None:
                ep.write(data)
                if ep.out:
                    self._watch_writes(ep)

    def _watch_writes(self, ep: Endpoint) -> None:
        key = ep.conn if ep.conn is not None else ep.fd
        with contextlib.suppress(KeyError, ValueError):
            self._sel.modify(key, selectors.EVENT_READ | selectors.EVENT_WRITE, ep)

    # the MicroPython process

    def _boot(self, first: bool = False, hard: bool = False) -> None:
        """(Re)starts MicroPython on the flash folder: a power-on, a hard reset (both run
        main.py, whatever the REPL was in) or a soft reboot."""
        if self._agent is not None:
            self._sel.unregister(self._agent.out)
            self._sel.unregister(self._agent.ctl)
            self._agent.close()
        if not first:
            self._out(SOFT_REBOOT)
        self.boots += 1
        stage(self.rom)  # the firmware as it is now: a reboot picks up edits
        # The board's free heap, plus what its frozen modules cost the unix port's heap.
        self.import_cost = import_cost(self.rom)
        heap = str(heap_bytes(self.heap) + self.import_cost)
        if hard:
            self._repl.mode = "friendly"  # a board comes out of a reset at the friendly REPL
        self._agent = Agent(self.flash, self.rom, _uid_for(self.flash),
                            "power" if first else "hard" if hard else "soft", heap, self.nvs)
        self._sel.register(self._agent.out, selectors.EVENT_READ, "agent-out")
        self._sel.register(self._agent.ctl, selectors.EVENT_READ, "agent-ctl")
        self._busy = 0  # the agent's ready reply has seq 0
        self._on_done = lambda kind, text: self._next_boot_step()
        self._booting = True
        self._boot_steps = ["boot.py"]
        if self._repl.mode == "friendly":
            self._boot_steps.append("main.py")
        self._repl.reset()

    def _next_boot_step(self) -> None:
        while self._boot_steps:
            name = self._boot_steps.pop(0)
            path = self.flash / name
            if path.is_file():
                self._run(b"x", name, path.read_bytes(), self._boot_step_done)
                return
        if self._repl.mode == "raw":
            self._out(RAW_BANNER + b">")
        else:
            self._out(BANNER + b">>> ")
        self._booting = False

    def _boot_step_done(self, kind: bytes, text: str) -> None:
        self._out(cooked(text.encode()))
        if kind in (b"R", b"H"):
            self._boot(hard=kind == b"H")
        else:
            self._next_boot_step()

    def _run(self, kind: bytes, filename: str, source: bytes,
             on_done: OnDone) -> None:
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
            self._out(cooked(agent.read_output()))
            self._busy = None
            self._interrupt_deadline = None
            on_done, self._on_done = self._on_done, None
            if on_done is not None:
                on_done(kind, text)
            if self._busy is None:
                self._repl.resume()
        if closed and agent is self._agent:
            self._out(cooked(agent.read_output()))
            agent.proc.wait()
            if self._busy == 0:  # it never started: a reboot would fail the same way
                log.error("MicroPython failed to start (exit %s)", agent.proc.returncode)
                self._sel.unregister(agent.out)
                self._sel.unregister(agent.ctl)
                agent.close()
                self._agent = None
                self._busy = None
                self._booting = False
                self._out(b"virtual node: MicroPython failed to start; Ctrl-D retries\r\n")
                return
            log.warning("MicroPython exited (%s): rebooting", agent.proc.returncode)
            self._boot()

    def _interrupt(self) -> None:
        if self._agent is None or self._busy is None:
            return
        if self._busy == 0:
            return  # still starting: the unix port takes no SIGINT before it runs code
        self._agent.interrupt()
        if self._interrupt_deadline is None:
            self._interrupt_deadline = time.monotonic() + INTERRUPT_GRACE_S

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
                self._out(cooked(self._agent.read_output()))
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
                    self._repl.feed(incoming)

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
