"""Running the notebooks themselves: the course command and the notebook tests share this.

``python tools/run_course.py`` (what ``make course`` calls) executes every
notebook in order with papermill, injecting only the parameters each notebook
declares, and writes a summary of what they recorded.
"""
from __future__ import annotations

import ast
import json
import time
from pathlib import Path

from . import config

NOTEBOOKS_DIR = config.REPO_ROOT / "notebooks"


def course_notebooks() -> list[Path]:
    """The numbered notebooks, in course order."""
    return sorted(p for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def parameters_cells(notebook: Path) -> list[dict]:
    nb = json.loads(Path(notebook).read_text())
    return [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]


def declared_parameters(notebook: Path) -> dict:
    """Name -> default value of each assignment in the notebook's parameters cell."""
    cells = parameters_cells(notebook)
    if len(cells) != 1:
        raise ValueError(f"{notebook} must have exactly one cell tagged 'parameters', has {len(cells)}.")
    tree = ast.parse("".join(cells[0]["source"]))
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    try:
                        declared[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        declared[target.id] = ast.unparse(node.value)
    return declared


def execute(notebook: Path, output: Path, parameters: dict, timeout: int | None = None) -> dict:
    """Run one notebook with papermill; inject only the parameters it declares.

    Returns what was injected and how long it took. Papermill's error (with
    the failing cell's traceback) propagates.
    """
    import papermill as pm

    declared = declared_parameters(notebook)
    injected = {k: v for k, v in parameters.items() if k in declared}
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pm.execute_notebook(str(notebook), str(output), parameters=injected, kernel_name="python3",
                        cwd=str(NOTEBOOKS_DIR), progress_bar=False, execution_timeout=timeout)
    return {"notebook": notebook.stem, "parameters": injected, "seconds": round(time.perf_counter() - start, 1)}
