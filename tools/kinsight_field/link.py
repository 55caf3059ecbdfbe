"""A connection to a node's raw REPL over mpremote's SerialTransport.

``Link.open(port)`` takes a serial port, a pty or ``socket://HOST:PORT`` and
turns every way that can fail into a CommandError that says what to do. The
node's side of each question is firmware/fieldapi.py; its answers are JSON lines.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import serial
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

VERSION_FILE = "/lib/kinsight_version"
_CHUNK = 2048  # bytes of a file per raw-REPL command


class CommandError(Exception):
    """A command cannot do what it was asked; the message says why and what to do."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


# Node-side helpers sent before the firmware (and fieldapi) may be there.
_NODE_FS = """\
import os
def _ex(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
def _isdir(p):
    return os.stat(p)[0] & 0x4000 != 0
def _rmtree(p):
    if not _ex(p):
        return
    if _isdir(p):
        for n in os.listdir(p):
            _rmtree(p + '/' + n)
        os.rmdir(p)
    else:
        os.remove(p)
def _mv(a, b):
    try:
        os.rename(a, b)
    except OSError:
        os.remove(b)
        os.rename(a, b)
def _sha(p):
    import hashlib, binascii
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        while True:
            b = f.read(512)
            if not b:
                break
            h.update(b)
    return binascii.hexlify(h.digest()).decode()
def _hashes(dirs, files):
    out = {}
    def walk(d):
        try:
            names = os.listdir(d)
        except OSError:
            return
        for n in names:
            p = d + '/' + n
            if _isdir(p):
                walk(p)
            else:
                out[p] = _sha(p)
    for d in dirs:
        walk(d)
    for p in files:
        if _ex(p):
            out[p] = _sha(p)
    print(repr(out))
def _cp(a, b):
    with open(a, 'rb') as fa, open(b, 'wb') as fb:
        while True:
            buf = fa.read(512)
            if not buf:
                break
            fb.write(buf)
"""


def check_port(port: str, baud: int) -> bool:
    """A CommandError unless ``port`` is there and free; whether it is a socket://."""
    is_socket = port.startswith("socket://")
    if not is_socket and not os.path.exists(port):
        raise CommandError(f"no device at {port}: check the USB cable and run "
                           "`kinsight-field list` to see the connected nodes")
    if not is_socket:
        probe_serial(port, baud)
    return is_socket


class Link:
    """One node's raw REPL, entered at open and left at close."""

    def __init__(self, transport: SerialTransport, port: str):
        self.transport = transport
        self.port = port
        self._fs_ready = False

    @classmethod
    def open(cls, port: str, baud: int = 115200) -> Link:
        is_socket = check_port(port, baud)
        try:
            transport = SerialTransport(port, baudrate=baud)
        except (TransportError, serial.SerialException, OSError) as exc:
            if is_socket:
                raise CommandError(f"nothing answers at {port} ({exc}): start the node "
                                   "(or the virtual node) and check the address") from None
            raise CommandError(f"cannot open {port}: it is busy (another program such as "
                               "mpremote, screen or `kinsight listen` has it): close that "
                               "program and try again") from None
        link = cls(transport, port)
        try:
            # mpremote prints what it got when it cannot enter the raw REPL: keep it quiet.
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    transport.enter_raw_repl(soft_reset=True)
                except TransportError:
                    # A tool killed mid-command can leave the board inside a raw paste:
                    # Ctrl-D ends it, Ctrl-C stops what it runs; then try once more.
                    line: Any = transport.serial
                    line.write(b"\x04\r\x03\x03")
                    time.sleep(0.5)
                    while line.inWaiting():
                        line.read(line.inWaiting())
                    transport.enter_raw_repl(soft_reset=True)
        except (TransportError, serial.SerialException, OSError) as exc:
            link.close()
            raise CommandError(f"{port} does not answer as a MicroPython board ({exc}): "
                               "press the board's reset button, or flash MicroPython "
                               "(see docs/field-guide.md)") from None
        return link

    def close(self) -> None:
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
        except (TransportError, serial.SerialException, OSError):
            pass
        try:
            self.transport.close()
        except (serial.SerialException, OSError):
            pass

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- running code ---------------------------------------------------------------------------

    def exec(self, code: str, timeout: float = 20) -> str:
        """Runs code on the node; its output, or CommandError with the node's error line."""
        try:
            out, err = self.transport.exec_raw(code, timeout=math.ceil(timeout))
        except (TransportError, serial.SerialException, OSError) as exc:
            raise CommandError(f"the connection to {self.port} was lost ({exc}): check the "
                               "cable and run the command again") from None
        if err:
            raise NodeError(err.decode(errors="replace"))
        return out.decode(errors="replace")

    def stream(self, code: str, on_line: Callable[[str], None], timeout: float = 10) -> None:
        """Runs code on the node, handing each line of its output to on_line as it comes."""
        pending = bytearray()

        def consume(data: bytes) -> None:
            pending.extend(data)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                on_line(line.decode(errors="replace").rstrip("\r"))

        try:
            self.transport.exec_raw_no_follow(code)
            _, err = self.transport.follow(math.ceil(timeout), consume)
        except (TransportError, serial.SerialException, OSError) as exc:
            raise CommandError(f"the connection to {self.port} was lost ({exc}): check the "
                               "cable and run the command again") from None
        if pending.strip(b"\x04 \r\n"):
            on_line(pending.decode(errors="replace").strip("\x04\r\n"))
        if err:
            raise CommandError(node_failure(NodeError(err.decode(errors="replace"))))

    def send(self, code: str) -> None:
        """Starts code on the node without waiting for it (a reset never answers)."""
        try:
            self.transport.exec_raw_no_follow(code)
        except (TransportError, serial.SerialException, OSError):
            pass

    def call(self, expr: str, timeout: float = 20) -> dict[str, Any]:
        """fieldapi.<expr> on the node: the JSON line it printed."""
        try:
            out = self.exec(f"import fieldapi\nfieldapi.{expr}", timeout=timeout)
        except NodeError as exc:
            if "ImportError" in exc.text and "fieldapi" in exc.text:
                raise CommandError(f"{self.port} is not a Kinsight node (import fieldapi "
                                   "failed): run `kinsight-field deploy --port "
                                   f"{self.port}`") from None
            raise CommandError(node_failure(exc)) from None
        return parse_json_line(out)

    def fs(self) -> None:
        if not self._fs_ready:
            self.exec(_NODE_FS)
            self._fs_ready = True

    # --- files ------------------------------------------------------------------------------

    def read_text(self, path: str) -> str | None:
        out = self.exec(f"try:\n print(repr(open({path!r}).read()))\nexcept OSError:\n"
                        " print('None')")
        value = eval_literal(out)
        return value if isinstance(value, str) else None

    def write_file(self, path: str, data: bytes,
                   progress: Callable[[int, int], None] | None = None) -> None:
        self.exec(f"import binascii\n_f=open({path!r},'wb')\n_w=_f.write\n"
                  "_d=binascii.a2b_base64")
        try:
            for at in range(0, len(data), _CHUNK):
                chunk = base64.b64encode(data[at:at + _CHUNK]).decode()
                self.exec(f"_w(_d({chunk!r}))")
                if progress is not None:
                    progress(min(at + _CHUNK, len(data)), len(data))
        finally:
            self.exec("_f.close()")

    def hashes(self, dirs: list[str], files: list[str]) -> dict[str, str]:
        self.fs()
        value = eval_literal(self.exec(f"_hashes({dirs!r}, {files!r})", timeout=60))
        if not isinstance(value, dict):
            raise CommandError("the node sent no file list: run the command again")
        return {str(k): str(v) for k, v in value.items()}

    def firmware_version(self) -> str | None:
        text = self.read_text(VERSION_FILE)
        return None if text is None else text.strip()

    def check_kinsight(self, expected: str) -> str:
        """The node's firmware version; CommandError unless it is this tool's."""
        found = self.firmware_version()
        if found is None:
            raise CommandError(f"{self.port} is not a Kinsight node (no {VERSION_FILE}): "
                               f"run `kinsight-field deploy --port {self.port}` first")
        if found != expected:
            raise CommandError(f"the node runs firmware {found} but this kinsight-field is for "
                               f"{expected}: run `kinsight-field deploy --port {self.port}`")
        return found

    def config(self) -> dict[str, Any]:
        text = self.read_text("/config.json")
        if text is None:
            raise CommandError(f"the node has no /config.json: run `kinsight-field provision "
                               f"--port {self.port} ...` first")
        try:
            value = json.loads(text)
        except ValueError:
            raise CommandError("the node's /config.json is not valid JSON: run "
                               "`kinsight-field provision` again") from None
        if not isinstance(value, dict):
            raise CommandError("the node's /config.json is not an object: provision it again")
        return value


class NodeError(Exception):
    """Code on the node raised; text is its traceback."""

    def __init__(self, text: str):
        super().__init__(last_error_line(text))
        self.text = text
        self.line = last_error_line(text)


def node_failure(exc: NodeError) -> str:
    if "MemoryError" in exc.line:
        return (f"the node ran out of memory ({exc.line}): run `kinsight-field deploy --mpy` "
                "so it runs precompiled modules, then try again")
    return f"the node failed: {exc.line}"


def probe_serial(port: str, baud: int) -> None:
    """Opens and closes the port once to tell 'in use' from 'not permitted'."""
    if not os.access(port, os.R_OK | os.W_OK):
        raise CommandError(f"no permission to open {port}: add yourself to the dialout group "
                           "(sudo usermod -aG dialout $USER, then log in again)")
    try:
        probe = serial.Serial(port, baudrate=baud, exclusive=True, timeout=0)
    except serial.SerialException as exc:
        raise CommandError(f"cannot open {port}: it is busy ({last_error_line(str(exc))}); "
                           "close the other program using it (mpremote, screen, "
                           "`kinsight listen`) and try again") from None
    probe.close()


def parse_json_line(out: str) -> dict[str, Any]:
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    raise CommandError(f"the node gave no answer the tool understands: {out.strip()[-200:]!r}")


def eval_literal(out: str) -> object:
    import ast

    text = out.strip().splitlines()[-1] if out.strip() else ""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise CommandError(f"the node gave an answer the tool cannot read: {text[:200]!r}"
                           ) from None


def now_ms() -> int:
    return int(time.time() * 1000)

