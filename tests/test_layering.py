"""The helper package's imports point one way: later stages import earlier ones, never back.

``helpers.STAGES`` declares the stage order once. This test reads every
``helpers/*.py`` with :mod:`ast` (imports at module level and inside functions
alike, since a lazy import is still a dependency), builds the import graph and
fails on any import cycle, on any import from an earlier stage into a later
one, and on any module that no stage declares.
"""
from __future__ import annotations

import ast
from pathlib import Path

import helpers

PACKAGE_DIR = Path(helpers.__file__).resolve().parent

# Violations that are known and still to be fixed (issue 18). The test fails
# when a new one appears and when a listed one is gone (then delete its line).
KNOWN_VIOLATIONS: frozenset = frozenset()


def imported_modules(tree: ast.AST, package: str = "helpers") -> set[str]:
    """The package's own modules that ``tree`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == package or (node.module or "").startswith(package + "."):
                parts = (node.module or "").split(".")
                inner = parts[0] if node.level == 1 else (parts[1] if len(parts) > 1 else "")
                if inner:
                    found.add(inner)
                else:  # from . import a, b  /  from helpers import a, b
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(package + "."):
                    found.add(alias.name.split(".")[1])
    return found


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """module -> the package modules it imports (``__init__`` left out)."""
    modules = {path.stem: path for path in package_dir.glob("*.py") if path.stem != "__init__"}
    graph = {}
    for name, path in sorted(modules.items()):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = {dep for dep in imported_modules(tree) if dep in modules and dep != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components with more than one module (Tarjan's algorithm), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def stage_of(stages) -> dict[str, int]:
    return {module: number for number, stage in enumerate(stages) for module in stage}


def violations(graph: dict[str, set[str]], stages) -> set[str]:
    """Every problem as one line: cycles, imports into a later stage, modules in no stage."""
    stage = stage_of(stages)
    problems = {"cycle: " + " <-> ".join(component) for component in cycles(graph)}
    for module in sorted(graph):
        if module not in stage:
            problems.add(f"undeclared: {module} is in no stage of helpers.STAGES")
            continue
        for dep in sorted(graph[module]):
            if dep in stage and stage[dep] > stage[module]:
                problems.add(f"backwards: {module} (stage {stage[module]}) imports {dep} (stage {stage[dep]})")
    return problems


# --------------------------------------------------------------------------- the checker itself can fail
def test_checker_reports_a_cycle_a_backwards_import_and_an_undeclared_module():
    stages = (("config",), ("data",), ("models",))
    graph = {"config": set(), "data": {"config", "models"}, "models": {"data"}, "stray": {"config"}}
    found = violations(graph, stages)
    assert "cycle: data <-> models" in found
    assert "backwards: data (stage 1) imports models (stage 2)" in found
    assert "undeclared: stray is in no stage of helpers.STAGES" in found
    assert violations({"config": set(), "data": {"config"}, "models": {"data", "config"}}, stages) == set()


def test_checker_finds_a_cycle_within_one_stage():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]
    assert violations({"a": {"b"}, "b": {"a"}}, (("a", "b"),)) == {"cycle: a <-> b"}


def test_checker_reads_imports_inside_functions_and_every_form():
    source = ("from . import config\nimport helpers.gpu\nfrom helpers import plots, results\n"
              "def f():\n    from .faces import crop_face\n    from helpers.evaluation import x\n"
              "import numpy\nfrom pathlib import Path\n")
    assert imported_modules(ast.parse(source)) == {"config", "gpu", "plots", "results", "faces", "evaluation"}


# --------------------------------------------------------------------------- the real package
def test_every_stage_module_exists_and_is_declared_once():
    declared = [module for stage in helpers.STAGES for module in stage]
    assert len(declared) == len(set(declared)), "a module is declared in two stages"
    assert sorted(set(declared) - set(import_graph())) == [], "helpers.STAGES names a module that does not exist"


def test_helper_package_imports_point_one_way():
    found = violations(import_graph(), helpers.STAGES)
    new = sorted(found - KNOWN_VIOLATIONS)
    fixed = sorted(KNOWN_VIOLATIONS - found)
    assert not new, "import problems (later stages may import earlier ones, never back):\n" + "\n".join(new)
    assert not fixed, "fixed, delete from KNOWN_VIOLATIONS:\n" + "\n".join(fixed)
