"""Shared test set-up: an isolated workspace and a papermill notebook runner.

All tests write into one temporary workspace (data, results, figures), never
into the repository. Set DEEPFAKE_TEST_WORKSPACE to a folder to keep and reuse
it between runs (the generated sample and face crops are then not made again).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

import helpers  # noqa: F401  (loads Triton before any test imports TensorFlow; see helpers/__init__.py)

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"

WORKSPACE = Path(os.environ.get("DEEPFAKE_TEST_WORKSPACE") or tempfile.mkdtemp(prefix="deepfake-course-tests-"))
for _variable, _sub in [("DEEPFAKE_DATA_DIR", "data"), ("DEEPFAKE_RESULTS_DIR", "results"),
                        ("DEEPFAKE_FIGURES_DIR", "figures")]:
    os.environ[_variable] = str(WORKSPACE / _sub)
    (WORKSPACE / _sub).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("MPLBACKEND", "Agg")  # this process; the notebooks' kernels draw inline (run_notebook)
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# What every notebook gets in the tests: the smallest profile, the built-in
# sample, random weights (no downloads), whatever device there is.
SMOKE_PARAMETERS = {"PROFILE": "smoke", "DATA_SOURCE": "sample", "PRETRAINED": False, "DEVICE": "auto"}

_executed: dict = {}


def notebook_path(name: str) -> Path:
    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def run_notebook(name: str, suffix: str = "", timeout: int = 900, **parameters) -> Path:
    """Execute ``notebooks/<name>.ipynb`` with papermill (smoke profile) once per session.

    Only parameters the notebook declares are injected. Returns the executed
    notebook's path; raises papermill's error (with the failing cell) on failure.
    """
    from helpers import course

    wanted = {**SMOKE_PARAMETERS, **parameters}
    key = (name, suffix, json.dumps(wanted, sort_keys=True, default=str))
    if key not in _executed:
        output = WORKSPACE / "executed" / f"{name}{suffix}.ipynb"
        kernel_backend = os.environ.get("MPLBACKEND")
        os.environ["MPLBACKEND"] = INLINE_BACKEND  # figures in the outputs, as `make course` leaves them (the book)
        try:
            course.execute(notebook_path(name), output, wanted, timeout=timeout)
        finally:
            os.environ["MPLBACKEND"] = kernel_backend
        _executed[key] = output
    return _executed[key]


@pytest.fixture(scope="session")
def workspace() -> Path:
    return WORKSPACE


def load_result(name: str) -> dict:
    path = WORKSPACE / "results" / f"{name}.json"
    assert path.exists(), f"{name} did not record {path}"
    return json.loads(path.read_text())
