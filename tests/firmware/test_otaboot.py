"""The loader under MicroPython: an update on trial, confirmed or rolled back."""

import otaboot
from runner import eq
from tempdir import TempDir


def test_a_trial_that_keeps_failing_to_boot_goes_back():
    with TempDir() as ota:
        eq(otaboot.start(ota), None, "nothing installed: the board's firmware")
        otaboot.install(otaboot.free_slot(ota), 5, ota)
        slot = ota + "/a"
        eq(otaboot.start(ota), slot, "first trial boot")
        eq(otaboot.start(ota), slot, "second trial boot (the first hung)")
        eq(otaboot.start(ota), None, "third: back to the board's firmware")
        state = otaboot.read(ota)
        eq((state["bundle"], state["trial"], state["failed"]), (0, 0, 5))


def test_a_confirmed_update_stays_and_the_next_goes_to_the_other_slot():
    with TempDir() as ota:
        otaboot.install(otaboot.free_slot(ota), 5, ota)
        otaboot.start(ota)
        otaboot.confirm(ota)
        for _ in range(5):
            eq(otaboot.start(ota), ota + "/a", "confirmed: no trial counts")
        eq(otaboot.free_slot(ota), "b")
        otaboot.install("b", 6, ota)
        eq(otaboot.start(ota), ota + "/b")
        eq(otaboot.fail(ota), True, "the trial's program raised")
        state = otaboot.read(ota)
        eq((state["slot"], state["bundle"], state["failed"]), ("a", 5, 6), "back to 5")
        eq(otaboot.fail(ota), False, "no trial: nothing to go back from")


def test_a_torn_state_file_starts_the_board_firmware():
    with TempDir() as ota:
        with open(ota + "/state.json", "w") as f:
            f.write('{"slot": "a", "bund')
        eq(otaboot.start(ota), None)
