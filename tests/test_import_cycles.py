"""No import circle anywhere in the package, counting the imports hidden inside functions.

import-linter's layer contracts (tests/test_import_layers.py) stop an import going the wrong
way between layers and rooms; a circle *inside* one layer, held together by an import moved
into a function so that Python tolerates it, slips past them. This test reads every module's
source, collects every import of a project module wherever it is written (module level or inside a
function), and fails on any strongly connected group of more than one module.

Imports under ``if TYPE_CHECKING:`` are left out: they never run, and they are how a part of a
window (the bedside's protocol support, its access control) names the window that owns it for
the type checker. Everything that executes is counted.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_names(package: Path) -> dict[str, Path]:
    names = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Every project module ``name`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def circles(package: Path) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    known = module_names(package)
    graph = {name: imports_of(path, name, known) for name, path in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return groups


def test_the_package_has_no_import_circle() -> None:
    assert circles(ROOT / "kapmonitor") == []


def test_a_circle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    copy = tmp_path / "kapmonitor"
    shutil.copytree(ROOT / "kapmonitor", copy, ignore=shutil.ignore_patterns("__pycache__"))
    chart = copy / "ui" / "widgets" / "trend_chart.py"
    chart.write_text(
        chart.read_text()
        + "\n\ndef _late() -> None:\n    from kapmonitor.ui.widgets import flow_layout  # noqa\n"
    )
    layout = copy / "ui" / "widgets" / "flow_layout.py"
    layout.write_text(
        layout.read_text()
        + "\n\ndef _late() -> None:\n    from kapmonitor.ui.widgets import trend_chart  # noqa\n"
    )
    assert [
        "kapmonitor.ui.widgets.flow_layout",
        "kapmonitor.ui.widgets.trend_chart",
    ] in circles(copy)
