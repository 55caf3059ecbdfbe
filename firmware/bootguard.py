"""Safe mode after too many failed boots in a row, as ESPHome does.

At every start the node counts a boot attempt in flash; once it has run long
enough to be called healthy, the count goes back to 0. A node that keeps
crashing or resetting (a bad sensor driver, a watchdog loop) therefore reaches
``limit`` attempts, and then starts in safe mode: no sensors, no uplink work
beyond status, only the REPL the field tools need, until it is fixed.
"""

import os


class BootGuard:
    def __init__(self, path, limit=3):
        if limit < 1:
            raise ValueError("safe mode limit must be at least 1, not %r" % (limit,))
        self.path = path
        self.limit = limit
        self.attempts = self._read() + 1
        self._write(self.attempts)

    @property
    def safe_mode(self):
        """True when this boot follows ``limit`` failed ones."""
        return self.attempts > self.limit

    def healthy(self):
        """The node has run well: the next boot starts with a clean count."""
        if self.attempts:
            self.attempts = 0
            self._write(0)

    def clear(self):
        """Leave safe mode at the next boot (field tools call this after a fix)."""
        self.healthy()

    def _read(self):
        try:
            with open(self.path) as f:
                value = int(f.read().strip() or "0")
        except (OSError, ValueError):
            return 0  # a lost count only delays safe mode by one cycle
        return value if value >= 0 else 0

    def _write(self, value):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % value)
        os.rename(tmp, self.path)
