import math

import numpy as np
import pandas as pd
import pytest

from helpers import evaluation


def test_perfect_and_inverted_predictions():
    perfect = evaluation.binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert perfect["accuracy"] == 1 and perfect["roc_auc"] == 1
    assert perfect["confusion_matrix"] == [[2, 0], [0, 2]]
    inverted = evaluation.binary_metrics([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])
    assert inverted["accuracy"] == 0 and inverted["roc_auc"] == 0


def test_log_loss_matches_formula_and_clips():
    m = evaluation.binary_metrics([1, 0], [0.8, 0.4])
    assert math.isclose(m["log_loss"], -(math.log(0.8) + math.log(0.6)) / 2, rel_tol=1e-9)
    assert math.isfinite(evaluation.binary_metrics([1, 0], [0.0, 1.0])["log_loss"])


def test_balanced_accuracy_on_skewed_labels():
    m = evaluation.binary_metrics([1, 1, 1, 0], [0.9, 0.9, 0.9, 0.9])
    assert m["accuracy"] == 0.75 and m["balanced_accuracy"] == 0.5


def test_single_class_has_no_auc():
    assert evaluation.binary_metrics([1, 1], [0.7, 0.2])["roc_auc"] is None


def test_bad_input():
    with pytest.raises(ValueError):
        evaluation.binary_metrics([1, 0], [0.5])
    with pytest.raises(ValueError):
        evaluation.binary_metrics([], [])


def test_confident_rule_uses_confident_fake_frames():
    frames = [0.5] * 8 + [0.95, 0.97]
    assert evaluation.aggregate_mean(frames) < 0.6
    assert evaluation.aggregate_confident(frames) == pytest.approx(0.96)
    assert evaluation.aggregate_confident([0.1, 0.1, 0.15, 0.6]) == pytest.approx(0.35 / 3)
    assert evaluation.aggregate_confident([0.4, 0.6]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        evaluation.aggregate_confident([])


def test_video_scores_and_two_level_evaluation():
    table = pd.DataFrame({"video": ["a", "a", "b", "b", "c"], "label": [1, 1, 0, 0, 1],
                          "prob_fake": [0.9, 0.7, 0.2, 0.4, 0.6]})
    videos = evaluation.video_scores(table)
    assert list(videos["video"]) == ["a", "b", "c"]
    assert np.allclose(videos["prob_fake"], [0.8, 0.3, 0.6])
    assert list(videos["n_faces"]) == [2, 2, 1]
    both = evaluation.evaluate_frames_and_videos(table)
    assert both["frame"]["n"] == 5 and both["video"]["n"] == 3
    with pytest.raises(ValueError):
        evaluation.video_scores(table, rule="median")


def test_roc_points_span_unit_square():
    pts = evaluation.roc_points([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.6])
    assert pts["fpr"][0] == 0 and pts["tpr"][-1] == 1
