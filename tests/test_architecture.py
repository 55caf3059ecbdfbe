"""The host's layout holds: packages by layer, each importing only what it declares.

Every subpackage of ``kinsight`` ends its docstring with ``May import:`` and the
packages below it; these tests read every module's imports (function-level ones
too, since an import inside a function is still a dependency) and hold each
module to its package's line, the declared layers to a strict order, the modules
to no import cycle, and every source file to 600 lines.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from support import REPO

HOST = REPO / "host" / "kinsight"
MAX_LINES = 600

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(HOST.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(HOST.rglob("*.py"))}
PACKAGES = sorted(m for m, p in MODULES.items() if p.name == "__init__.py" and m != "kinsight")


def _imports(name: str) -> set[str]:
    """The kinsight modules ``name`` imports, resolved to module names."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "kinsight")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "kinsight":
                continue
            # ``from pkg import mod`` imports the submodule; the package itself only for
            # names that are not submodules (a package is always run before its modules).
            submodules = {f"{target}.{a.name}" for a in node.names} & MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(target)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _layer(module: str) -> str:
    """``kinsight.learning.model`` -> ``learning``; ``kinsight`` and ``kinsight.errors`` are
    their own layers."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "kinsight"


def _declared(package: str) -> set[str]:
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text(encoding="utf-8"))) or ""
    m = re.search(r"May import:(.*?)(?:\n\n|\Z)", doc, re.S)
    if m is None:
        return set()
    return {_layer(n.strip().rstrip(".")) for n in m.group(1).replace("\n", " ").split(",")
            if n.strip()}


def test_every_package_says_what_it_is_for_and_what_it_may_import():
    for package in PACKAGES:
        doc = ast.get_docstring(ast.parse(MODULES[package].read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()[0]) > 20, f"{package} has no docstring"
        assert "May import:" in doc, f"{package}'s docstring does not say what it may import"


def test_every_module_has_a_docstring():
    missing = [name for name, path in MODULES.items()
               if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert missing == []


def test_each_module_imports_only_what_its_package_declares():
    wrong = []
    for name, targets in GRAPH.items():
        layer = _layer(name)
        if layer in ("kinsight", "errors"):
            allowed: set[str] = set()
        else:
            allowed = _declared(f"kinsight.{layer}")
        for target in sorted(targets):
            other = _layer(target)
            # The root package holds only the version and imports nothing.
            if other in (layer, "kinsight") or other in allowed:
                continue
            wrong.append(f"{name} imports {target}, but kinsight.{layer} may import only "
                         f"{', '.join(sorted(allowed)) or 'nothing of kinsight'}")
    assert wrong == []


def test_the_declared_layers_are_an_order():
    declared = {_layer(p): _declared(p) for p in PACKAGES}
    declared["errors"] = set()
    for layer, allowed in declared.items():
        assert layer not in allowed
        assert allowed <= declared.keys(), f"{layer} declares unknown layers"
    # Depth-first: no layer may reach itself through what it declares.
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(layer: str, path: list[str]) -> None:
        if state.get(layer) == 2:
            return
        assert state.get(layer) != 1, "layers in a circle: " + " -> ".join(path + [layer])
        state[layer] = 1
        for below in sorted(declared[layer]):
            visit(below, path + [layer])
        state[layer] = 2
        order.append(layer)

    for layer in sorted(declared):
        visit(layer, [])
    assert order.index("errors") == 0


def test_what_the_issue_asks_of_the_layers():
    # Learning says what it found; only the layer above both decides who hears of it.
    assert not _declared("kinsight.learning") & {"alerts", "service"}
    assert {"learning", "alerts"} <= _declared("kinsight.service")
    # The ground truth is simulation's lowest module, so evaluation imports simulation
    # and never the other way round.
    assert "evaluation" not in _declared("kinsight.simulation")
    assert GRAPH["kinsight.simulation.truth"] <= {"kinsight"}
    for lower in ("wire", "store", "ingest", "residents", "learning", "alerts"):
        assert not _declared(f"kinsight.{lower}") & {"cli", "demo", "bench", "evaluation",
                                                     "simulation"}, lower


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_no_import_cycle_among_the_hosts_modules():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("folder", ["host", "tools", "firmware", "shared"])
def test_no_source_file_over_600_lines(folder):
    long = {str(p.relative_to(REPO)): n for p in sorted((REPO / folder).rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.skipif(tomllib is None, reason="tomllib is Python 3.11+")
def test_the_wheel_ships_every_package():
    assert tomllib is not None
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    listed = {p for p in config["tool"]["setuptools"]["packages"] if p.startswith("kinsight.")}
    assert listed == set(PACKAGES)


def test_the_integrator_api_the_readme_documents_imports():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The library for integrators", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    imports = [line.split("#")[0].rstrip() for line in code.splitlines()
               if line.startswith(("from kinsight", "import kinsight"))]
    assert len(imports) >= 10
    for line in imports:
        exec(line, {})  # each name the README shows is importable from where it says


def test_the_errors_are_typed_as_the_readme_says():
    from kinsight.errors import (
        AuthenticationError,
        DecodeError,
        KinsightError,
        ReassemblyError,
        ReassemblyLimitError,
        ReplayError,
        SchemaError,
    )

    for error in (DecodeError, SchemaError, AuthenticationError, ReplayError, ReassemblyError,
                  ReassemblyLimitError):
        assert issubclass(error, KinsightError) and issubclass(error, ValueError)
