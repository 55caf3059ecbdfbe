"""The world a virtual node's sensors see: the raw values its virtual hal reads.

Values come from tools/traces.py's traces replayed in real time, or are set
live through ``World``'s methods or its one-line control protocol (``sit``,
``stand``, ``tap on 6``, ``tap off``, ``enter``, ``leave``, ``set NAME VALUE``,
``get``, ``trace NAME SEED [SPEED]``, ``stop``), which a node serves on
``--control HOST:PORT`` and ``send_control`` speaks. The world lives in a file
that device/hal.py reads on the node (lines "name value").
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from kinsight.simulation import micropython as mpy

SEAT_EMPTY = 300
SEAT_SITTING = 1800
PULSES_PER_L = 450

TRACE_KINDS = {"seat": "seat", "tap": "pulses", "flow": "pulses", "presence": "presence",
               "bed": "bed"}


class VirtualNodeError(Exception):
    """A virtual node cannot do what it is asked: a trace it has not got, say."""


def _traces_module() -> ModuleType:
    path = mpy.source_root() / "tools" / "traces.py"
    spec = importlib.util.spec_from_file_location("kinsight_vnode_traces", path)
    if spec is None or spec.loader is None:
        raise VirtualNodeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
