"""Notebook 04 (smoke profile): what it recorded, the checkpoint it saved, and its figures."""
import math
from pathlib import Path

import pytest
import torch

from conftest import WORKSPACE, load_result, run_notebook

pytestmark = pytest.mark.notebook
NAME = "04_inception_resnet"
SCORES = ("accuracy", "balanced_accuracy", "roc_auc")


@pytest.fixture(scope="module")
def result():
    run_notebook(NAME)
    return load_result(NAME)


def _check_metrics(metrics):
    assert metrics["n"] > 0
    for key in SCORES:
        value = metrics[key]
        assert value is None or 0.0 <= value <= 1.0, (key, value)
    assert metrics["log_loss"] is not None and 0.0 <= metrics["log_loss"] < 20
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["n"]


def test_training_history_is_complete_and_finite(result):
    history = result["history"]
    runs = result["epochs_run"]
    assert 1 <= runs <= result["max_epochs"]
    assert all(len(history[k]) == runs for k in ("train_loss", "val_loss", "train_acc", "val_acc"))
    assert all(v is not None and math.isfinite(v) and v >= 0 for v in history["train_loss"] + history["val_loss"])
    assert all(0.0 <= v <= 1.0 for v in history["train_acc"] + history["val_acc"])
    assert 1 <= result["best_epoch"] <= runs
    assert history["val_loss"][result["best_epoch"] - 1] == min(history["val_loss"])
    assert result["faces_per_second"] > 0 and result["train_seconds"] > 0
    assert result["pretrained"] is False and result["profile"] == "smoke"
    assert result["image_size"] >= 80  # InceptionResnetV1 needs faces of at least about 80 px


def test_test_metrics_at_frame_and_video_level(result):
    test = result["test"]
    _check_metrics(test["frame"])
    _check_metrics(test["video"])
    assert test["video"]["n"] == result["n_videos"]["test"] and test["frame"]["n"] == result["n_faces"]["test"]
    assert test["video_rule"] == result["video_rule"] in ("mean", "confident")
    comparison = result["val_rule_comparison"]
    assert set(comparison) == {"mean", "confident"}
    for metrics in comparison.values():
        _check_metrics(metrics)
    # the rule was chosen by validation log loss
    assert comparison[result["video_rule"]]["log_loss"] == min(m["log_loss"] for m in comparison.values())


def test_frozen_versus_finetuned_experiment(result):
    experiment = result["freeze_experiment"]
    assert set(experiment) == {"backbone", "none"}
    assert experiment["backbone"]["trainable_parameters"] < experiment["none"]["trainable_parameters"] / 10
    for run in experiment.values():
        assert math.isfinite(run["val_loss"]) and run["faces_per_second"] > 0
        assert run["val_roc_auc"] is None or 0 <= run["val_roc_auc"] <= 1


def test_checkpoint_reloads_both_ways_with_identical_outputs(result):
    from facenet_pytorch import InceptionResnetV1

    from helpers import models_torch

    path = Path(result["checkpoint"])
    assert path.is_file() and path.name == f"resnetinceptionv1_epoch_{result['best_epoch']}.pth"
    assert path.parent == WORKSPACE / "data" / "models"
    assert models_torch.default_checkpoint() == path.resolve()
    assert result["reload_max_abs_difference"] < 1e-4

    model, metadata = models_torch.load_checkpoint(path)
    assert metadata["image_size"] == result["image_size"] and metadata["arch"] == models_torch.ARCH
    assert metadata["epoch"] == result["best_epoch"] and metadata["video_rule"] == result["video_rule"]
    assert metadata["freeze"] == result["freeze"] and metadata["threshold"] == 0.5 and metadata["trained_on"]

    plain = InceptionResnetV1(classify=True, num_classes=1)
    plain.load_state_dict(torch.load(path, map_location=torch.device("cpu"))["model_state_dict"])
    plain.eval()
    size = result["image_size"]
    faces = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model(faces), plain(faces)
    assert ours.shape == (3, 1) and torch.allclose(ours, theirs, atol=1e-5)
    probs = torch.sigmoid(ours)
    assert bool(((probs >= 0) & (probs <= 1)).all())


def test_figures_were_saved(result):
    for name in ("04_training_curves", "04_augmentation", "04_test_scores"):
        figure = WORKSPACE / "figures" / f"{name}.png"
        assert figure.is_file() and figure.stat().st_size > 5000, name
