"""Why the node last stopped: a small ring of crash records in flash.

An uncaught exception in the node's program (at boot or in its loop) and a reset by
the watchdog each leave one record, the newest ``_KEEP`` kept, in /kinsight/crashes
(one line each, tab-separated):

    time_s  reset cause  what  the last lines of its traceback, " | "-joined

``kinsight-field status`` and ``logs`` show them; the boot guard counts the failed
boots that follow, and safe mode says which crash it follows. Writing a record
allocates (the traceback is formatted), which is fine: it happens once, on the way
down, never in an interrupt handler.
"""

import io
import os
import sys
import time

from micropython import const

from kinsight_wire import RESET_CAUSES

_KEEP = const(4)
_TRACE_LINES = const(3)
_FIELD_MAX = const(160)
# Unix seconds, as the wire's: the ESP32 port's clock counts from 2000.
_EPOCH_OFFSET_S = 946684800 if time.gmtime(0)[0] == 2000 else 0


def _read(path):
    try:
        with open(path) as f:
            return [line for line in f.read().split("\n") if line]
    except OSError:
        return []


def _clean(text, tail=False):
    text = str(text).replace("\t", " ").replace("\n", " ")
    return text[-_FIELD_MAX:] if tail else text[:_FIELD_MAX]  # a trace's end is its point


def _cause_name(code):
    for value, name in RESET_CAUSES:
        if value == code:
            return name
    return "unknown"


def record(path, reset_cause, what, trace=""):
    """Add one record (the oldest goes once there are _KEEP)."""
    line = "%d\t%s\t%s\t%s" % (int(time.time()) + _EPOCH_OFFSET_S, _cause_name(reset_cause),
                               _clean(what),
                               _clean(trace, tail=True))
    lines = _read(path)[-(_KEEP - 1):]
    lines.append(line)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        os.rename(tmp, path)
    except OSError:  # FAT will not rename onto a file
        os.remove(path)
        os.rename(tmp, path)


def record_exception(path, reset_cause, exc):
    """The exception that stopped the program, with its traceback's last lines."""
    buf = io.StringIO()
    sys.print_exception(exc, buf)  # pyright: ignore[reportAttributeAccessIssue, reportArgumentType]
    text = buf.getvalue()  # pyright: ignore[reportAttributeAccessIssue]
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    what = lines[-1] if lines else "%s: %s" % (type(exc).__name__, exc)
    record(path, reset_cause, what, " | ".join(lines[-1 - _TRACE_LINES:-1]))


def unreported(path):
    """The records the host has not been told of (all, once the ring has turned past
    the last one it was)."""
    lines = _read(path)
    told = _read(path + ".told")
    if told and told[0] in lines:
        lines = lines[lines.index(told[0]) + 1:]
    return _parse(lines)


def mark_reported(path):
    """The host has been told of every record there is now."""
    lines = _read(path)
    if not lines:
        return
    with open(path + ".told", "w") as f:
        f.write(lines[-1] + "\n")


def cause_code(name):
    for value, known in RESET_CAUSES:
        if known == name:
            return value
    return 0


def records(path):
    """The records, oldest first, as dicts (time_s, reset_cause, what, trace)."""
    return _parse(_read(path))


def _parse(lines):
    out = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 4:
            try:
                t = int(parts[0])
            except ValueError:
                continue
            out.append({"time_s": t, "reset_cause": parts[1], "what": parts[2],
                        "trace": parts[3]})
    return out
