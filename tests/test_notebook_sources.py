"""The code a notebook shows is the code the helpers run (d2l's way: one source of truth).

A notebook cell that defines a model, a training step or a Grad-CAM
computation for the student to read carries a cell tag
``same-as:helpers.<module>.<name>``; the cell must define ``<name>`` at its top
level, and that definition must be the helper's, statement for statement
(compared as syntax trees, so comments, blank lines and docstrings may differ,
code may not). The notebook then uses its own definition, and the demo and the
tests use the helper's: they cannot drift apart without this test failing.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import textwrap

import pytest

from helpers import course

TAG = "same-as:"
# Which definitions each notebook must show (and keep equal to the helpers').
REQUIRED: dict[str, set[str]] = {}


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def normalised(source: str) -> str:
    """The syntax tree of ``source`` without docstrings, as text."""
    return ast.dump(_strip_docstrings(ast.parse(textwrap.dedent(source))), include_attributes=False)


def top_level_definition(cell_source: str, name: str) -> str | None:
    """Source of the top-level ``def``/``class`` called ``name`` in a cell, or None."""
    lines = cell_source.splitlines()
    tree = ast.parse(cell_source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return "\n".join(lines[start - 1:node.end_lineno])
    return None


def helper_source(qualified: str) -> str:
    module_name, _, name = qualified.rpartition(".")
    module = importlib.import_module(module_name)
    return inspect.getsource(getattr(module, name))


def tagged_cells() -> list[tuple[str, int, str, str]]:
    """(notebook, cell index, qualified name, cell source) for every ``same-as:`` tag of the course."""
    found = []
    for notebook in course.course_notebooks():
        cells = json.loads(notebook.read_text())["cells"]
        for index, cell in enumerate(cells):
            for tag in cell.get("metadata", {}).get("tags", []):
                if tag.startswith(TAG):
                    found.append((notebook.stem, index, tag[len(TAG):], "".join(cell["source"])))
    return found


CASES = tagged_cells()


@pytest.mark.parametrize("notebook, index, qualified, source", CASES,
                         ids=[f"{nb}[{i}]:{q.rsplit('.', 1)[-1]}" for nb, i, q, _ in CASES])
def test_notebook_definition_equals_the_helpers(notebook, index, qualified, source):
    assert qualified.startswith("helpers."), f"{notebook} cell {index}: tag must name a helpers object"
    name = qualified.rsplit(".", 1)[-1]
    shown = top_level_definition(source, name)
    assert shown is not None, f"{notebook} cell {index} is tagged {TAG}{qualified} but defines no {name}"
    assert normalised(shown) == normalised(helper_source(qualified)), (
        f"{notebook} cell {index}: {name} differs from {qualified}; change both, or neither")


@pytest.mark.parametrize("notebook", sorted(REQUIRED))
def test_notebook_shows_the_definitions_it_teaches(notebook):
    shown = {q for nb, _, q, _ in CASES if nb == notebook}
    missing = REQUIRED[notebook] - shown
    assert not missing, f"{notebook} must show (and tag) {sorted(missing)}"


def test_the_comparison_catches_a_changed_line():
    helper = "def step(x):\n    \"\"\"Doc.\"\"\"\n    return x + 1\n"
    assert normalised(helper) == normalised("def step(x):\n    # a comment\n    return x + 1\n")
    assert normalised(helper) != normalised("def step(x):\n    return x + 2\n")
    cell = "import torch\n\n@decorator\nclass Net:\n    pass\n\nprint(1)\n"
    assert top_level_definition(cell, "Net") == "@decorator\nclass Net:\n    pass"
    assert top_level_definition(cell, "Other") is None
