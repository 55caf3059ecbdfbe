"""A tiny test runner for MicroPython test modules.

    micropython tests/firmware/runner.py MODULE [TEST_NAME]
    micropython -m runner MODULE [TEST_NAME]   (modules compiled by mpy-cross)

Imports MODULE and runs every callable named test_* in it (or only
TEST_NAME), printing one line per test, then "N passed, M failed, K skipped".
The exit status is 1 when any test failed. A test skips by raising
runner.Skip("reason").
"""

import gc
import io
import sys

_RESERVE_BYTES = 8 * 1024


class Skip(Exception):
    pass


def eq(got, want, what="value"):
    """Fails unless got == want, showing both."""
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def raises(exc_type, fn, *args):
    """The exception fn(*args) raised; fails unless it is an exc_type."""
    try:
        fn(*args)
    except exc_type as exc:
        return exc
    name = getattr(fn, "__name__", fn)
    raise AssertionError("%s%r raised no %s" % (name, args, exc_type.__name__))


def mentions(exc, *words):
    """Fails unless the exception's message has every one of words."""
    text = str(exc)
    for word in words:
        if word not in text:
            raise AssertionError("message %r does not mention %r" % (text, word))


def _indented_traceback(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    for line in buf.getvalue().split("\n"):
        if line:
            print("    " + line)


def _message(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def run(module_name, only=None):
    """Runs the tests; returns (passed, failed, skipped)."""
    # Tests import this file as "runner"; catching the Skip of that module,
    # not of __main__, makes their Skip the one caught here.
    import runner

    # Accept a path or a file name too: tests/firmware/test_x.py -> test_x.
    module_name = module_name.split("/")[-1]
    if module_name.endswith(".py"):
        module_name = module_name[:-3]
    # pytest runs these modules precompiled, as a node runs them. Run by hand
    # from source, compiling leaves the parser's garbage scattered through the
    # heap; holding one block across the import keeps a hole that size for the
    # tests of the largest (4 KB) messages.
    reserve = bytearray(_RESERVE_BYTES)
    try:
        module = __import__(module_name)
    except Exception as exc:  # a module that cannot load fails as a whole
        print("FAIL %s: %s" % (module_name, _message(exc)))
        _indented_traceback(exc)
        return 0, 1, 0
    del reserve
    gc.collect()
    names = sorted(
        name for name in dir(module) if name.startswith("test_") and callable(getattr(module, name))
    )
    if only is not None:
        if only not in names:
            print("FAIL %s: no test named %s in %s" % (only, only, module_name))
            return 0, 1, 0
        names = [only]
    passed = failed = skipped = 0
    for name in names:
        gc.collect()
        try:
            getattr(module, name)()
        except runner.Skip as exc:
            skipped += 1
            print("SKIP %s: %s" % (name, exc))
        except Exception as exc:  # every other exception is that test's failure
            failed += 1
            print("FAIL %s: %s" % (name, _message(exc)))
            _indented_traceback(exc)
        else:
            passed += 1
            print("PASS %s" % name)
    return passed, failed, skipped


def main(argv):
    if len(argv) < 2 or len(argv) > 3:
        print("usage: micropython runner.py MODULE [TEST_NAME]")
        return 2
    passed, failed, skipped = run(argv[1], argv[2] if len(argv) == 3 else None)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
