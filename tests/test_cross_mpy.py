"""Frames built by the firmware code under MicroPython, decoded by the host."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kinsight_wire as wire
from kinsight.ingest import IngestLimits, Ingestor, StampLimits
from kinsight.store import Store
from kinsight.wire import Header, encode_frame, open_frame
from support import REPO, run_micropython

KEY = bytes(range(100, 132))
EMIT = REPO / "tests" / "firmware" / "emit_frames.py"
u32 = st.integers(0, wire.U32_MAX)
ENUM = {"type": [n for _, n in wire.EVENT_TYPES], "role": [n for _, n in wire.ROLES],
        "reset_cause": [n for _, n in wire.RESET_CAUSES],
        "crash_cause": [n for _, n in wire.RESET_CAUSES]}


def items(fields) -> st.SearchStrategy[dict]:
    required, optional = {}, {}
    for _, name, vtype, req in fields:
        if name in ENUM:
            s = st.sampled_from(ENUM[name])
        elif name == "safe_mode":
            s = st.integers(0, 1)  # frames.cddl: 1 when in safe mode, 0 or absent otherwise
        elif vtype == wire.T_INT:
            s = st.integers(wire.I32_MIN, wire.I32_MAX)
        elif vtype == wire.T_TEXT:
            s = st.text(max_size=20).filter(lambda t: len(t.encode()) <= wire.MAX_TEXT_BYTES)
        else:
            s = u32
        (required if req == wire.REQUIRED else optional)[name] = s
    return st.fixed_dictionaries(required, optional=optional)


messages = st.one_of(
    st.builds(lambda ev, t: {"kind": "events", "time_s": t, "body": {"events": ev}},
              st.lists(items(wire.EVENT_FIELDS), min_size=1, max_size=64), u32),
    st.builds(lambda sm, t: {"kind": "summary", "time_s": t, "body": {"summaries": sm}},
              st.lists(items(wire.SUMMARY_FIELDS), min_size=1, max_size=8), u32),
    st.builds(lambda body, t: {"kind": "status", "time_s": t, "body": body},
              items(wire.STATUS_FIELDS), u32),
)


def emit(spec: dict) -> list[list[bytes]]:
    head = {k: v for k, v in spec.items() if k != "messages"}
    # Raw UTF-8: MicroPython's json does not join escaped surrogate pairs into one character.
    lines = [json.dumps(x, ensure_ascii=False) for x in [head, *spec["messages"]]]
    proc = run_micropython(EMIT, stdin="\n".join(lines).encode() + b"\n")
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
    return [[] if line.startswith("refused: ") else [bytes.fromhex(h) for h in line.split()]
            for line in proc.stdout.decode().splitlines()]


def fits(message: dict, mtu: int) -> bool:
    """Whether a node may send the message: at most MAX_MESSAGE_BYTES, in at most
    MAX_FRAGMENTS pieces, as the host's own encoder measures it."""
    whole = encode_frame(KEY, message["kind"], Header(node_id=4242, boot=1, seq=0,
                                                      time_s=message["time_s"]), message["body"])
    pieces = -(-len(whole) // (mtu - wire.FRAGMENT_OVERHEAD)) if len(whole) > mtu else 1
    return len(whole) <= wire.MAX_MESSAGE_BYTES and pieces <= wire.MAX_FRAGMENTS


def meaning(body) -> dict:
    """A decoded body as the names and values the spec used (absent optionals dropped)."""
    def clean(d):
        return {k: [clean(x) for x in v] if isinstance(v, tuple) else v
                for k, v in d.items() if v is not None}

    return clean(asdict(body))


EXAMPLES = int(os.environ.get("KINSIGHT_CROSS_EXAMPLES", "12"))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(messages, min_size=1, max_size=12), mtu=st.sampled_from([250, 160]))
def test_firmware_frames_decode_to_what_was_meant(batch, mtu):
    spec = {"key": KEY.hex(), "node_id": 4242, "mtu": mtu, "boot_path": None,
            "messages": batch}
    out = emit(spec)
    assert len(out) == len(batch)
    store = Store(":memory:")
    store.set_node_key(4242, KEY, now_ms=0)
    # Any stamp: this is about the encoding, not about whether a clock could say it.
    ingestor = Ingestor(store, limits=IngestLimits(
        max_frame_bytes=mtu, stamps=StampLimits(earliest_time_s=0, max_ahead_s=2**32)))
    expected_seq = 0
    for message, frames in zip(batch, out, strict=True):
        assert bool(frames) == fits(message, mtu)  # refused exactly when too large
        if not frames:
            continue
        assert all(len(f) <= mtu for f in frames)
        results = ingestor.ingest_batch(frames)
        assert [r.status for r in results] == ["accepted"] * len(frames), results
        if len(frames) == 1:
            frame = open_frame(frames[0], KEY, max_frame_bytes=mtu)
        else:
            inner = results[-1].inner
            assert inner is not None and inner.status == "accepted"
            [(raw,)] = store.query("SELECT raw FROM frames WHERE seq = ?", (expected_seq,))
            frame = open_frame(raw, KEY, max_frame_bytes=None)
        assert frame.kind == message["kind"]
        assert (frame.header.node_id, frame.header.boot, frame.header.seq,
                frame.header.time_s) == (4242, 1, expected_seq, message["time_s"])
        assert meaning(frame.body) == message["body"]
        expected_seq += 1 + (len(frames) if len(frames) > 1 else 0)
    assert store.lost_frames() == {4242: 0}


def test_boot_count_survives_a_reboot_under_micropython(tmp_path):
    msg = {"kind": "status", "time_s": 5, "body": {"firmware": "x", "uptime_s": 1,
                                                   "reset_cause": "soft"}}
    spec = {"key": KEY.hex(), "node_id": 9, "mtu": 250,
            "boot_path": str(tmp_path / "boot"), "messages": [msg, msg]}
    boots = []
    for _ in range(3):
        frames = [f for fs in emit(spec) for f in fs]
        boots.append({open_frame(f, KEY).header.boot for f in frames})
    # A blank node starts a new life at a random boot; then each start counts up.
    (first,) = boots[0]
    assert first >= 0x10000 and boots == [{first}, {first + 1}, {first + 2}]


def test_firmware_and_host_see_the_same_constants():
    """The one constants module, imported by MicroPython and by CPython, gives the same
    numbers and tables; and no firmware module keeps a protocol number of its own."""
    script = ("import json, kinsight_wire as w\n"
              "print(json.dumps(dict((k, getattr(w, k)) for k in dir(w) if k[0] != '_' "
              "and type(getattr(w, k)) in (int, tuple))))\n")
    path = REPO / "tests" / "firmware" / "_dump_constants.py"
    path.write_text(script)
    try:
        proc = run_micropython(path)
    finally:
        path.unlink()
    assert proc.returncode == 0, proc.stderr.decode()
    seen = json.loads(proc.stdout)
    host = {k: getattr(wire, k) for k in dir(wire)
            if not k.startswith("_") and type(getattr(wire, k)) in (int, tuple)}
    assert len(host) > 100
    assert seen == json.loads(json.dumps(host))

    import re

    prefixes = ("PROTOCOL_", "MTU_", "TAG_", "FRAME_", "MAX_", "FRAGMENT_", "KIND_", "H_", "B_",
                "EV_", "SM_", "ST_", "FR_", "ACK_", "ET_", "ROLE_", "RESET_")
    protocol_names = {k for k, v in host.items() if type(v) is int and k.startswith(prefixes)}
    for source in (REPO / "firmware").rglob("*.py"):
        for m in re.finditer(r"^_?([A-Z][A-Z0-9_]+)\s*=", source.read_text(), re.M):
            assert m.group(1) not in protocol_names, f"{source.name} redefines {m.group(1)}"
