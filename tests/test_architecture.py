"""The house rules of the package layout, checked over the source's imports (every import,
at module level or inside a function, except those only for type checkers):

- no import circle anywhere in ``geo``, ``data``, ``layers``, ``service`` and ``web``;
- nothing imports upwards: ``geo`` and ``data`` import nothing from ``service``, ``layers``
  or ``web``; ``layers`` nothing from ``service`` or ``web``;
- only ``service.store`` names a store class or a database engine;
- a route module imports no other route module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("geo", "data", "layers", "service", "web")
BELOW = {"geo": {"service", "layers", "web"}, "data": {"service", "layers", "web"},
         "layers": {"service", "web"}}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:  # Alembic loads these by path
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (``from package import module`` counts as the
    module; a name from a module as that module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # imports only type checkers follow are not dependencies
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_is_seen():
    assert "service.store.base" in GRAPH["service.store.embedded"]
    assert "layers.registry" in GRAPH["layers.build"]


def test_no_import_circle():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", sorted(BELOW))
def test_nothing_imports_upwards(package):
    upward = {f"{name} -> {target}" for name, targets in GRAPH.items()
              if name.split(".")[0] == package for target in targets
              if target.split(".")[0] in BELOW[package]}
    assert upward == set()


def test_only_the_store_package_names_a_store_class_or_an_engine():
    # (``settings.engine`` is the pipeline's engine, local or Dask, not a database's)
    pattern = re.compile(r"PostGISStore|EmbeddedStore|(?<!settings)\.engine\b")
    outside = [f"{path.relative_to(ROOT)}:{n}"
               for name, path in MODULES.items() if not name.startswith("service.store")
               for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if pattern.search(line)]
    assert outside == []


def test_routes_import_no_other_route():
    routes = {name for name in MODULES if name.startswith("service.routes.")}
    crossing = {f"{name} -> {target}" for name in routes for target in GRAPH[name]
                if target in routes}
    assert crossing == set()
