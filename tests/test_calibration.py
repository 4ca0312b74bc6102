"""Calibration, the uncertain band, input warnings, EER and AP against values worked out by hand."""
import warnings

import numpy as np
import pandas as pd
import pytest

from helpers import calibration as cal

LABELS = [0, 0, 1, 1]
PROBS = [0.1, 0.3, 0.6, 0.9]


def test_ece_and_brier_by_hand():
    # two bins: [0, 0.5) holds 0.1, 0.3 (mean 0.2, no fake) and [0.5, 1] holds 0.6, 0.9 (mean 0.75, all fake)
    assert cal.expected_calibration_error(LABELS, PROBS, n_bins=2) == pytest.approx(0.5 * 0.2 + 0.5 * 0.25)
    assert cal.brier_score(LABELS, PROBS) == pytest.approx((0.01 + 0.09 + 0.16 + 0.01) / 4)
    bins = cal.reliability_bins(LABELS, PROBS, n_bins=2)
    assert bins["n"].tolist() == [2, 2] and bins["mean_prob"].tolist() == pytest.approx([0.2, 0.75])
    assert bins["fake_share"].tolist() == [0.0, 1.0]


def test_a_calibrated_model_has_zero_ece_and_1_counts_in_the_last_bin():
    labels, probs = [1, 0, 1, 1], [0.75, 0.75, 0.75, 1.0]
    bins = cal.reliability_bins(labels, probs, n_bins=4)
    assert bins["n"].tolist() == [0, 0, 0, 4]
    assert cal.expected_calibration_error([0, 1, 1, 1], [0.75] * 4, n_bins=10) == pytest.approx(0.0)


def test_temperature_scaling_recovers_the_hand_computed_temperature():
    # every fake-leaning face has logit 2 and 3 in 4 of them are fakes; every real-leaning one logit -2
    # and 3 in 4 are reals: the best probability is 0.75 = sigmoid(2 / T), so T = 2 / ln 3
    logits = np.array([2, 2, 2, 2, -2, -2, -2, -2], float)
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    temperature = cal.fit_temperature(logits, labels)
    assert temperature == pytest.approx(2 / np.log(3), rel=1e-4)
    calibrated = cal.apply_temperature(cal.sigmoid(logits), temperature)
    assert calibrated[:4] == pytest.approx([0.75] * 4, abs=1e-4)
    before = cal.expected_calibration_error(labels, cal.sigmoid(logits))
    assert cal.expected_calibration_error(labels, calibrated) < before
    assert cal.temperature_log_loss(temperature, logits, labels) < cal.temperature_log_loss(1.0, logits, labels)


def test_an_interior_temperature_is_not_flagged():
    logits = np.array([2, 2, 2, 2, -2, -2, -2, -2], float)
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    fit = cal.temperature_fit(logits, labels)
    assert fit["at_bound"] is None and fit["note"] is None and fit["n"] == 8
    assert fit["temperature"] == pytest.approx(2 / np.log(3), rel=1e-4)
    # T = 1: 6 faces at log(1 + e^-2), 2 at log(1 + e^2); at the optimum every face has p = 0.75 or 0.25
    assert fit["log_loss_before"] == pytest.approx((6 * np.log1p(np.exp(-2)) + 2 * np.log1p(np.exp(2))) / 8)
    assert fit["log_loss_after"] == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)), rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a real optimum
        cal.fit_temperature(logits, labels)


def test_scores_no_better_than_chance_push_the_temperature_to_its_upper_bound():
    # logit 2 is half the time right, half wrong, and so is -2: the loss
    # 1/2 [log(1 + e^(-2/T)) + log(1 + e^(2/T))] falls all the way to log 2 as T grows
    logits, labels = [2.0, 2.0, -2.0, -2.0], [1, 0, 1, 0]
    fit = cal.temperature_fit(logits, labels, bounds=(0.05, 20.0))
    assert fit["at_bound"] == "upper" and fit["temperature"] == 20.0 and "chance" in fit["note"]
    assert fit["log_loss_after"] == pytest.approx(0.5 * (np.log1p(np.exp(-0.1)) + np.log1p(np.exp(0.1))))
    assert fit["log_loss_before"] == pytest.approx(0.5 * (np.log1p(np.exp(-2)) + np.log1p(np.exp(2))))
    with pytest.warns(cal.TemperatureAtBoundWarning, match="upper bound"):
        assert cal.fit_temperature(logits, labels) == 20.0
    # scores that are always wrong cannot be repaired by a temperature either (it never flips a sign)
    assert cal.temperature_fit([3.0, -3.0], [0, 1])["at_bound"] == "upper"


def test_perfectly_separated_scores_push_the_temperature_to_its_lower_bound():
    fit = cal.temperature_fit([1.0, -1.0, 3.0, -3.0], [1, 0, 1, 0], bounds=(0.05, 20.0))
    assert fit["at_bound"] == "lower" and fit["temperature"] == 0.05 and "separated" in fit["note"]
    # at T = 0.05 the smallest logit becomes 20: log(1 + e^-20) ~ 2e-9 for two of the four faces
    assert fit["log_loss_after"] == pytest.approx(0.5 * np.log1p(np.exp(-20.0)) + 0.5 * np.log1p(np.exp(-60.0)))
    with pytest.raises(ValueError, match="bounds"):
        cal.temperature_fit([1.0, -1.0], [1, 0], bounds=(2.0, 20.0))


def test_the_band_of_a_chance_level_model_covers_every_validation_face():
    # T at its upper bound squeezes the scores to sigmoid(+-2 / 20) = 0.525 / 0.475: no band up to
    # +-0.45 reaches the target, every validation face lies inside the widest one, every verdict is UNCERTAIN
    logits, labels = np.array([2.0, 2.0, -2.0, -2.0]), [1, 0, 1, 0]
    probs = cal.apply_temperature(cal.sigmoid(logits), cal.temperature_fit(logits, labels)["temperature"])
    assert probs == pytest.approx([0.52498, 0.52498, 0.47502, 0.47502], abs=1e-5)
    band = cal.choose_uncertain_band(labels, probs, target_accuracy=0.95)
    assert not band["reached"] and band["half_width"] == pytest.approx(0.45)
    assert band["share_inside"] == 1.0 and band["accuracy_outside"] is None and band["n_outside"] == 0
    assert {cal.verdict_of(p, band=band) for p in probs} == {cal.UNCERTAIN}


def test_the_fast_ece_equals_the_weighted_gaps_of_the_reliability_bins():
    rng = np.random.default_rng(3)
    labels, probs = rng.integers(0, 2, 500), rng.uniform(0, 1, 500) ** 2
    probs[:3] = [0.0, 0.5, 1.0]  # the edges: 1.0 belongs to the last bin
    bins = cal.reliability_bins(labels, probs, n_bins=7)
    used = bins[bins["n"] > 0]
    by_bins = float((used["n"] / 500 * (used["fake_share"] - used["mean_prob"]).abs()).sum())
    assert cal.expected_calibration_error(labels, probs, n_bins=7) == pytest.approx(by_bins, abs=1e-12)


def test_temperature_effect_by_hand():
    # four faces all scored 0.9 = sigmoid(ln 9), three of them fakes: ECE 0.9 - 0.75 = 0.15. T = 2 turns
    # 0.9 into sigmoid(ln 3) = 0.75, the true share, so the ECE becomes 0. A stratified bootstrap keeps one
    # real and three fakes in every resample, so every draw gives the same numbers: the intervals are points.
    labels, probs = [0, 1, 1, 1], [0.9] * 4
    effect = cal.temperature_effect(labels, probs, 2.0, n_bins=10, n_boot=50)
    assert effect["before"]["ece"] == pytest.approx(0.15) and effect["after"]["ece"] == pytest.approx(0.0, abs=1e-12)
    assert effect["ece_change"] == pytest.approx(-0.15)
    assert effect["ece_change_ci"] == pytest.approx([-0.15, -0.15])
    assert effect["before"]["ece_ci"] == pytest.approx([0.15, 0.15])
    assert effect["before"]["n"] == effect["after"]["n"] == 4 and effect["n_groups"] == 4
    assert effect["after"]["brier"] == pytest.approx((0.75 ** 2 + 3 * 0.25 ** 2) / 4)
    # T = 1 changes nothing
    same = cal.temperature_effect(labels, probs, 1.0, n_boot=20)
    assert same["ece_change"] == pytest.approx(0.0) and same["ece_change_ci"] == pytest.approx([0.0, 0.0])


def test_temperature_effect_resamples_whole_videos():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 60)
    probs = np.clip(0.5 + (labels - 0.5) * 0.3 + rng.normal(0, 0.25, 120), 0.01, 0.99)
    videos = np.repeat(np.arange(12), 10)  # 6 real and 6 fake videos of 10 faces
    effect = cal.temperature_effect(labels, probs, 1.5, groups=videos, n_boot=200)
    assert effect["n_groups"] == 12 and effect["after"]["n"] == 120
    low, high = effect["ece_change_ci"]
    assert low <= effect["ece_change"] <= high and low < high
    assert effect["ece_change"] == pytest.approx(effect["after"]["ece"] - effect["before"]["ece"])


def test_temperature_keeps_the_ranking_and_needs_both_classes():
    probs = np.array([0.2, 0.9, 0.6, 0.4])
    scaled = cal.apply_temperature(probs, 3.0)
    assert np.argsort(scaled).tolist() == np.argsort(probs).tolist()
    assert cal.apply_temperature([0.5], 7.0)[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both REAL and FAKE"):
        cal.fit_temperature([1.0, 2.0], [1, 1])


def test_eer_and_average_precision_by_hand():
    labels, probs = [0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]
    # ROC points (fpr, tpr): (0, 0) (0, .5) (.5, .5) (.5, 1) (1, 1): fpr = fnr = 0.5 at the third
    assert cal.equal_error_rate(labels, probs) == pytest.approx(0.5)
    # ranked: 0.9 fake (precision 1, recall .5), 0.6 real, 0.4 fake (precision 2/3, recall 1)
    assert cal.average_precision(labels, probs) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert cal.equal_error_rate(LABELS, PROBS) == 0.0 and cal.average_precision(LABELS, PROBS) == 1.0
    assert cal.equal_error_rate([1, 1], [0.2, 0.3]) is None


def test_eer_interpolates_between_roc_points():
    # three reals, one fake scored between the first and the second real
    labels, probs = [0, 0, 0, 1], [0.9, 0.5, 0.1, 0.7]
    # fpr/fnr along the curve: (0, 1) (1/3, 1) (1/3, 0): the crossing lies at 1/3
    assert cal.equal_error_rate(labels, probs) == pytest.approx(1 / 3)


def test_metric_ci_brackets_the_value_and_resamples_videos():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    probs = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 80), 0, 1)
    videos = np.repeat(np.arange(16), 5)
    by_row = cal.metric_ci(labels, probs, "eer", n_boot=200)
    by_video = cal.metric_ci(labels, probs, "average_precision", groups=videos, n_boot=200)
    assert by_row["low"] <= by_row["value"] <= by_row["high"] and by_row["n"] == 80
    assert by_video["low"] <= by_video["value"] <= by_video["high"] and by_video["n"] == 16
    bench = cal.bench_metrics(labels, probs, groups=videos, n_boot=100)
    assert bench["n"] == 16 and bench["n_real"] == bench["n_fake"] == 8 and bench["roc_auc_ci"][0] is not None


def test_the_uncertain_band_covers_the_validation_mistakes_and_fires_inside():
    labels = [0, 0, 0, 1, 1, 1]
    probs = [0.1, 0.2, 0.535, 0.465, 0.8, 0.9]  # the two mistakes sit 0.035 from the threshold
    band = cal.choose_uncertain_band(labels, probs, target_accuracy=1.0)
    assert band["half_width"] == pytest.approx(0.04) and band["reached"]
    assert (band["low"], band["high"]) == pytest.approx((0.46, 0.54))
    assert band["accuracy_outside"] == 1.0 and band["share_inside"] == pytest.approx(2 / 6) and band["n_outside"] == 4
    assert cal.verdict_of(0.5, band=band) == cal.verdict_of(0.53, band=band) == "UNCERTAIN"
    assert cal.verdict_of(0.9, band=band) == "FAKE" and cal.verdict_of(0.2, band=band) == "REAL"


def test_no_band_when_validation_is_clean():
    band = cal.choose_uncertain_band([0, 0, 1, 1], [0.1, 0.45, 0.55, 0.9], target_accuracy=0.95)
    assert band["half_width"] == 0.0 and band["reached"]
    assert cal.verdict_of(0.5, band=band) == "FAKE" and cal.verdict_of(0.49, band=band) == "REAL"
    assert cal.verdict_of(0.5, band=None) == "FAKE"


def test_a_weak_model_reaches_the_target_only_on_the_few_faces_outside_a_wide_band():
    # ten faces near the threshold, half of them wrong, and two confident right ones: only a band that leaves
    # those two outside is 95 % accurate, so the target is "reached" on 2 faces and 10 of 12 get no verdict
    labels = [0, 1] + [0, 1, 0, 1, 0] + [1, 0, 1, 0, 1]
    probs = [0.05, 0.95] + [0.46] * 5 + [0.46, 0.54, 0.54, 0.54, 0.54]
    band = cal.choose_uncertain_band(labels, probs, target_accuracy=0.95)
    assert band["reached"] and band["n_outside"] == 2 and band["accuracy_outside"] == 1.0
    assert band["share_inside"] == pytest.approx(10 / 12) and 0.04 <= band["half_width"] <= 0.06


def test_an_unreachable_target_keeps_the_widest_band_and_says_so():
    band = cal.choose_uncertain_band([0, 1], [0.99, 0.01], target_accuracy=0.95, max_half_width=0.3)
    assert not band["reached"] and band["half_width"] == pytest.approx(0.3)


def training_faces():
    return pd.DataFrame({"x1": [10.0] * 20, "y1": 0.0, "x2": 10.0 + np.linspace(90, 110, 20), "y2": 50.0,
                         "prob": np.linspace(0.97, 0.999, 20)})


def test_the_warnings_fire_on_small_or_doubtful_faces_and_not_on_clean_ones():
    reference = cal.input_reference(training_faces())
    assert reference["median_face_size"] == pytest.approx(100.0) and reference["min_face_size"] == pytest.approx(50.0)
    assert reference["min_detection_prob"] == pytest.approx(0.9)  # the floor: training faces were all above 0.97
    assert cal.input_warnings(98, 0.99, reference) == []
    small = cal.input_warnings(30, 0.99, reference)
    assert len(small) == 1 and "small" in small[0]
    doubtful = cal.input_warnings(100, 0.8, reference)
    assert len(doubtful) == 1 and "unsure" in doubtful[0]
    assert len(cal.input_warnings(30, 0.8, reference)) == 2
    assert cal.input_warnings(30, 0.1, None) == []


def test_warning_rates_count_faces():
    reference = cal.input_reference(training_faces())
    shifted = pd.DataFrame({"x1": [0.0] * 4, "y1": 0.0, "x2": [100.0, 100.0, 30.0, 30.0], "y2": [100.0, 100.0, 30.0, 30.0],
                            "prob": [0.99, 0.5, 0.99, 0.99]})
    rates = cal.warning_rates(shifted, reference)
    assert rates == {"n_faces": 4, "small_face": 0.5, "low_detection_prob": 0.25, "any_warning": 0.75}
    assert cal.warning_rates(training_faces(), reference)["any_warning"] == 0.0


def test_wrong_answer_confidence():
    out = cal.wrong_answer_confidence([0, 1, 1], [0.8, 0.3, 0.9])
    assert out["n_wrong"] == 2 and out["mean_confidence_when_wrong"] == pytest.approx((0.8 + 0.7) / 2)
