# Runs at every start of a Kinsight node (after boot.py). Copied to the root of
# the node's filesystem; the rest of the firmware lives in /lib or is frozen.
import runtime

runtime.main()
