"""The crash ring under MicroPython: the newest records kept, each with the reset cause,
what stopped the program and its traceback's last lines."""

from crashlog import record, record_exception, records
from kinsight_wire import RESET_POWER_ON, RESET_WATCHDOG
from runner import eq
from tempdir import TempDir


def _fail_deep():
    raise MemoryError("memory allocation failed, allocating 4224 bytes")


def test_an_exception_is_kept_with_its_traceback():
    with TempDir() as folder:
        path = folder + "/crashes"
        try:
            _fail_deep()
        except MemoryError as exc:
            record_exception(path, RESET_POWER_ON, exc)
        (c,) = records(path)
        eq(c["reset_cause"], "power_on")
        eq(c["what"], "MemoryError: memory allocation failed, allocating 4224 bytes")
        eq("_fail_deep" in c["trace"], True)
        eq(c["time_s"] > 0, True)


def test_the_ring_keeps_the_newest_four():
    with TempDir() as folder:
        path = folder + "/crashes"
        for i in range(6):
            record(path, RESET_WATCHDOG, "crash %d" % i, "a\tb\nc")
        got = records(path)
        eq([c["what"] for c in got], ["crash 2", "crash 3", "crash 4", "crash 5"])
        eq(got[0]["reset_cause"], "watchdog")
        eq(got[0]["trace"], "a b c")  # no tab nor newline breaks a record


def test_no_file_is_no_crash():
    with TempDir() as folder:
        eq(records(folder + "/crashes"), [])
