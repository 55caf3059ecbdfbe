"""A fresh folder under /tmp for a MicroPython test, removed with all it holds on exit.

    with TempDir() as path: ...          # the folder itself
    with TempDir("box") as path: ...     # a path inside it, not yet made
"""

import os

_DIR = 0x4000  # S_IFDIR in os.stat()[0]


class TempDir:
    def __init__(self, inside=None):
        self.inside = inside
        self.root = None

    def __enter__(self):
        self.root = "/tmp/kinsight-test-" + "".join("%02x" % b for b in os.urandom(6))
        os.mkdir(self.root)
        return self.root if self.inside is None else self.root + "/" + self.inside

    def __exit__(self, *exc):
        remove_tree(self.root)
        return False


def remove_tree(path):
    for name in os.listdir(path):
        full = path + "/" + name
        if os.stat(full)[0] & _DIR:
            remove_tree(full)
        else:
            os.remove(full)
    os.rmdir(path)
