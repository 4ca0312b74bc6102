"""Notebook 03 (ResNet50 + LSTM in Keras 3), smoke profile, on the TensorFlow and the PyTorch backend."""
import math
from pathlib import Path

import pytest

from conftest import load_result, run_notebook

NOTEBOOK = "03_keras_resnet_lstm"
BACKENDS = {"tensorflow": {}, "torch": {"suffix": "_torch", "KERAS_BACKEND": "torch"}}
METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "log_loss", "confusion_matrix")


@pytest.fixture(scope="module", params=list(BACKENDS))
def run(request):
    backend = request.param
    run_notebook(NOTEBOOK, **BACKENDS[backend])
    recorded = load_result(NOTEBOOK)
    assert backend in recorded, f"notebook 03 on {backend} recorded nothing under {backend!r}"
    return recorded[backend]


pytestmark = pytest.mark.notebook


def test_ran_on_the_requested_backend_in_the_smoke_profile(run):
    assert run["profile"] == "smoke" and run["pretrained"] is False
    assert run["backend"] in BACKENDS
    assert run["settings"]["train_mode"] == "cached" and run["standardize_features"] is True
    assert all(run["n_videos"][split] >= 1 for split in ("train", "val", "test"))


def test_training_ran_the_requested_epochs_or_stopped_early_with_finite_losses(run):
    epochs = run["epochs_run"]
    assert 1 <= epochs <= run["epochs_requested"]
    assert run["stopped_early"] == (epochs < run["epochs_requested"])
    history = run["history"]
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc"):
        assert len(history[key]) == epochs, key
    assert all(math.isfinite(v) for v in history["loss"] + history["val_loss"])
    assert all(0.0 <= v <= 1.0 for v in history["accuracy"] + history["val_accuracy"])
    assert 1 <= run["best_epoch"] <= epochs and run["monitor"] == "val_loss"
    assert run["train_seconds"] > 0 and run["seconds_per_epoch"] > 0


def test_test_metrics_are_video_level_and_in_range(run):
    metrics = run["video"]
    assert set(METRICS) <= set(metrics)
    assert metrics["n"] == run["n_videos"]["test"]
    for key in ("accuracy", "balanced_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["roc_auc"] is None or 0.0 <= metrics["roc_auc"] <= 1.0
    assert math.isfinite(metrics["log_loss"]) and metrics["log_loss"] >= 0.0
    matrix = metrics["confusion_matrix"]
    assert len(matrix) == 2 and all(len(r) == 2 for r in matrix) and sum(map(sum, matrix)) == metrics["n"]
    assert 0.0 <= run["train_video"]["accuracy"] <= 1.0


def test_the_reports_model_was_built_trained_and_saved(run):
    params = run["params"]
    assert params["non_trainable"] > 23_000_000  # the frozen ResNet50
    lstm, dense = run["settings"]["lstm_units"], run["settings"]["dense_units"]
    assert params["trainable"] == 4 * lstm * (2048 + lstm + 1) + lstm * dense + dense + dense + 1
    # the end-to-end model on faces and the head on cached features agree (frozen backbone)
    assert run["cached_vs_end_to_end_max_abs_diff"] < 1e-4
    assert run["saved_model_vs_cached_head_max_abs_diff"] < 1e-4  # the saved file is the trained model
    model_path = Path(run["model_path"])
    assert model_path.exists() and model_path.name == f"resnet_lstm_{run['backend']}.keras"
    assert run["peak_gpu_mib"] is None or run["peak_gpu_mib"] > 0


def test_figures_6_and_7_and_the_teaching_figures_exist(run):
    figures = run["figures"]
    suffix = "" if run["backend"] == "tensorflow" else f"_{run['backend']}"
    assert Path(figures["fig6_accuracy"]).name == f"03_fig6_accuracy{suffix}.png"
    assert Path(figures["fig7_loss"]).name == f"03_fig7_loss{suffix}.png"
    for name in ("fig6_accuracy", "fig7_loss", "sequences", "augmentation", "features", "running_verdict"):
        path = Path(figures[name])
        assert path.exists() and path.stat().st_size > 5_000, name
