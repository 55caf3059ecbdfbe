"""Which firmware a node starts: the board's own, or an update installed over the air.

main.py asks ``start()`` before it imports anything else. An update is unpacked into
one of two slots, /ota/a or /ota/b (update.py), and ``install`` makes it the one to
try: from then on ``start`` puts that slot first on sys.path, so its modules are
imported instead of the board's. The new firmware is on trial until it has run well
(it has reached the host: ``confirm``); a trial boot that raises (``fail``) or that
does not get that far in ``_TRIAL_BOOTS`` starts (a hang, a watchdog reset, a power
cut) goes back to the firmware that ran before, and the bundle is remembered as
failed so the node does not fetch it again.

This module and main.py are the loader: they stay with the board's image and no
bundle carries them, so a broken update cannot break its own way back. It imports
nothing of the firmware, so that the slot's modules, not the board's, are the ones
loaded after it. The state is one small file, replaced whole by a rename.
"""

import json
import os

from micropython import const

OTA = "/ota"
_STATE = OTA + "/state.json"
_TRIAL_BOOTS = const(2)
_EMPTY = {"slot": "", "bundle": 0, "trial": 0, "tries": 0, "before": ["", 0], "failed": 0}


def read(folder=OTA):
    """The loader's state: slot running ("" for the board's own firmware), its bundle,
    the bundle on trial (0: none) and its boots so far, what ran before, the last
    bundle that failed."""
    try:
        with open(folder + "/state.json") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return dict(_EMPTY)  # none yet, or torn by a power cut: the board's firmware
    out = dict(_EMPTY)
    if type(state) is dict:
        for key in _EMPTY:
            if key in state:
                out[key] = state[key]
    return out


def write(state, folder=OTA):
    try:
        os.mkdir(folder)
    except OSError:
        pass
    path = folder + "/state.json"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    try:
        os.rename(tmp, path)
    except OSError:  # FAT will not rename onto a file
        os.remove(path)
        os.rename(tmp, path)


def slot_path(slot, folder=OTA):
    return folder + "/" + slot


def start(folder=OTA):
    """Count this boot against a trial, roll back a trial that used its boots up, and
    return the slot folder to import from first (None: the board's firmware)."""
    state = read(folder)
    if state["trial"]:
        state["tries"] += 1
        if state["tries"] > _TRIAL_BOOTS:
            _roll_back(state)
        write(state, folder)
    return slot_path(state["slot"], folder) if state["slot"] else None


def fail(folder=OTA):
    """The program raised during a trial boot: go back now. True when it did (the
    caller resets the node into the previous firmware)."""
    state = read(folder)
    if not state["trial"]:
        return False
    _roll_back(state)
    write(state, folder)
    return True


def confirm(folder=OTA):
    """The update on trial has run well: it stays."""
    state = read(folder)
    if state["trial"]:
        state["trial"] = 0
        state["tries"] = 0
        write(state, folder)


def install(slot, bundle, folder=OTA):
    """Try the bundle unpacked in ``slot`` from the next boot on (update.py fetches
    nothing while a trial runs, so what runs now is what a failure goes back to)."""
    state = read(folder)
    state.update({"slot": slot, "bundle": bundle, "trial": bundle, "tries": 0,
                  "before": [state["slot"], state["bundle"]]})
    write(state, folder)


def free_slot(folder=OTA):
    """The slot an update may be unpacked into: not the one running."""
    return "b" if read(folder)["slot"] == "a" else "a"


def _roll_back(state):
    state["failed"] = state["trial"]
    state["slot"], state["bundle"] = state["before"]
    state["before"] = ["", 0]
    state["trial"] = 0
    state["tries"] = 0
