"""Convert an MIT "Activity Recognition in the Home" house to Kinsight's history JSON Lines.

    python tools/mit_to_jsonl.py DIR --resident mit-d > d.jsonl

DIR holds the house's ``houseD.sensors`` (start in seconds, read as the home's local
clock; duration in seconds; sensor id, tab separated) and ``houseD.sensor_names``
(sensor id, "Room,Thing"); the letter is found from the file names. The house has
state-change contacts only, and each maps to what it really tells:

    Toilet Flush -> toilet (a use of the toilet; a flush contact stays "on" long
        after the flush, so its duration says nothing of the visit)
    Sink or Shower faucet -> tap or shower (a use, without a volume)
    Door -> door, with its room: the foyer's door is the front door ("entrance"),
        the bathroom's is the bathroom door, others are doors inside the home
    Refrigerator, Freezer -> fridge; Cabinet, Drawer, Containers, Cereal -> cupboard
    Burner, Oven, Toaster, Microwave, Coffee machine, Dishwasher, Garbage disposal,
        Washing Machine, Laundry Dryer -> kitchen (an appliance used)
    Light switch, Lamp -> light; anything else (a window, a closet, a medicine
        cabinet, the DVD player, a fan) -> contact

Every event keeps its room (lower case). Times are written without an offset:
``kinsight import --tz`` says where they were recorded. Lines that cannot be read,
or name a sensor the names file does not know, are reported on stderr with their
line numbers and the exit status is 1 (nothing is written).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

# (words in the thing's name, Kinsight sensor), first match wins; lower case.
THINGS: tuple[tuple[str, str], ...] = (
    ("toilet flush", "toilet"),
    ("shower faucet", "shower"),
    ("faucet", "tap"),
    ("door", "door"),
    ("refrigerator", "fridge"),
    ("freezer", "fridge"),
    ("medicine cabinet", "contact"),
    ("cabinet", "cupboard"),
    ("drawer", "cupboard"),
    ("containers", "cupboard"),
    ("cereal", "cupboard"),
    ("burner", "kitchen"),
    ("oven", "kitchen"),
    ("toaster", "kitchen"),
    ("microwave", "kitchen"),
    ("coffee machine", "kitchen"),
    ("dishwasher", "kitchen"),
    ("garbage disposal", "kitchen"),
    ("washing machine", "kitchen"),
    ("laundry dryer", "kitchen"),
    ("light switch", "light"),
    ("lamp", "light"),
)
# The room whose door is the way in and out of the home.
ENTRANCE_ROOMS = frozenset({"foyer", "entrance", "hall", "hallway", "porch"})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ConvertError(Exception):
    """The house's files cannot be converted; the message says which file and why."""


def sensor_of(name: str) -> tuple[str, str]:
    """``"Bathroom,Toilet Flush"`` -> (Kinsight sensor, room)."""
    room, _, thing = name.partition(",")
    room, thing = room.strip().lower(), thing.strip().lower()
    sensor = next((s for words, s in THINGS if words in thing), "contact")
    if sensor == "door" and room in ENTRANCE_ROOMS:
        room = "entrance"
    return sensor, room


def read_names(lines: Iterable[str]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    names: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        ident, _, name = line.partition("\t")
        if not ident.strip().isdigit() or "," not in name:
            problems.append(f"line {number}: expected a sensor id and 'Room,Thing', "
                            f"got {line!r}")
            continue
        names[ident.strip()] = sensor_of(name)
    return names, problems


def convert(lines: Iterable[str], names: dict[str, tuple[str, str]], resident: str
            ) -> tuple[list[dict[str, str]], list[str]]:
    """The events of the sensors file's lines, and the problems found (``line N: ...``)."""
    events: list[dict[str, str]] = []
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        cols = line.split("\t")
        if len(cols) != 3 or not all(c.strip().isdigit() for c in cols):
            problems.append(f"line {number}: expected start, duration and sensor id "
                            f"(whole numbers), got {line!r}")
            continue
        start_s, duration_s, ident = int(cols[0]), int(cols[1]), cols[2].strip()
        if ident not in names:
            problems.append(f"line {number}: sensor {ident} is not in the names file")
            continue
        sensor, room = names[ident]
        # The seconds count the home's wall clock, so they are read as local times.
        start = (_EPOCH + timedelta(seconds=start_s)).replace(tzinfo=None)
        end = start + timedelta(seconds=duration_s)
        events.append({"resident": resident, "sensor": sensor, "start": start.isoformat(),
                       "end": end.isoformat(), "room": room})
    return events, problems


def _house_files(folder: Path) -> tuple[Path, Path]:
    found = sorted(folder.glob("house*.sensors"))
    if len(found) != 1:
        raise ConvertError(f"{folder}: expected one house*.sensors file, found {len(found)}")
    sensors = found[0]
    names = sensors.with_name(sensors.stem + ".sensor_names")
    if not names.exists():
        raise ConvertError(f"{folder}: {names.name} is missing")
    return sensors, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("folder", help="the folder with house*.sensors and *.sensor_names")
    parser.add_argument("--resident", required=True, help="the resident's id in Kinsight")
    args = parser.parse_args(argv)
    try:
        sensors, names_file = _house_files(Path(args.folder))
        names_text = names_file.read_text(encoding="utf-8", errors="replace")
        sensors_text = sensors.read_text(encoding="utf-8", errors="replace")
    except ConvertError as exc:
        print(f"mit_to_jsonl: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"mit_to_jsonl: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    names, name_problems = read_names(names_text.splitlines())
    events, problems = convert(sensors_text.splitlines(), names, args.resident)
    reported = [f"{names_file}: {p}" for p in name_problems] + [f"{sensors}: {p}"
                                                                for p in problems]
    if not names:
        reported.append(f"{names_file}: no sensor names")
    for problem in reported:
        print(f"mit_to_jsonl: {problem}", file=sys.stderr)
    if reported:
        return 1
    for event in events:
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
