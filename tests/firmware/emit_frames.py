# Builds frames with the firmware code, for the host's cross-implementation tests.
#
#   micropython emit_frames.py < spec.jsonl
#
# The first line: {"key": hex, "node_id": int, "mtu": int, "boot_path": str or null};
# then one message a line: {"kind": name, "time_s": int, "body": {field name: value}}.
# One message at a time, as a node holds them, so the test data fits the heap.
# Names are turned into wire numbers with the tables of kinsight_wire, as a
# node's configuration would be. Prints, per message, its frames in hex on one
# line separated by spaces (one frame, or the fragments of a larger message), or
# "refused: why" when the firmware will not send the message.

import gc
import json
import sys
from binascii import hexlify, unhexlify

import kinsight_wire as w
from framing import FrameBuilder, FrameError, Signer
from sequence import SequenceCounter

_ENUMS = {"type": dict((n, k) for k, n in w.EVENT_TYPES),
          "role": dict((n, k) for k, n in w.ROLES),
          "reset_cause": dict((n, k) for k, n in w.RESET_CAUSES),
          "crash_cause": dict((n, k) for k, n in w.RESET_CAUSES)}


def to_wire(values, fields, item_fields):
    out = {}
    by_name = dict((name, (key, vtype)) for key, name, vtype, _ in fields)
    for name, value in values.items():
        key, vtype = by_name[name]
        if name in _ENUMS:
            value = _ENUMS[name][value]
        elif vtype == w.T_LIST:
            value = [to_wire(x, item_fields, None) for x in value]
        out[key] = value
    return out


def main():
    spec = json.loads(sys.stdin.readline())
    kinds = dict((name, (kind, body, item)) for kind, name, body, item in w.KINDS)
    builder = FrameBuilder(Signer(unhexlify(spec["key"])), spec["node_id"],
                           SequenceCounter(spec.get("boot_path")), spec["mtu"])
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        message = json.loads(line)
        kind, body_fields, item_fields = kinds[message["kind"]]
        time_s = message["time_s"]
        body = to_wire(message["body"], body_fields, item_fields)
        message = line = None
        try:
            frames = builder.build(kind, body, time_s)
        except FrameError as err:
            print("refused: %s" % err)
            continue
        for f in frames:
            sys.stdout.write(hexlify(f).decode())
            sys.stdout.write(" ")
        sys.stdout.write("\n")
        frames = body = None
        gc.collect()


main()
