"""Notebook 04 (smoke profile): what it recorded, the checkpoint it saved, and its figures."""
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import WORKSPACE, load_result, run_notebook
from helpers import evaluation, training_torch

pytestmark = pytest.mark.notebook
NAME = "04_inception_resnet"
LEARNING_KEYS = ("passed", "loss_fell", "beats_chance", "first_loss", "last_loss", "roc_auc", "n")


@pytest.fixture(scope="module")
def result():
    run_notebook(NAME)
    return load_result(NAME)


def _scores(result, split) -> pd.DataFrame:
    return pd.DataFrame(result["scores"][split])


def _check_interval(metrics, level, n):
    assert metrics["level"] == level and metrics["n"] == n
    for key in ("accuracy", "log_loss"):
        low, high = metrics[f"{key}_ci"]
        assert low - 1e-9 <= metrics[key] <= high + 1e-9, key  # the bootstrap's and sklearn's sums round apart
    assert "roc_auc_ci" in metrics and metrics["ci_level"] == 0.95


def test_the_model_learned_something(result):
    """Fails when nothing is learned: the recorded training curve and test face scores go through
    evaluation.learning_check (the check tests/test_training_torch.py shows failing on shuffled labels)."""
    test = _scores(result, "test")
    losses = result["clean_train_loss"]  # on clean training faces, before training and after its last epoch
    check = evaluation.learning_check(losses, test["target"], test["prob_fake"], groups=test["video"], level="frame")
    evaluation.assert_learned(check)
    printed = result["learning_check"]
    assert {k: check[k] for k in LEARNING_KEYS} == {k: printed[k] for k in LEARNING_KEYS}
    if check["beats_chance"] is None:  # the smoke sample: fewer than 3 test videos of a class
        assert min(check["n_units_per_class"].values()) < 3


def test_training_history_and_the_kept_epoch(result):
    history = result["history"]
    runs = result["epochs_run"]
    assert 1 <= runs <= result["max_epochs"]
    assert all(len(history[k]) == runs for k in ("train_loss", "val_loss", "train_acc", "val_acc"))
    assert history["val_loss"][result["best_epoch"] - 1] == min(history["val_loss"])
    assert result["history_n"] == {"level": "frame", "train": result["n_train_faces_used"],
                                   "val": result["n_faces"]["val"]}
    assert result["pretrained"] is False and result["profile"] == "smoke" and result["seed"] == 42
    assert result["image_size"] >= 80  # InceptionResnetV1 needs faces of at least about 80 px


def test_the_epoch_written_by_hand_ran_over_its_faces(result):
    hand = result["hand_epoch"]
    assert hand["faces"] == result["clean_train_faces"] == 2 * result["n_videos"]["train"]  # smoke: 2 per video
    assert hand["batches"] == max(1, hand["faces"] // result["batch_size"])


def test_test_metrics_at_frame_and_video_level_come_from_the_recorded_scores(result):
    test, frames = result["test"], _scores(result, "test")
    _check_interval(test["frame"], "frame", result["n_faces"]["test"])
    _check_interval(test["video"], "video", result["n_videos"]["test"])
    assert test["frame"]["n_videos"] == result["n_videos"]["test"]
    recomputed = evaluation.frame_and_video_metrics(frames, rule=result["video_rule"])
    for level in ("frame", "video"):
        for key in ("accuracy", "roc_auc", "log_loss", "accuracy_ci", "roc_auc_ci"):
            assert test[level][key] == pytest.approx(recomputed[level][key]), (level, key)
        assert test[level]["confusion_matrix"] == recomputed[level]["confusion_matrix"], level
    comparison = result["val_rule_comparison"]
    assert set(comparison) == {"mean", "confident"}
    for metrics in comparison.values():
        _check_interval(metrics, "video", result["n_videos"]["val"])
    # the rule was chosen by validation log loss
    assert comparison[result["video_rule"]]["log_loss"] == min(m["log_loss"] for m in comparison.values())


def test_frozen_versus_finetuned_experiment(result):
    experiment = result["freeze_experiment"]
    assert set(experiment) == {"backbone", "none"}
    assert experiment["backbone"]["trainable_parameters"] < experiment["none"]["trainable_parameters"] / 10
    for run in experiment.values():
        _check_interval(run["val_frame"], "frame", result["n_faces"]["val"])


def test_checkpoint_reloads_both_ways_with_identical_outputs(result):
    from facenet_pytorch import InceptionResnetV1

    from helpers import model_registry, models_torch

    path = Path(result["checkpoint"])
    assert path.is_file() and path.name == f"resnetinceptionv1_epoch_{result['best_epoch']}.pth"
    assert path.parent == WORKSPACE / "data" / "models"
    assert models_torch.default_checkpoint() == path.resolve()
    assert result["reload_max_abs_difference"] < 1e-4

    model, metadata = model_registry.load_checkpoint(path)
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


def test_figures_were_saved(result):
    for name in ("04_training_curves", "04_augmentation", "04_test_scores"):
        figure = WORKSPACE / "figures" / f"{name}.png"
        assert figure.is_file() and figure.stat().st_size > 5000, name
