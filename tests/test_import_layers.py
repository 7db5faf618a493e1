"""No import cycles through the rollout, grade and distill modules, lazy (function-level) imports included (#17).

The graph is read from the source with `ast`, so an import inside a function counts as much
as one at the top: runner.py used to import launch.py lazily while launch.py imported runner.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "paced_curate"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the paced_curate modules it imports anywhere in its source (package __init__ files left out)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    packages = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module for alias in node.names}
        graph[name] = {t for t in targets if t in modules and t not in packages and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

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
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    # dispatch.py imports the three rollout paths inside its function.
    assert {"paced_curate.rollout.launch", "paced_curate.rollout.ray_rollout", "paced_curate.rollout.runner"} <= graph["paced_curate.rollout.dispatch"]


@pytest.mark.parametrize("area", ["paced_curate.rollout.", "paced_curate.grade.", "paced_curate.distill.", "paced_curate.ray_cluster"])
def test_no_import_cycle_touches_the_area(area):
    touching = [c for c in cycles(import_graph()) if any(m.startswith(area) for m in c)]
    assert touching == []


def test_lower_rollout_layers_never_import_the_dispatcher_or_launchers():
    graph = import_graph()
    for lower in ("runner", "engines", "config", "requests", "prompts", "hf_engine", "vllm_engine"):
        imported = graph[f"paced_curate.rollout.{lower}"]
        assert not imported & {"paced_curate.rollout.dispatch", "paced_curate.rollout.launch", "paced_curate.rollout.ray_rollout"}, lower
