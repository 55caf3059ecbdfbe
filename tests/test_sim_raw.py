"""Raw signals of simulated days through the firmware's extractors under MicroPython
(precompiled, on an ESP32's free heap), against the simulator's event level."""

from __future__ import annotations

import array
import json
from pathlib import Path

import pytest

from kinsight.simulation import raw_day
from kinsight_wire import ET_DRAW, ET_SIT, ET_VISIT
from support import REPO, run_micropython

CASES = [("john", 5, 3), ("daphne", 6, 9), ("healthy", 7, 2)]


@pytest.mark.parametrize(("persona", "seed", "day"), CASES)
def test_firmware_finds_the_simulated_events(tmp_path: Path, persona: str, seed: int,
                                             day: int) -> None:
    raw = raw_day(persona, seed, day, hours=(6, 22))
    files = [tmp_path / n for n in ("seat.bin", "tap.bin", "toilet.bin")]
    files[0].write_bytes(array.array("H", raw.seat).tobytes())
    files[1].write_bytes(array.array("I", raw.tap).tobytes())
    files[2].write_bytes(bytes(int(p) for p in raw.toilet))
    proc = run_micropython(REPO / "tests" / "firmware" / "sim_raw_feed.py", *map(str, files))
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert lines[-1] == {"done": True}
    found = lines[:-1]
    kinds = {"seat": ET_SIT, "tap": ET_DRAW, "toilet": ET_VISIT}
    for sensor, kind in kinds.items():
        truth = [a for a in raw.events if a.sensor == sensor]
        seen = [e for e in found if e["sensor"] == sensor]
        assert truth, f"no {sensor} episodes in the sample"
        assert [e["type"] for e in seen] == [kind] * len(seen)
        assert len(seen) == len(truth), sensor
        for e, a in zip(seen, truth, strict=True):
            assert abs(e["start_ms"] - (a.start_ms - raw.t0_ms)) <= 1000, (sensor, e, a)
            if sensor == "tap":
                assert a.value is not None
                assert abs(e["volume_ml"] - a.value) <= 0.02 * a.value, (e, a)
            if sensor == "seat" and a.value is not None:
                assert abs(e["rise_ds"] / 10 - a.value) <= 0.3, (e, a)


def test_heart_rate_is_worn_from_each_reading_to_the_next() -> None:
    from kinsight.residents import Activity
    from kinsight.simulation import render
    from kinsight.simulation.raw_signals import HR_HOLD_MS, HR_MS

    minute = 60000
    t0 = 1_700_000_000_000
    readings = [Activity("r", "heart_rate", t0 + m * minute, t0 + m * minute, bpm)
                for m, bpm in ((480, 72.0), (495, 90.4), (600, 66.0))]
    raw = render(readings, t0, t0 + 24 * 60 * minute, "hr")
    assert len(raw.heart_rate) == 24 * 3600 * 1000 // HR_MS
    assert raw.events == readings

    def worn(m0: float, m1: float) -> list[int]:
        return raw.heart_rate[int(m0 * minute) // HR_MS:int(m1 * minute) // HR_MS]

    assert set(worn(0, 480)) == {0}  # the night before: nothing received
    assert all(70 <= v <= 74 for v in worn(480, 495))
    assert all(88 <= v <= 92 for v in worn(495, 495 + HR_HOLD_MS / minute))
    assert len(set(worn(480, 495))) > 1  # around the reading, not flat
    assert set(worn(495 + HR_HOLD_MS / minute, 600)) == {0}  # no reading: taken off
    assert all(64 <= v <= 68 for v in worn(600, 600 + HR_HOLD_MS / minute))
    assert set(worn(600 + HR_HOLD_MS / minute, 24 * 60)) == {0}
    assert render(readings, t0, t0 + 24 * 60 * minute, "hr") == raw  # seeded by the key
