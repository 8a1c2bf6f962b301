"""The package's shape (docs/architecture.md): no import cycles, the layers' directions, small modules and functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "amlvc"
# What each folder may import from amlvc, besides itself (data flows cli -> sync/offline -> review ->
# worktree -> canonical -> the flat edges, and never back up).
ALLOWED: dict[str, set[str]] = {
    "canonical": {"errors", "rules"},
    "worktree": {"canonical", "errors", "rules", "repo"},
    "review": {"canonical", "worktree", "errors", "rules", "repo"},
    "render": {"canonical", "review", "errors", "rules"},
    "sync": {"canonical", "worktree", "review", "errors", "rules", "repo", "client", "config", "credentials"},
    "offline": {"canonical", "worktree", "errors", "rules", "repo", "config", "credentials"},
    "server": {"rules"},
    "errors": set(),
    "rules": set(),
    "repo": {"errors", "rules"},
    "client": {"errors", "rules", "amlvc"},
    "config": {"errors", "rules", "repo", "credentials"},
    "credentials": {"errors"},
}
# Third-party libraries that belong to one edge each.
OWNERS = {"click": "cli", "requests": "client", "git": "repo", "gitdb": "repo", "flask": "server", "werkzeug": "server"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if "data" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(amlvc modules, top-level third-party packages) imported anywhere in the module, functions included."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    own: set[str] = set()
    foreign: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                       for alias in node.names]
        for target in targets:
            if target.split(".")[0] != "amlvc":
                foreign.add(target.split(".")[0])
                continue
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != name:
                own.add(target)
    return own, foreign


GRAPH = {name: _imports(name)[0] for name in MODULES}


def _layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "amlvc"


def test_no_import_cycles_counting_imports_inside_functions() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in GRAPH[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    assert cycles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_only_what_its_layer_may(name: str) -> None:
    layer = _layer(name)
    own, foreign = _imports(name)
    if layer in ALLOWED:
        allowed = ALLOWED[layer] | {layer}
        assert sorted(_layer(dep) for dep in own if _layer(dep) not in allowed) == []
    for library, owner in OWNERS.items():
        if library in foreign:
            assert layer == owner, f"{name} imports {library}, which only {owner} may"


def test_the_top_level_holds_the_edges_only() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert len(top) <= 8, top


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if _layer(name) != "server" and len(text.splitlines()) > 500:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert too_long == []


def test_every_module_says_what_it_owns() -> None:
    missing = [name for name, path in MODULES.items()
               if path.stat().st_size and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert missing == []
