"""Install the micropython-lib packages the firmware uses, for the MicroPython unix port
that runs the firmware in the tests: each package's release on PyPI, checked against
its pinned SHA-256, its modules unpacked into a folder the tests put on MICROPYPATH.
A board gets the same packages with mip (``boards/package.json``, ``manifest.py``).

    python tools/mpy_packages.py TARGET_DIR

Prints nothing when everything is in place; a download that fails or does not match
its hash is an error that names it, and leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

# name: (release's sdist, its SHA-256, the modules it holds)
PACKAGES = {
    "umqtt.simple": (
        "https://files.pythonhosted.org/packages/bd/cf/697e3418b2f44222b3e848078b1e33ee76"
        "aedca9b6c2430ca1b1aec1ce1d/micropython-umqtt.simple-1.3.4.tar.gz",
        "b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f",
        ("umqtt/simple.py",)),
}


class PackageError(Exception):
    pass


def _fetch(url: str, sha256: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            data = answer.read()
    except OSError as exc:
        raise PackageError(f"cannot download {url}: {exc}") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise PackageError(f"{url}: SHA-256 {got} is not the pinned {sha256}")
    return data


def install(target: Path) -> list[str]:
    """Install what is missing into ``target``; the packages installed now."""
    done = []
    for name, (url, sha256, modules) in PACKAGES.items():
        stamp = target / f".{name}.sha256"
        if stamp.is_file() and stamp.read_text() == sha256 and all(
                (target / m).is_file() for m in modules):
            continue
        data = _fetch(url, sha256)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = {m.name.split("/", 1)[1]: m for m in tar.getmembers()
                       if m.isfile() and "/" in m.name}
            target.mkdir(parents=True, exist_ok=True)
            for module in modules:
                member = members.get(module)
                if member is None:
                    raise PackageError(f"{url} holds no {module}")
                source = tar.extractfile(member)
                assert source is not None
                dest = target / module
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile("wb", dir=dest.parent, delete=False) as tmp:
                    tmp.write(source.read())
                Path(tmp.name).replace(dest)
        stamp.write_text(sha256)
        done.append(name)
    return done


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tools/mpy_packages.py TARGET_DIR", file=sys.stderr)  # noqa: T201
        return 2
    try:
        install(Path(argv[1]))
    except PackageError as exc:
        print(f"mpy_packages: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
