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
REQUIRED: dict[str, set[str]] = {
    "05_model_comparison": {"helpers.models_compare.CustomCNN", "helpers.models_compare.Meso4"},
    "06_tta_gradcam": {"helpers.explain.gradcam_by_hand"},
}


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


# ---------------------------------------------------------------------------------------------
# Behaviour: the notebook's definition, executed, does what the helper's does.
# ---------------------------------------------------------------------------------------------

def notebook_definition(notebook: str, qualified: str):
    """Execute a tagged cell's imports and its definition of ``name`` in a fresh namespace; return the object.

    Only the cell's ``import`` statements and the definition itself run (not the
    lines that use it), so this needs no data and no earlier cell.
    """
    name = qualified.rsplit(".", 1)[-1]
    sources = [source for nb, _, q, source in CASES if nb == notebook and q == qualified]
    assert sources, f"{notebook} has no cell tagged {TAG}{qualified}"
    tree = ast.parse(sources[0])
    keep = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
            or (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name)]
    namespace: dict = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), f"<{notebook}:{name}>", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("name, image_size", [("CustomCNN", 64), ("Meso4", 64), ("Meso4", 256)])
def test_notebook_05_models_match_the_helpers(name, image_size):
    import torch

    from helpers import models_compare

    shown = notebook_definition("05_model_comparison", f"helpers.models_compare.{name}")
    options = {"image_size": image_size} if name == "Meso4" else {}
    torch.manual_seed(0)
    mine = shown(**options).eval()
    torch.manual_seed(0)
    theirs = getattr(models_compare, name)(**options).eval()
    assert models_compare.count_parameters(mine) == models_compare.count_parameters(theirs)
    if (name, image_size) == ("Meso4", 256):
        assert models_compare.count_parameters(mine) == 27_977  # the MesoNet paper's count (arXiv:1809.00888)
    # same seed, same initial weights; and the helper's class reads the notebook's checkpoint as is
    assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    theirs.load_state_dict(mine.state_dict())
    x = torch.rand(3, 3, image_size, image_size)
    with torch.no_grad():
        assert torch.equal(mine(x), theirs(x))


def test_notebook_06_gradcam_matches_the_helper_and_the_library():
    import numpy as np
    import torch

    from helpers import explain, models_compare

    by_hand = notebook_definition("06_tta_gradcam", "helpers.explain.gradcam_by_hand")
    torch.manual_seed(0)
    model = models_compare.Meso4(image_size=64).eval()
    face = torch.rand(3, 64, 64)
    layer = explain.default_target_layer(model)
    mine = by_hand(model, face, layer)
    assert mine.shape == (64, 64) and mine.std() > 0.01
    np.testing.assert_array_equal(mine, explain.gradcam_by_hand(model, face, layer))
    library = explain.gradcam_torch(model, face, target_layer=layer)[0]
    assert float(np.abs(mine - library).max()) < 1e-4
