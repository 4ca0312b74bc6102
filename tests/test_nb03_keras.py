"""Notebook 03 (ResNet50 + LSTM in Keras 3), smoke profile, on the TensorFlow and the PyTorch backend."""
from pathlib import Path

import numpy as np
import pytest

from conftest import load_result, run_notebook
from helpers import evaluation

NOTEBOOK = "03_keras_resnet_lstm"
BACKENDS = {"tensorflow": {}, "torch": {"suffix": "_torch", "KERAS_BACKEND": "torch"}}
LEARNING_KEYS = ("passed", "loss_fell", "beats_chance", "first_loss", "last_loss", "roc_auc", "n")


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


def test_the_model_learned_something(run):
    """Fails when nothing is learned: the recorded training curve and test scores go through
    evaluation.learning_check (the check tests/test_training_torch.py shows failing on shuffled labels)."""
    scores = run["test_scores"]
    losses = run["clean_train_loss"]  # on the clean training videos, before training and after its last epoch
    check = evaluation.learning_check(losses, scores["labels"], scores["prob_fake"], level="video")
    evaluation.assert_learned(check)
    printed = run["learning_check"]  # what the notebook printed is what the test finds
    assert {k: check[k] for k in LEARNING_KEYS} == {k: printed[k] for k in LEARNING_KEYS}
    if check["beats_chance"] is None:  # the smoke sample: fewer than 3 test videos of a class
        assert min(check["n_units_per_class"].values()) < 3


def test_training_ran_the_requested_epochs_or_stopped_early(run):
    epochs = run["epochs_run"]
    assert 1 <= epochs <= run["epochs_requested"]
    assert run["stopped_early"] == (epochs < run["epochs_requested"])
    history = run["history"]
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc"):
        assert len(history[key]) == epochs, key
    assert run["monitor"] == "val_loss"
    assert run["best_epoch"] == int(np.argmin(history["val_loss"])) + 1  # the kept epoch is the best one
    assert run["history_n"] == {"level": "video", "train": run["n_videos"]["train"], "val": run["n_videos"]["val"]}


def test_test_metrics_are_video_level_with_intervals_from_the_recorded_scores(run):
    metrics, scores = run["video"], run["test_scores"]
    assert metrics["level"] == "video" and metrics["n"] == run["n_videos"]["test"] == len(scores["videos"])
    recomputed = evaluation.binary_metrics(scores["labels"], scores["prob_fake"], ci=True)
    for key in ("n", "accuracy", "roc_auc", "log_loss", "accuracy_ci", "roc_auc_ci", "log_loss_ci"):
        assert metrics[key] == pytest.approx(recomputed[key]), key
    assert metrics["confusion_matrix"] == recomputed["confusion_matrix"]
    for key in ("accuracy", "log_loss"):
        low, high = metrics[f"{key}_ci"]
        assert low - 1e-9 <= metrics[key] <= high + 1e-9, key  # the bootstrap's and sklearn's sums round apart
    train = run["train_video"]
    assert train["level"] == "video" and train["n"] == run["n_videos"]["train"] and "accuracy_ci" in train


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


def test_figures_6_and_7_and_the_teaching_figures_exist(run):
    figures = run["figures"]
    suffix = "" if run["backend"] == "tensorflow" else f"_{run['backend']}"
    assert Path(figures["fig6_accuracy"]).name == f"03_fig6_accuracy{suffix}.png"
    assert Path(figures["fig7_loss"]).name == f"03_fig7_loss{suffix}.png"
    for name in ("fig6_accuracy", "fig7_loss", "sequences", "augmentation", "features", "running_verdict"):
        path = Path(figures[name])
        assert path.exists() and path.stat().st_size > 5_000, name
