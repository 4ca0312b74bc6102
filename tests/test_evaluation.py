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
    table = pd.DataFrame({"video": ["a", "a", "b", "b", "c"], "target": [1, 1, 0, 0, 1],
                          "prob_fake": [0.9, 0.7, 0.2, 0.4, 0.6]})
    videos = evaluation.video_scores(table)
    assert list(videos["video"]) == ["a", "b", "c"] and list(videos["target"]) == [1, 0, 1]
    assert np.allclose(videos["prob_fake"], [0.8, 0.3, 0.6])
    assert list(videos["n_faces"]) == [2, 2, 1]
    both = evaluation.evaluate_frames_and_videos(table)
    assert both["frame"]["n"] == 5 and both["video"]["n"] == 3
    with pytest.raises(ValueError):
        evaluation.video_scores(table, rule="median")


def test_the_frame_table_holds_the_integer_target_and_the_text_label(tmp_path):
    import torch

    import fake_crops

    def paint(rng, target, frame, size):
        return np.full((size, size, 3), 200 if target else 40, dtype=np.uint8)

    manifest = pd.DataFrame(fake_crops.write_crops(tmp_path, paint, videos_per_class=2, faces_per_video=2,
                                                   crop_size=16, splits=("test",)))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1))
    frame = evaluation.score_faces(model, manifest, 16, amp=False)
    assert pd.api.types.is_integer_dtype(frame["target"]) and frame["target"].tolist() == manifest["target"].tolist()
    assert frame["label"].tolist() == manifest["label"].tolist() and set(frame["label"]) == {"REAL", "FAKE"}
    assert "label_name" not in frame.columns
    videos = evaluation.video_scores(frame)
    assert (videos["label"] == np.where(videos["target"] == 1, "FAKE", "REAL")).all() and len(videos) == 4
    assert evaluation.frame_and_video_metrics(frame, n_boot=20)["video"]["n"] == 4


def test_a_table_without_target_is_refused_with_what_to_do():
    text_only = pd.DataFrame({"video": ["a", "a", "b", "b"], "label": ["FAKE", "FAKE", "REAL", "REAL"],
                              "method": ["swap", "swap", "real", "real"], "prob_fake": [0.9, 0.7, 0.2, 0.4]})
    for measure in (evaluation.evaluate_frames_and_videos, evaluation.frame_and_video_metrics,
                    evaluation.compare_video_rules, lambda t: evaluation.metrics_by_group(t, "method")):
        with pytest.raises(ValueError, match=r"no 'target' column .*'label', 'method'.*astype\(int\)"):
            measure(text_only)
    assert list(evaluation.video_scores(text_only)["label"]) == ["FAKE", "REAL"]  # scores need no target
    old_style = text_only.assign(label=[1, 1, 0, 0])  # a frame table of the old convention: integer 'label'
    with pytest.raises(ValueError, match="old name of 'target': rename it"):
        evaluation.frame_and_video_metrics(old_style)


def test_roc_points_span_unit_square():
    pts = evaluation.roc_points([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.6])
    assert pts["fpr"][0] == 0 and pts["tpr"][-1] == 1


def test_bootstrap_interval_contains_value_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small_y = np.repeat([0, 1], 10)
    small_p = np.clip(small_y * 0.3 + rng.uniform(0, 0.7, small_y.size), 0, 1)
    big_y = np.repeat([0, 1], 200)
    big_p = np.clip(big_y * 0.3 + rng.uniform(0, 0.7, big_y.size), 0, 1)
    small = evaluation.bootstrap_ci(small_y, small_p, "roc_auc", n_boot=300)
    big = evaluation.bootstrap_ci(big_y, big_p, "roc_auc", n_boot=300)
    for ci in (small, big):
        assert ci["low"] <= ci["value"] <= ci["high"]
    assert (big["high"] - big["low"]) < 0.6 * (small["high"] - small["low"])
    assert small["n"] == 20 and big["n"] == 400


def test_rank_auc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    p = np.array([0.2, 0.2, 0.5, 0.9, 0.5, 0.1, 0.7, 0.7])
    assert evaluation.bootstrap_ci(y, p, "roc_auc", n_boot=0)["value"] == pytest.approx(roc_auc_score(y, p))


def test_grouped_bootstrap_is_wider_than_pretending_frames_are_independent():
    # 10 videos x 20 near-identical faces: the faces add no information beyond their video
    rng = np.random.default_rng(1)
    video_y = np.repeat([0, 1], 5)
    video_p = np.clip(0.5 + (video_y - 0.5) * 0.3 + rng.normal(0, 0.2, 10), 0.01, 0.99)
    y, p, g = np.repeat(video_y, 20), np.repeat(video_p, 20) + rng.normal(0, 0.01, 200), np.repeat(np.arange(10), 20)
    rows = evaluation.bootstrap_ci(y, p, "roc_auc", n_boot=300)
    videos = evaluation.bootstrap_ci(y, p, "roc_auc", groups=g, n_boot=300)
    assert videos["n"] == 10 and rows["n"] == 200
    assert (videos["high"] - videos["low"]) > 2 * (rows["high"] - rows["low"])
    with pytest.raises(ValueError, match="both labels"):
        evaluation.bootstrap_ci([0, 1], [0.2, 0.8], groups=["a", "a"])


def test_binary_metrics_with_ci_and_format():
    m = evaluation.binary_metrics([0, 0, 0, 1, 1, 1], [0.1, 0.4, 0.35, 0.8, 0.3, 0.9], ci=True, n_boot=200)
    assert m["roc_auc_ci"][0] <= m["roc_auc"] <= m["roc_auc_ci"][1]
    assert m["accuracy_ci"][0] <= m["accuracy"] <= m["accuracy_ci"][1]
    assert m["ci_level"] == 0.95 and m["n_boot"] == 200
    text = evaluation.format_with_ci(m)
    assert text.startswith(f"{m['roc_auc']:.3f} [") and text.endswith("]")


def test_metrics_by_group_scores_each_method_against_all_reals():
    table = pd.DataFrame({
        "target": [0, 0, 0, 0, 1, 1, 1, 1],
        "method": ["real"] * 4 + ["easy"] * 2 + ["hard"] * 2,
        "prob_fake": [0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.25, 0.15],
    })
    out = evaluation.metrics_by_group(table, "method", n_boot=100).set_index("method")
    assert list(out.index) == ["easy", "hard"]
    assert out.loc["easy", "roc_auc"] == 1.0 and out.loc["easy", "detected"] == 1.0
    assert out.loc["hard", "roc_auc"] == pytest.approx(3 / 8) and out.loc["hard", "n_real"] == 4


def test_metric_change_ci_is_paired_and_signed():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    before = np.clip(0.5 + 0.15 * (labels - 0.5) + rng.normal(0, 0.2, 80), 0.01, 0.99)
    same = evaluation.metric_change_ci(labels, before, before, "roc_auc", n_boot=200)
    assert same["change"] == 0 and same["change_ci"] == [0.0, 0.0]
    better = np.clip(before + 0.3 * (labels - 0.5), 0.01, 0.99)  # pushes every face the right way
    auc = evaluation.metric_change_ci(labels, before, better, "roc_auc", n_boot=300)
    assert auc["change"] > 0 and auc["change_ci"][0] > 0 and auc["n"] == 80
    loss = evaluation.metric_change_ci(labels, before, better, "log_loss", n_boot=300)
    assert loss["change"] < 0 and loss["change_ci"][1] < 0  # lower log loss: a negative change
    videos = np.repeat(np.arange(16), 5)  # 16 "videos" of 5 faces, one label each
    grouped = evaluation.metric_change_ci(labels, before, better, "roc_auc", groups=videos, n_boot=300)
    assert grouped["n"] == 16 and grouped["change"] == pytest.approx(auc["change"])
    with pytest.raises(ValueError, match="both labels"):
        evaluation.metric_change_ci(labels, before, better, groups=np.zeros(80))
    one_class = evaluation.metric_change_ci([1, 1], [0.2, 0.3], [0.4, 0.5], "roc_auc")
    assert one_class["change"] is None


def test_weighted_metrics_equal_the_metrics_of_the_resampled_rows():
    """bootstrap draws are scored at once as row multiplicities: the same as copying the rows."""
    from helpers.evaluation import _metric_value

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 50)
    p = np.round(rng.random(50), 1)  # many ties
    weights = rng.integers(0, 3, size=(20, 50))
    weights[:, [np.flatnonzero(y == 0)[0], np.flatnonzero(y == 1)[0]]] += 1  # both classes in every draw
    for metric in ("accuracy", "log_loss", "roc_auc"):
        copied = [_metric_value(metric, y[np.repeat(np.arange(50), w)], p[np.repeat(np.arange(50), w)], 0.5)
                  for w in weights]
        np.testing.assert_allclose(evaluation._weighted_metric(metric, y, p, weights), copied, atol=1e-12)


# --------------------------------------------------------------------------- the learning check
def _video_scores(separation, n_per_class=6, faces=4, seed=0):
    """Face scores of REAL and FAKE videos; FAKE videos score ``separation`` higher on average."""
    rng = np.random.default_rng(seed)
    video_label = np.repeat([0, 1], n_per_class)
    video_score = 0.5 + separation * (video_label - 0.5) + rng.normal(0, 0.1, video_label.size)
    labels = np.repeat(video_label, faces)
    scores = np.clip(np.repeat(video_score, faces) + rng.normal(0, 0.02, labels.size), 0.01, 0.99)
    return labels, scores, np.repeat(np.arange(video_label.size), faces)


def test_learning_check_passes_a_model_that_learned():
    labels, scores, videos = _video_scores(separation=0.6)
    check = evaluation.learning_check([0.70, 0.52, 0.31], labels, scores, groups=videos, level="frame", n_boot=300)
    assert check["passed"] and check["loss_fell"] and check["beats_chance"]
    assert check["roc_auc"] == 1.0 and check["roc_auc_ci"][0] > 0.5 and check["reasons"] == []
    assert check["n"] == 48 and check["n_units_per_class"] == {"REAL": 6, "FAKE": 6} and check["level"] == "frame"
    evaluation.assert_learned(check, require_held_out=True)


def test_learning_check_fails_without_a_falling_loss_or_above_chance_scores():
    labels, scores, videos = _video_scores(separation=0.6)
    flat = evaluation.learning_check([0.693, 0.690, 0.689], labels, scores, groups=videos, n_boot=300)
    assert not flat["passed"] and not flat["loss_fell"] and "not 10% lower" in flat["reasons"][0]
    with pytest.raises(AssertionError, match="no sign of having learned"):
        evaluation.assert_learned(flat)
    labels, scores, videos = _video_scores(separation=0.0)  # scores unrelated to the labels
    guessing = evaluation.learning_check([0.7, 0.2], labels, scores, groups=videos, n_boot=300)
    assert guessing["loss_fell"] and guessing["beats_chance"] is False and not guessing["passed"]
    assert guessing["roc_auc_ci"][0] <= 0.5 and "chance" in guessing["reasons"][0]
    assert not evaluation.learning_check([0.7], labels, scores, groups=videos, n_boot=50)["loss_fell"]


def test_learning_check_says_when_held_out_data_are_too_few():
    labels, scores, videos = _video_scores(separation=0.6, n_per_class=2)
    check = evaluation.learning_check([0.7, 0.3], labels, scores, groups=videos, n_boot=100)
    assert check["beats_chance"] is None and check["passed"]  # the loss fell; the rest cannot be told
    assert "too few" in check["reasons"][0] and check["n_units_per_class"] == {"REAL": 2, "FAKE": 2}
    with pytest.raises(AssertionError, match="too few"):
        evaluation.assert_learned(check, require_held_out=True)
    # without groups each row counts: 8 faces per class are enough rows
    assert evaluation.learning_check([0.7, 0.3], labels, scores, n_boot=100)["beats_chance"] is not None


def test_describe_metrics_names_level_n_and_intervals():
    m = evaluation.binary_metrics([0, 0, 0, 1, 1, 1], [0.1, 0.4, 0.35, 0.8, 0.3, 0.9], ci=True, n_boot=100)
    frame = evaluation.describe_metrics({**m, "level": "frame", "n_videos": 3})
    assert frame.startswith(f"accuracy {evaluation.format_with_ci(m, 'accuracy')}, ROC AUC ")
    assert frame.endswith("(frame level, n = 6 faces of 3 videos)")
    assert evaluation.describe_metrics({**m, "level": "video"}).endswith("(video level, n = 6 videos)")


# ------------------------------------------------------------------ landmark alignment
