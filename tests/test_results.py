import json
import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from helpers import results  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("DEEPFAKE_FIGURES_DIR", str(tmp_path / "figures"))


def test_record_merges_and_converts_numpy():
    results.record_results("99_test", {"auc": np.float32(0.75), "matrix": np.eye(2, dtype=int)})
    path = results.record_results("99_test", {"loss": float("nan"), "n": np.int64(3)})
    data = json.loads(path.read_text())
    assert math.isclose(data["auc"], 0.75) and data["matrix"] == [[1, 0], [0, 1]]
    assert data["loss"] is None and data["n"] == 3 and "_recorded" in data
    assert results.load_results("99_test")["n"] == 3


def test_missing_results_say_which_notebook_to_run():
    with pytest.raises(FileNotFoundError, match="run notebooks/42_nothing.ipynb"):
        results.load_results("42_nothing")


def test_save_fig_writes_png():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = results.save_fig(fig, "line")
    plt.close(fig)
    assert path.name == "line.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timer_measures():
    with results.Timer() as timer:
        sum(range(10000))
    assert timer.seconds > 0
