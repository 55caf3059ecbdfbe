"""The virtual node's MicroPython side: runs the bridge's code blocks in one globals dict.

Started by kinsight_field.virtual_node under the unix port with an ESP32's heap.
The node's flash folder is mounted at "/" (so "/lib", "/main.py" and the
firmware's "/config.json" land in it) and the staged "frozen" modules, the
virtual hal among them, at a hidden "/.frozen" no listing shows.

Requests on stdin: kind (1 byte: "x" file input, "s" single, as the friendly REPL),
seq (u32 LE), length (u32 LE), then "filename\\0source". Program output goes to
stdout as it comes; after each block the agent writes to fd KINSIGHT_VNODE_CTL "D", seq, length
and the exception as MicroPython prints it (empty when none), or "R", seq, 0
when the block raised SystemExit: the bridge then soft-reboots the node ("H", seq, 0 when
it was the virtual hal's reset(): a hard reset, which runs main.py). KeyboardInterrupt
arrives as SIGINT; one that lands between blocks is ignored.
"""

# pyright: reportAttributeAccessIssue=false
# (MicroPython: os.mount, os.VfsPosix, sys.print_exception, gc.mem_free)

import gc
import io
import os
import struct
import sys

from flashvfs import ROM as _ROM
from flashvfs import FlashVfs

_HARD = "\0hard"  # what a block that asked for a hard reset gives back


def _read(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _traceback(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    lines = buf.getvalue().split("\n")
    # the agent's own frames are no part of the program's traceback
    return "\n".join(line for line in lines if "agent.py" not in line and "agent.mpy" not in line)


def _run(kind, payload, scope):
    nul = payload.find(b"\0")
    filename = payload[:nul].decode()
    source = payload[nul + 1 :]
    try:
        code = compile(source.decode(), filename, "single" if kind == b"s" else "exec")
        payload = source = None
        exec(code, scope)
        return ""
    except SystemExit as exc:
        # sys.exit() soft-reboots, as on a board; the virtual hal's reset() is a hard reset
        return _HARD if exc.args and exc.args[0] == "hard reset" else None
    except BaseException as exc:  # everything the program raises goes back to the REPL
        return _traceback(exc)


def _reply(control, seq, text):
    data = b"" if text is None or text is _HARD else text.encode()
    kind = b"H" if text is _HARD else b"R" if text is None else b"D"
    message = kind + struct.pack("<II", seq, len(data)) + data
    while True:
        try:
            control.write(message)
            return
        except KeyboardInterrupt:
            # a late Ctrl-C; the bridge ignores a second reply for the same seq
            pass


def main():
    flash = os.getenv("KINSIGHT_VNODE_FLASH")
    rom = os.getenv("KINSIGHT_VNODE_ROM")
    control = open("/dev/fd/" + (os.getenv("KINSIGHT_VNODE_CTL") or "3"), "wb")
    stdin = sys.stdin.buffer
    os.umount("/")
    os.mount(FlashVfs(flash, rom), "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/" + _ROM, "/lib"]
    scope = {"__name__": "__main__"}
    _reply(control, 0, "")  # ready
    while True:
        try:
            header = _read(stdin, 9)
            kind = header[:1]
            seq, length = struct.unpack("<II", header[1:])
            payload = _read(stdin, length)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        header = None
        text = "Traceback (most recent call last):\nKeyboardInterrupt: \n"
        try:
            text = _run(kind, payload, scope)
            payload = None
            gc.collect()
        except KeyboardInterrupt:
            pass
        _reply(control, seq, text)


main()
