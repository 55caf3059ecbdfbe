# Runs at every start of a Kinsight node (after boot.py). Copied to the root of
# the node's filesystem; the rest of the firmware lives in /lib or is frozen.
# With an update installed over the air its slot is imported from first, and an
# update on trial whose program raises is rolled back and the node reset
# (otaboot.py; neither file is ever part of an update).
import otaboot

_slot = otaboot.start()
if _slot:
    import sys

    sys.path.insert(0, _slot)
_imported = False
try:
    import runtime

    _imported = True
    runtime.main()
except Exception as exc:
    if not _imported:  # runtime.main records what stops it; a failed import is ours to
        try:
            import gc

            gc.collect()  # what the failed import had loaded is garbage now
            import crashlog
            import hal

            crashlog.record_exception("/kinsight/crashes", hal.reset_cause(), exc)
        except Exception:
            pass  # no room even for that: the exception itself still goes up
    if not otaboot.fail():
        raise
    print("kinsight: the update failed to start: back to the firmware before it")
    import hal

    hal.reset()
