"""``kinsight report``: the care team's pages as static HTML, for a real database.

The same templates and the same facts as the live pages (``care``), seen as a
coordinator sees them, with nothing to submit: ``index.html`` (the triage board),
``residents/ID.html`` each, ``equipment.html`` and ``app.css``, linked to each other
relatively, so the folder can be opened from a disk or copied anywhere.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Collection
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..alerts import Policy
from ..residents import residents
from ..store import Store
from .care import TEMPLATES, _when, add_filters, resident_context
from .equipment import equipment
from .triage import board
from .users import User

_READER = User("report", "coordinator", ())


def _linker(depth: int) -> Callable[[str], str]:
    up = "../" * depth

    def link(path: str) -> str:
        if path in ("", "/"):
            return up + "index.html"
        if path.endswith(".css"):
            return up + path
        return up + path + ".html"
    return link


def write_report(store: Store, out: Path, policy: Policy, *,
                 only: Collection[str] | None = None, now_ms: int | None = None) -> list[Path]:
    """Write the pages into ``out``; the files written."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(["html"]))
    env.globals["when"] = _when
    add_filters(env)
    out.mkdir(parents=True, exist_ok=True)
    (out / "residents").mkdir(exist_ok=True)
    written = []

    def page(path: Path, template: str, depth: int, **context: object) -> None:
        html = env.get_template(template).render(user=_READER, csrf="", static=True,
                                                 link=_linker(depth), **context)
        path.write_text(html, encoding="utf-8")
        written.append(path)

    wanted = [r for r in residents(store) if only is None or r in only]
    rows = [r for r in board(store, _READER) if r.resident in wanted]
    page(out / "index.html", "board.html", 0, rows=rows, q="")
    for rid in wanted:
        context = resident_context(store, policy, _READER, rid, now)
        page(out / "residents" / f"{quote(rid, safe='')}.html", "resident.html", 1, **context)
    homes = {r: nodes for r, nodes in equipment(store, _READER, now).items() if r in wanted}
    page(out / "equipment.html", "equipment.html", 0, homes=homes)
    shutil.copyfile(TEMPLATES / "app.css", out / "app.css")
    written.append(out / "app.css")
    return written
