"""The virtual node's flash: a VFS mounted at "/" over the node's flash folder, plus the
read-only staged modules at "/.frozen" (device/agent.py mounts it; tools/boot_node.py
too, to measure a boot)."""

# pyright: reportAttributeAccessIssue=false
# (MicroPython: os.VfsPosix)

import os

ROM = ".frozen"
_ROM = ROM
_EROFS = 30
_ENOTDIR = 20


class FlashVfs:
    """A VFS mounted at "/": the flash folder, plus the read-only staged modules."""

    def __init__(self, flash, rom):
        self._host = os.VfsPosix()
        self._flash = flash.rstrip("/")
        self._rom = rom.rstrip("/")
        self._cwd = "/"

    def _parts(self, path):
        if not path.startswith("/"):
            path = self._cwd + "/" + path
        parts = []
        for p in path.split("/"):
            if p == "" or p == ".":
                continue
            if p == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(p)
        return parts

    def _path(self, path, write=False):
        parts = self._parts(path)
        if parts and parts[0] == _ROM:
            if write:
                raise OSError(_EROFS)
            return self._rom + "".join("/" + p for p in parts[1:])
        return self._flash + "".join("/" + p for p in parts) if parts else self._flash

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def open(self, path, mode):
        write = "w" in mode or "a" in mode or "+" in mode or "x" in mode
        return self._host.open(self._path(path, write), mode)

    def ilistdir(self, path=""):
        host = self._path(path)
        for entry in self._host.ilistdir(host):
            name, kind = entry[0], entry[1]
            size = 0
            if kind == 0x8000:
                try:
                    size = self._host.stat(host + "/" + name)[6]
                except OSError:
                    pass
            yield (name, kind, 0, size)

    def chdir(self, path):
        parts = self._parts(path)
        if not self._host.stat(self._path(path))[0] & 0x4000:
            raise OSError(_ENOTDIR)
        self._cwd = "/" + "/".join(parts)

    def getcwd(self):
        return self._cwd

    def mkdir(self, path):
        self._host.mkdir(self._path(path, True))

    def remove(self, path):
        self._host.remove(self._path(path, True))

    def rmdir(self, path):
        self._host.rmdir(self._path(path, True))

    def rename(self, old, new):
        self._host.rename(self._path(old, True), self._path(new, True))

    def stat(self, path):
        return self._host.stat(self._path(path))

    def statvfs(self, path):
        return self._host.statvfs(self._path(path))
