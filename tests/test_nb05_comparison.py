"""Notebook 05 (smoke profile): the measured Table 2, its CSV and figures, the ensemble and checkpoints."""
import math

import pandas as pd
import pytest
import torch

from conftest import WORKSPACE, load_result, run_notebook

pytestmark = pytest.mark.notebook
NAME = "05_model_comparison"
NEW_MODELS = ["custom_cnn", "meso4", "densenet121"]
ALL_ROWS = ["inception_resnet_v1", *NEW_MODELS, "ensemble"]
PUBLISHED = {"custom_cnn": (0.8523, 0.8057), "inception_resnet_v1": (0.9795, 0.9463),
             "meso4": (0.9568, 0.8997), "densenet121": (0.9699, 0.9181)}
RATES = ("train_accuracy", "test_accuracy", "test_balanced_accuracy", "test_roc_auc")


@pytest.fixture(scope="module")
def result():
    run_notebook(NAME)
    return load_result(NAME)


def test_every_model_and_the_ensemble_has_a_row(result):
    assert result["models"] == ["inception_resnet_v1", *NEW_MODELS]
    assert [row["model"] for row in result["rows"]] == ALL_ROWS
    assert set(result["table"]) == set(ALL_ROWS)
    assert result["profile"] == "smoke" and result["pretrained"] is False


def test_metrics_are_in_valid_ranges(result):
    both_classes = result["test_classes"]["real"] > 0 and result["test_classes"]["fake"] > 0
    assert result["test_classes"]["real"] + result["test_classes"]["fake"] == result["n_videos"]["test"]
    for row in result["rows"]:
        for key in RATES:
            value = row[key]
            if key == "test_roc_auc" and not both_classes:
                assert value is None
                continue
            assert value is not None and 0.0 <= value <= 1.0, (row["model"], key, value)
        assert row["test_log_loss"] is not None and 0.0 <= row["test_log_loss"] < 20, row
        assert row["inference_ms_per_video"] > 0
        assert isinstance(row["parameters"], int) and row["parameters"] > 0
        if torch.cuda.is_available():
            assert row["peak_gpu_mib"] > 0
        else:
            assert row["peak_gpu_mib"] is None
    for name in ALL_ROWS[:-1]:
        row = result["table"][name]
        assert row["train_seconds"] > 0 and 1 <= row["epochs_run"] <= result["settings"]["epochs"]
        video = result[f"test_{name}"]["video"]
        assert video["n"] == result["n_videos"]["test"]
        assert result[f"test_{name}"]["frame"]["n"] == result["n_faces"]["test"]
        assert video["accuracy"] == pytest.approx(row["test_accuracy"])


def test_published_numbers_stand_beside_the_measured_ones(result):
    for name, (train, test) in PUBLISHED.items():
        row = result["table"][name]
        assert (row["published_train_accuracy"], row["published_test_accuracy"]) == (train, test)
    ensemble = result["table"]["ensemble"]
    assert ensemble["published_train_accuracy"] is None and ensemble["published_test_accuracy"] is None


def test_parameter_counts_follow_the_architectures(result):
    table = result["table"]
    assert table["densenet121"]["parameters"] == 6_954_881
    side = math.ceil(table["meso4"]["image_size"] / 32)  # four 'same' poolings: 2, 2, 2, 4
    meso_convs = (3 * 3 * 3 * 8 + 8) + (5 * 5 * 8 * 8 + 8) + (5 * 5 * 8 * 16 + 16) + (5 * 5 * 16 * 16 + 16)
    meso_bn = 2 * (8 + 8 + 16 + 16)
    assert table["meso4"]["parameters"] == meso_convs + meso_bn + (16 * side * side * 16 + 16) + 17
    assert table["meso4"]["parameters"] < table["custom_cnn"]["parameters"] < table["densenet121"]["parameters"]
    assert table["inception_resnet_v1"]["parameters"] > 20e6
    assert table["ensemble"]["parameters"] == sum(table[m]["parameters"] for m in ALL_ROWS[:-1])


def test_ensemble_is_the_mean_of_the_video_probabilities(result):
    probs = pd.DataFrame(result["test_video_probabilities"])
    assert set(ALL_ROWS[:-1]) <= set(probs.columns) and len(probs) == result["n_videos"]["test"]
    mean = probs[ALL_ROWS[:-1]].mean(axis=1)
    accuracy = float(((mean >= 0.5).astype(int) == probs["label"]).mean())
    assert accuracy == pytest.approx(result["table"]["ensemble"]["test_accuracy"])
    assert all(0.0 <= p <= 1.0 for name in ALL_ROWS[:-1] for p in probs[name])


def test_csv_and_figures_exist(result):
    csv = pd.read_csv(result["paths"]["csv"])
    assert csv["model"].tolist() == ALL_ROWS
    for column in ("published_train_accuracy", "published_test_accuracy", "train_accuracy", "test_accuracy",
                   "test_balanced_accuracy", "test_roc_auc", "test_log_loss", "parameters", "train_seconds",
                   "inference_ms_per_video", "peak_gpu_mib"):
        assert column in csv.columns
    assert csv.loc[csv["model"] == "meso4", "published_test_accuracy"].item() == pytest.approx(0.8997)
    for name in ("05_table2", "05_roc_curves", "05_training_curves", "05_accuracy_vs_published"):
        path = WORKSPACE / "figures" / f"{name}.png"
        assert path.exists() and path.stat().st_size > 5_000, path


def test_checkpoints_load_and_reproduce_the_test_scores(result):
    from helpers import datasets_torch, faces, models_compare, training_torch

    manifest = faces.load_manifest(result["paths"]["manifest"])
    test_faces = datasets_torch.split_table(manifest, "test")
    probs = pd.DataFrame(result["test_video_probabilities"]).set_index("video")
    for name in NEW_MODELS:
        path = models_compare.checkpoint_path(name)
        assert str(path) == result["paths"]["checkpoints"][name]
        model, metadata = models_compare.load_compare_checkpoint(path)
        assert metadata["arch"] == name and metadata["image_size"] == result["table"][name]["image_size"]
        frames = training_torch.score_faces(model, test_faces, metadata["image_size"])
        videos = frames.groupby("video")["prob_fake"].mean()
        assert videos.to_numpy() == pytest.approx(probs.loc[videos.index, name].to_numpy(), abs=1e-5)
