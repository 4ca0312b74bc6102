"""The whole course, standard profile, compared with the committed reference run (make test-functional).

Not part of `make test` (it takes as long as `make course`): select it with
``-m functional``. It runs in a temporary workspace, never in your data/ or results/.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from test_compare_reference import compare_reference

pytestmark = pytest.mark.functional


@pytest.mark.timeout(4 * 3600)  # the suite's 900 s per test would stop the course half-way
def test_standard_course_matches_the_reference_run(tmp_path):
    env = {**os.environ, "DEEPFAKE_DATA_DIR": str(tmp_path / "data"), "DEEPFAKE_RESULTS_DIR": str(tmp_path / "results"),
           "DEEPFAKE_FIGURES_DIR": str(tmp_path / "figures"), "DEEPFAKE_RUNS_DIR": str(tmp_path / "runs")}
    course = subprocess.run([sys.executable, "tools/run_course.py", "--profile", "standard", "--source", "sample",
                             "--pretrained", "False"], cwd=REPO_ROOT, env=env, timeout=3 * 3600)
    assert course.returncode == 0, "the course failed; see its output above"
    reference = compare_reference.DEFAULT_REFERENCE
    rows = compare_reference.compare(json.loads(reference.read_text()), tmp_path / "results")
    print(compare_reference.format_rows(rows))
    assert all(row["ok"] for row in rows), compare_reference.format_rows([r for r in rows if not r["ok"]])
