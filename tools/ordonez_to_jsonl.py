"""Convert an Ordonez ADL sensor recording to Kinsight's history JSON Lines.

    python tools/ordonez_to_jsonl.py OrdonezA_Sensors.txt --resident ordonez-a > a.jsonl

The source (Ordonez, de Toledo and Sanchis, Sensors 2013) is tab separated with
runs of tabs, CRLF line ends and two header lines; its columns are start time,
end time, location (the sensor), type and place. Times are local wall-clock
times without an offset, so they are written without one: ``kinsight import
--tz`` says where they were recorded. Sensors map to Kinsight's names:

    Seat -> seat, Bed -> bed, Toilet (flush) -> toilet, Basin (PIR) -> tap
    (basin use stands for water use; no volume), Shower -> shower,
    Maindoor -> door, Fridge -> fridge, Cabinet and Cupboard -> cupboard,
    Cooktop, Microwave and Toaster -> kitchen.

Rows whose sensor is not in the table, or that cannot be read, are reported on
stderr with their line numbers and the exit status is 1 (nothing is written).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from datetime import datetime

SENSORS = {
    "seat": "seat",
    "bed": "bed",
    "toilet": "toilet",
    "basin": "tap",
    "shower": "shower",
    "maindoor": "door",
    "fridge": "fridge",
    "cabinet": "cupboard",
    "cupboard": "cupboard",
    "cooktop": "kitchen",
    "microwave": "kitchen",
    "toaster": "kitchen",
}

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_SPLIT = re.compile(r"\t+")


def convert(lines: Iterable[str], resident: str) -> tuple[list[dict[str, str]], list[str]]:
    """The events of a recording's lines, and the problems found (``line N: ...``)."""
    events: list[dict[str, str]] = []
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("Start time") or set(line) <= {"-", "\t", " "}:
            continue
        cols = [c.strip() for c in _SPLIT.split(line)]
        if len(cols) < 3:
            problems.append(f"line {number}: expected start, end and location, got {line!r}")
            continue
        start_text, end_text, location = cols[0], cols[1], cols[2]
        sensor = SENSORS.get(location.lower())
        if sensor is None:
            problems.append(f"line {number}: unknown sensor {location!r}")
            continue
        try:
            start = datetime.strptime(start_text, _TIME_FORMAT)
            end = datetime.strptime(end_text, _TIME_FORMAT)
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if end < start:
            problems.append(f"line {number}: ends ({end_text}) before it starts ({start_text})")
            continue
        event = {"resident": resident, "sensor": sensor, "start": start.isoformat(),
                 "end": end.isoformat()}
        if len(cols) >= 5 and cols[4]:
            event["room"] = cols[4].lower()
        events.append(event)
    return events, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("sensors", help="an Ordonez *_Sensors.txt file")
    parser.add_argument("--resident", required=True, help="the resident's id in Kinsight")
    args = parser.parse_args(argv)
    try:
        with open(args.sensors, encoding="ascii", errors="replace", newline="") as f:
            text = f.read()
    except OSError as exc:
        print(f"ordonez_to_jsonl: {args.sensors}: {exc.strerror}", file=sys.stderr)
        return 1
    events, problems = convert(text.splitlines(), args.resident)
    if problems:
        for problem in problems:
            print(f"ordonez_to_jsonl: {args.sensors}: {problem}", file=sys.stderr)
        return 1
    out = sys.stdout
    for event in events:
        out.write(json.dumps(event, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
