"""Notebook 05 (smoke profile): each model learned, Table 2 with intervals, per-method AUCs, checkpoints."""
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import WORKSPACE, load_result, run_notebook

pytestmark = pytest.mark.notebook
NAME = "05_model_comparison"
SMOKE_MODELS = ["custom_cnn", "meso4"]  # the smoke profile leaves DenseNet121 out (see the notebook)
ALL_ROWS = ["inception_resnet_v1", *SMOKE_MODELS, "ensemble"]
MESO4_PAPER_PARAMETERS = 27_977  # Afchar et al., MesoNet (WIFS 2018, arXiv:1809.00888), Meso-4 at 256x256


@pytest.fixture(scope="module")
def result():
    run_notebook(NAME)
    return load_result(NAME)


# Fewer held-out videos of a class than this, and beating chance tells nothing: on the smoke sample
# (one REAL and one FAKE video per held-out split) a model that learned nothing beats 0.5 half the time.
MIN_VIDEOS_PER_CLASS = 3


def learning_problems(evidence: dict, held_out_videos: dict | None = None) -> list[str]:
    """Why a model's record says it learned nothing (empty when it learned): the checks of section 6.

    The training loss (faces without augmentation) must fall from the untrained
    model's and end below the best constant guess: an untrained or broken model
    fails both. The held-out faces of the validation and the test split must be
    ranked better than chance where the split has at least MIN_VIDEOS_PER_CLASS
    videos of each class (``held_out_videos``: videos per split; None = check).
    """
    problems = []
    final, guess, initial = evidence["train_loss_final"], evidence["constant_guess_loss"], evidence["train_loss_initial"]
    if not final < guess:
        problems.append(f"training loss {final:.3f} not below the constant guess {guess:.3f}")
    if initial is not None and not final < initial:
        problems.append(f"training loss did not fall ({initial:.3f} -> {final:.3f})")
    for split in ("val", "test"):
        if held_out_videos is not None and held_out_videos[split] // 2 < MIN_VIDEOS_PER_CLASS:
            continue
        auc = evidence[f"{split}_frame"]["roc_auc"]
        if auc is None or not auc > 0.5:
            problems.append(f"{split} face ROC AUC {auc} does not beat chance (0.5)")
    return problems


def test_every_model_and_the_ensemble_has_a_row(result):
    assert result["models"] == ["inception_resnet_v1", *SMOKE_MODELS]
    assert [row["model"] for row in result["rows"]] == ALL_ROWS
    assert result["profile"] == "smoke" and result["pretrained"] is False
    assert result["trained_on"].startswith("sample:")


def test_each_model_learned_something(result):
    learning = result["learning"]
    assert set(learning) == set(result["models"])
    problems = {name: learning_problems(evidence, result["n_videos"]) for name, evidence in learning.items()}
    assert not any(problems.values()), problems
    for name in SMOKE_MODELS:  # trained here, so their starting loss was measured
        assert learning[name]["train_loss_initial"] is not None
        assert learning[name]["n_train_faces"] == result["n_faces"]["train_new_models"]
    for evidence in learning.values():  # face-level intervals resample whole videos
        for split in ("val", "test"):
            frame = evidence[f"{split}_frame"]
            assert frame["ci_unit"] == "group" and frame["n"] == result["n_faces"][split]


def test_learning_check_rejects_a_model_that_learned_nothing():
    nothing = {"train_loss_initial": 0.69, "train_loss_final": 0.70, "constant_guess_loss": 0.6931,
               "val_frame": {"roc_auc": 0.5}, "test_frame": {"roc_auc": 1.0}}
    assert len(learning_problems(nothing)) == 3  # above the guess, rose, chance on validation
    learned = {**nothing, "train_loss_final": 0.5, "val_frame": {"roc_auc": 0.9}}
    assert learning_problems(learned) == []
    assert "did not fall" in learning_problems({**learned, "train_loss_initial": 0.4})[0]
    few, enough = {"train": 5, "val": 2, "test": 2}, {"train": 40, "val": 6, "test": 6}
    assert len(learning_problems(nothing, few)) == 2  # the smoke sample: only the two loss checks apply
    assert len(learning_problems(nothing, enough)) == 3


def test_meso4_parameter_count_is_the_papers(result):
    check = result["parameter_check"]["meso4"]
    assert check["counted"] == check["by_hand"] == MESO4_PAPER_PARAMETERS
    assert check["matches"] is True and "1809.00888" in check["source"]


def test_parameter_counts_follow_the_architectures(result):
    table = result["table"]
    side = math.ceil(table["meso4"]["image_size"] / 32)  # four 'same' poolings: 2, 2, 2, 4
    meso_convs = (3 * 3 * 3 * 8 + 8) + (5 * 5 * 8 * 8 + 8) + (5 * 5 * 8 * 16 + 16) + (5 * 5 * 16 * 16 + 16)
    meso_bn = 2 * (8 + 8 + 16 + 16)
    assert table["meso4"]["parameters"] == meso_convs + meso_bn + (16 * side * side * 16 + 16) + 17
    assert table["meso4"]["parameters"] < table["custom_cnn"]["parameters"] < 200_000
    assert table["inception_resnet_v1"]["parameters"] > 20e6
    assert table["ensemble"]["parameters"] == sum(table[m]["parameters"] for m in ALL_ROWS[:-1])


def test_table2_rows_carry_level_n_and_intervals(result):
    n_test = result["n_videos"]["test"]
    assert result["test_classes"]["real"] + result["test_classes"]["fake"] == n_test
    for row in result["rows"]:
        assert row["level"] == "video" and row["n_test_videos"] == n_test
        assert row["n_train_videos"] == result["n_videos"]["train"]
        for key in ("train_accuracy", "test_accuracy", "test_roc_auc", "test_log_loss"):
            low, high = row[f"{key}_ci"]
            assert low <= row[key] + 1e-9 and row[key] <= high + 1e-9, (row["model"], key, row[key], low, high)
    for name in ALL_ROWS[:-1]:
        recorded = result[f"test_{name}"]
        assert recorded["video"]["n"] == n_test and recorded["frame"]["n"] == result["n_faces"]["test"]
        assert recorded["video"]["roc_auc_ci"] == result["table"][name]["test_roc_auc_ci"]
        assert recorded["video"]["accuracy"] == pytest.approx(result["table"][name]["test_accuracy"])


def test_ensemble_is_the_mean_of_the_video_probabilities(result):
    probs = pd.DataFrame(result["test_video_probabilities"])
    assert set(ALL_ROWS[:-1]) <= set(probs.columns) and len(probs) == result["n_videos"]["test"]
    mean = probs[ALL_ROWS[:-1]].mean(axis=1)
    accuracy = float(((mean >= 0.5).astype(int) == probs["target"]).mean())
    assert accuracy == pytest.approx(result["table"]["ensemble"]["test_accuracy"])
    assert result["test_ensemble"]["video"]["roc_auc_ci"] == result["table"]["ensemble"]["test_roc_auc_ci"]


def test_per_method_auc_of_every_model(result):
    from helpers import data_sources

    methods = data_sources.load_dataset(result["paths"]["dataset"], probe=False).set_index("name")["method"]
    probs = pd.DataFrame(result["test_video_probabilities"]).set_index("video")
    probs["method"] = probs.index.map(methods)
    fakes = probs[probs["target"] == 1]
    assert result["test_fake_methods"] == fakes["method"].value_counts().to_dict()
    assert set(result["per_method"]) == set(ALL_ROWS)
    for name in ALL_ROWS[:-1]:
        rows = {row["method"]: row for row in result["per_method"][name]}
        assert set(rows) == set(result["test_fake_methods"])
        for method, row in rows.items():
            part = probs[(probs["target"] == 0) | (probs["method"] == method)]
            assert row["n_fake"] == int((part["target"] == 1).sum()) and row["n_real"] == result["test_classes"]["real"]
            assert row["level"] == "video" and len(row["roc_auc_ci"]) == 2
            assert row["roc_auc"] == pytest.approx(roc_auc_score(part["target"], part[name]))
            caught = float((part.loc[part["target"] == 1, name] >= 0.5).mean())
            assert row["detected"] == pytest.approx(caught)


def test_csv_and_figures_exist(result):
    csv = pd.read_csv(result["paths"]["csv"])
    assert csv["model"].tolist() == ALL_ROWS
    for column in ("published_test_accuracy", "n_test_videos", "test_accuracy", "test_accuracy_ci_low",
                   "test_accuracy_ci_high", "test_roc_auc", "test_roc_auc_ci_low", "test_roc_auc_ci_high",
                   "test_log_loss", "parameters", "train_seconds", "inference_ms_per_video", "peak_gpu_mib"):
        assert column in csv.columns, column
    assert np.allclose(csv["test_roc_auc_ci_low"], [row["test_roc_auc_ci"][0] for row in result["rows"]])
    for name in ("05_table2", "05_roc_curves", "05_training_curves", "05_accuracy_vs_published", "05_per_method"):
        path = WORKSPACE / "figures" / f"{name}.png"
        assert path.exists() and path.stat().st_size > 5_000, path


def test_checkpoints_load_and_reproduce_the_test_scores(result):
    """The notebook's own CustomCNN / Meso4 weights load into the helper's classes and score the same."""
    from helpers import crop_manifest, datasets_torch, evaluation, model_registry

    manifest = crop_manifest.load_manifest(result["paths"]["manifest"])
    test_faces = datasets_torch.split_table(manifest, "test")
    probs = pd.DataFrame(result["test_video_probabilities"]).set_index("video")
    for name in SMOKE_MODELS:
        path = model_registry.compare_checkpoint_path(name)
        assert str(path) == result["paths"]["checkpoints"][name]
        model, metadata = model_registry.load_compare_checkpoint(path)
        assert metadata["arch"] == name and metadata["image_size"] == result["table"][name]["image_size"]
        assert metadata["trained_on"] == result["trained_on"]
        frames = evaluation.score_faces(model, test_faces, metadata["image_size"])
        videos = frames.groupby("video")["prob_fake"].mean()
        assert videos.to_numpy() == pytest.approx(probs.loc[videos.index, name].to_numpy(), abs=1e-5)
