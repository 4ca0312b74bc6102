"""Student copies (`make student`): solution cells become prompts, everything else stays and still runs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))

import make_student  # noqa: E402

from conftest import SMOKE_PARAMETERS, notebook_path  # noqa: E402

SECRET = "teachers_secret_answer_4217"


def _cell(kind: str, source: str, tags=(), outputs=None) -> dict:
    cell = {"cell_type": kind, "id": f"c{abs(hash(source)) % 10**8}", "metadata": {"tags": list(tags)} if tags else {},
            "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=3, outputs=outputs or [])
    return cell


def _notebook(*cells) -> dict:
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}


def test_solution_cells_are_replaced_and_the_rest_is_kept():
    printed = [{"output_type": "stream", "name": "stdout", "text": ["42\n"]}]
    nb = _notebook(_cell("markdown", "# Title"),
                   _cell("code", "PROFILE = 'standard'", tags=["parameters"]),
                   _cell("code", "x = 41 + 1\nprint(x)", outputs=printed),
                   _cell("code", f"# Exercise 1: double x\ny = 2 * x  # {SECRET}", tags=["solution"], outputs=printed),
                   _cell("markdown", f"Because {SECRET}.", tags=["solution", "answer-to-2"]))
    student, replaced = make_student.student_copy(nb)
    assert replaced == 2
    text = json.dumps(student)
    assert SECRET not in text
    code_prompt, markdown_prompt = student["cells"][3], student["cells"][4]
    assert "".join(code_prompt["source"]) == "# Exercise 1: double x\n" + make_student.CODE_PROMPT
    assert code_prompt["outputs"] == [] and code_prompt["metadata"]["tags"] == ["exercise"]
    assert markdown_prompt["cell_type"] == "markdown" and "Your answer here" in "".join(markdown_prompt["source"])
    assert markdown_prompt["metadata"]["tags"] == ["answer-to-2", "exercise"]
    assert [c["source"] for c in student["cells"][:3]] == [c["source"] for c in nb["cells"][:3]]
    assert student["cells"][2]["outputs"] == []  # a student copy carries no outputs
    assert nb["cells"][3]["metadata"]["tags"] == ["solution"]  # the teacher's notebook is untouched
    assert student["metadata"]["deepfake_course"] == {"student_copy": True, "solutions_replaced": 2}


def test_a_solution_tag_on_the_parameters_cell_is_refused():
    nb = _notebook(_cell("code", "PROFILE = 'smoke'", tags=["parameters", "solution"]))
    with pytest.raises(ValueError, match="parameters"):
        make_student.student_copy(nb, "04_x.ipynb")


def test_make_student_writes_copies_and_never_over_the_notebooks(tmp_path):
    teacher = tmp_path / "notebooks"
    teacher.mkdir()
    nb = _notebook(_cell("code", "PROFILE = 'smoke'", tags=["parameters"]), _cell("code", SECRET, tags=["solution"]))
    (teacher / "01_demo.ipynb").write_text(json.dumps(nb))
    (teacher / "02_plain.ipynb").write_text(json.dumps(_notebook(_cell("code", "print(1)"))))
    result = subprocess.run([sys.executable, "tools/make_student.py", "--notebooks", str(teacher),
                             "--out", str(tmp_path / "student")], cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr
    assert "01_demo: 1 solution cell(s) replaced" in result.stdout and "02_plain: 0" in result.stdout
    assert SECRET not in (tmp_path / "student" / "01_demo.ipynb").read_text()
    assert SECRET in (teacher / "01_demo.ipynb").read_text()
    with pytest.raises(ValueError, match="overwrite"):
        make_student.write_student_copies([teacher / "01_demo.ipynb"], make_student.course.NOTEBOOKS_DIR)


@pytest.mark.notebook
def test_student_copy_of_a_real_notebook_runs(tmp_path, workspace):
    """Tag one cell of a throwaway copy of 00_setup as a solution: the student copy loses it and still runs."""
    from helpers import course

    nb = json.loads(notebook_path("00_setup").read_text())
    index = next(i for i, c in enumerate(nb["cells"]) if "get_device_properties" in "".join(c["source"]))
    solution_source = "".join(nb["cells"][index]["source"])
    nb["cells"][index]["metadata"]["tags"] = ["solution"]
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "00_setup.ipynb").write_text(json.dumps(nb, indent=1))
    counts = make_student.write_student_copies([teacher / "00_setup.ipynb"], tmp_path / "student")
    assert counts == {"00_setup": 1}
    student_path = tmp_path / "student" / "00_setup.ipynb"
    student = json.loads(student_path.read_text())
    assert "get_device_properties" not in student_path.read_text()
    assert "".join(student["cells"][index]["source"]) == make_student.CODE_PROMPT
    assert len(student["cells"]) == len(nb["cells"])
    assert solution_source not in json.dumps(student)

    results = tmp_path / "results"
    saved = {k: os.environ.get(k) for k in ("DEEPFAKE_RESULTS_DIR",)}
    os.environ["DEEPFAKE_RESULTS_DIR"] = str(results)  # keep the shared results/00_setup.json as it is
    try:
        course.execute(student_path, tmp_path / "executed" / "00_setup.ipynb",
                       {**SMOKE_PARAMETERS, "CHECK_TENSORFLOW": False}, timeout=600)
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    recorded = json.loads((results / "00_setup.json").read_text())
    assert recorded["profile"] == "smoke" and recorded["versions"]["torch"]
    executed = json.loads((tmp_path / "executed" / "00_setup.ipynb").read_text())
    prompt = next(c for c in executed["cells"] if "exercise" in c["metadata"].get("tags", []))
    assert prompt["execution_count"] is not None  # the prompt cell ran (as a no-op), and so did every cell after it
    last = [c for c in executed["cells"] if c["cell_type"] == "code"][-1]
    assert "Recorded" in json.dumps(last["outputs"])
    shutil.rmtree(tmp_path / "executed")
