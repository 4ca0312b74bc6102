"""Student copies of the notebooks: every cell tagged `solution` replaced by a prompt.

    python tools/make_student.py                  (what `make student` runs) -> student/NN_name.ipynb
    python tools/make_student.py --out DIR        somewhere else
    python tools/make_student.py --only 04 05     some notebooks

How to mark a solution: in Jupyter, select the cell, open the property inspector
(the gear icon on the right) and add the tag `solution`; or, in the notebook's JSON,
`"metadata": {"tags": ["solution"]}`. Start a code solution with a comment that
states the task (`# Exercise 2: ...`): the student copy keeps that first comment
line above the prompt. A markdown cell tagged `solution` (a written answer)
becomes "Your answer here".

The copies are written next to notebooks/, with no outputs, and the teacher's
notebooks are never changed. The helpers are found the same way (the copies sit
one folder below the course, like notebooks/).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import config, course  # noqa: E402

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
CODE_PROMPT = "# Your code here: this cell held the teacher's solution.\n"
MARKDOWN_PROMPT = "**Your answer here.** *(This cell held the teacher's answer.)*"
PROTECTED_TAGS = {"parameters", "injected-parameters", "colab-setup"}
DEFAULT_OUT = config.REPO_ROOT / "student"


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def prompt_for(cell: dict) -> dict:
    """The cell a student gets instead of a solution cell."""
    tags = [t for t in _tags(cell) if t != SOLUTION_TAG] + [EXERCISE_TAG]
    metadata = {**cell.get("metadata", {}), "tags": tags}
    if cell["cell_type"] == "code":
        lines = "".join(cell["source"]).splitlines()
        task = lines[0] + "\n" if lines and lines[0].lstrip().startswith("#") else ""
        return {"cell_type": "code", "execution_count": None, "id": cell.get("id"), "metadata": metadata,
                "outputs": [], "source": (task + CODE_PROMPT).splitlines(keepends=True)}
    return {"cell_type": "markdown", "id": cell.get("id"), "metadata": metadata, "source": [MARKDOWN_PROMPT]}


def student_copy(nb: dict, name: str = "notebook") -> tuple[dict, int]:
    """A copy of ``nb`` with its solution cells replaced and every output cleared; and how many were replaced."""
    out = copy.deepcopy(nb)
    replaced, cells = 0, []
    for index, cell in enumerate(out["cells"]):
        if SOLUTION_TAG in _tags(cell):
            clash = PROTECTED_TAGS & set(_tags(cell))
            if clash:
                raise ValueError(f"{name}: cell {index} is tagged both '{SOLUTION_TAG}' and "
                                 f"{', '.join(sorted(clash))}; a student copy needs that cell, untag it.")
            cells.append(prompt_for(cell))
            replaced += 1
            continue
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    out["cells"] = cells
    out.setdefault("metadata", {})["deepfake_course"] = {"student_copy": True, "solutions_replaced": replaced}
    return out, replaced


def write_student_copies(notebooks, out_dir: Path) -> dict[str, int]:
    """Write a student copy of each notebook into ``out_dir``; name -> number of solutions replaced."""
    out_dir = Path(out_dir)
    if out_dir.resolve() == course.NOTEBOOKS_DIR.resolve():
        raise ValueError("The student copies would overwrite the teacher's notebooks; choose another --out.")
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for notebook in notebooks:
        notebook = Path(notebook)
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        copied, counts[notebook.stem] = student_copy(nb, notebook.name)
        (out_dir / notebook.name).write_text(json.dumps(copied, indent=1, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where the copies go ({DEFAULT_OUT})")
    parser.add_argument("--notebooks", type=Path, default=course.NOTEBOOKS_DIR, help="the teacher's notebooks")
    parser.add_argument("--only", nargs="*", default=None, help="notebook numbers, e.g. 04 05")
    args = parser.parse_args(argv)
    notebooks = sorted(args.notebooks.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if nb.name[:2] in args.only]
    try:
        counts = write_student_copies(notebooks, args.out)
    except ValueError as error:
        print(f"make student: {error}", file=sys.stderr)
        return 1
    for name, n in counts.items():
        print(f"{name}: {n} solution cell(s) replaced by a prompt")
    if not any(counts.values()):
        print(f"No cell is tagged '{SOLUTION_TAG}' yet, so the copies equal the notebooks (without outputs). "
              "Tag the cells that hold exercise solutions (see this script's help).")
    print(f"Student copies: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
