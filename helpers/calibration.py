"""Is a probability of 0.9 right nine times in ten? Calibration, unsure verdicts and unfamiliar inputs.

A detector's P(FAKE) is only useful as a probability if it is *calibrated*:
of all faces scored about 0.8, about 80 % should be fakes. Networks trained
with cross-entropy tend to be over-confident, most of all on data unlike their
training data. This module measures and repairs that, and lets a verdict say
when it does not know:

* :func:`expected_calibration_error` (ECE), :func:`brier_score` and
  :func:`reliability_bins` (the numbers behind a reliability diagram);
* :func:`fit_temperature`: temperature scaling (Guo et al., 2017), one number
  ``T`` that divides every logit, fitted on validation data by minimising the
  log loss; it changes confidence, never the ranking (AUC stays the same);
  :func:`temperature_fit` adds whether the fit found an optimum or ended at a
  bound (scores no better than chance, or perfectly separated);
* :func:`temperature_effect`: the ECE before and after a temperature, and
  its change, with paired bootstrap intervals;
* :func:`choose_uncertain_band`: a band of probabilities around the threshold
  where the verdict is "UNCERTAIN" instead of REAL or FAKE, chosen on
  validation data;
* :func:`input_reference` and :func:`input_warnings`: warnings when an input
  looks unlike the training faces, from signals every prediction has (the
  face's size in pixels, the detector's confidence);
* :func:`equal_error_rate` and :func:`average_precision`, the two metrics
  DeepfakeBench reports beside AUC, and :func:`metric_ci` for a bootstrap
  interval of any such metric.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

EPSILON = 1e-7
UNCERTAIN = "UNCERTAIN"


def _arrays(labels, probabilities):
    y = np.asarray(labels, dtype=float).ravel()
    p = np.asarray(probabilities, dtype=float).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"{y.size} labels and {p.size} probabilities: need the same, non-zero number.")
    return y, p


# ----------------------------------------------------------------------------------- calibration
def _bin_of(probabilities: np.ndarray, n_bins: int) -> np.ndarray:
    """The equal-width bin (0 .. n_bins - 1) of each probability; 1.0 falls in the last bin."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.digitize(probabilities, edges[1:-1], right=False), 0, n_bins - 1)


def reliability_bins(labels, probabilities, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins of P(FAKE): per bin its range, n, mean P(FAKE) and the share of true fakes.

    A calibrated model has ``fake_share`` close to ``mean_prob`` in every bin
    (the diagonal of the reliability diagram). The last bin includes 1.0.
    """
    y, p = _arrays(labels, probabilities)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = _bin_of(p, n_bins)
    rows = []
    for b in range(n_bins):
        inside = which == b
        rows.append({"bin_low": edges[b], "bin_high": edges[b + 1], "n": int(inside.sum()),
                     "mean_prob": float(p[inside].mean()) if inside.any() else np.nan,
                     "fake_share": float(y[inside].mean()) if inside.any() else np.nan})
    return pd.DataFrame(rows)


def expected_calibration_error(labels, probabilities, n_bins: int = 10) -> float:
    """ECE over ``n_bins`` equal-width bins of P(FAKE): sum over bins of (n_bin / n) * |fake share - mean P|.

    0 is perfect; a model that says 0.9 for faces of which half are fakes
    scores 0.4 on them. (n_bin / n) * |fake share - mean P| is |sum of (label - P)
    over the bin| / n, which is how it is computed: fast enough to bootstrap.
    """
    y, p = _arrays(labels, probabilities)
    gaps = np.bincount(_bin_of(p, n_bins), weights=y - p, minlength=n_bins)
    return float(np.abs(gaps).sum() / y.size)


def brier_score(labels, probabilities) -> float:
    """Mean squared difference between P(FAKE) and the label (0 best; always answering 0.5 gives 0.25)."""
    y, p = _arrays(labels, probabilities)
    return float(np.mean((p - y) ** 2))


def logit(probabilities) -> np.ndarray:
    """log(p / (1 - p)), with p clipped away from 0 and 1."""
    p = np.clip(np.asarray(probabilities, dtype=float), EPSILON, 1 - EPSILON)
    return np.log(p) - np.log1p(-p)


def sigmoid(logits) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=float)))


def temperature_log_loss(temperature: float, logits, labels) -> float:
    """Mean log loss of ``sigmoid(logits / temperature)``."""
    y, z = _arrays(labels, logits)
    scaled = z / float(temperature)
    # log(1 + exp(-s)) for fakes, log(1 + exp(s)) for reals, computed stably
    return float(np.mean(np.logaddexp(0.0, -scaled) * y + np.logaddexp(0.0, scaled) * (1 - y)))


def temperature_fit(logits, labels, bounds=(0.05, 20.0), tolerance: float = 1e-3) -> dict:
    """Fit a temperature (see :func:`fit_temperature`) and say whether the fit found an optimum.

    The log loss is searched over log T between ``bounds``. An answer within
    ``tolerance`` (in log T) of a bound means the loss was still falling there:
    no temperature inside the bounds is best, and the number returned is the
    bound, not a measurement. Two causes, named in ``at_bound``:

    * ``"upper"``: flattening the scores towards 0.5 keeps helping, which
      happens when they carry (almost) no information about the labels, i.e.
      the model is no better than chance on this data;
    * ``"lower"``: sharpening keeps helping, which happens when every face is
      on the right side of 0.5 (the classes are separated perfectly), so
      nothing pins down how sure the model should be.

    Returns temperature, at_bound (None, "upper" or "lower"), bounds,
    log_loss_before (T = 1), log_loss_after, n and, when at a bound, a
    plain-language ``note``.
    """
    from scipy.optimize import minimize_scalar

    y, z = _arrays(labels, logits)
    if np.unique(y).size < 2:
        raise ValueError("Temperature scaling needs both REAL and FAKE examples in the validation data.")
    low, high = (float(b) for b in bounds)
    if not 0 < low < 1 < high:
        raise ValueError(f"The bounds must satisfy 0 < low < 1 < high, got {bounds}.")
    fit = minimize_scalar(lambda log_t: temperature_log_loss(np.exp(log_t), z, y),
                          bounds=(np.log(low), np.log(high)), method="bounded", options={"xatol": 1e-6})
    log_t = float(fit.x)
    at_bound = "upper" if log_t >= np.log(high) - tolerance else "lower" if log_t <= np.log(low) + tolerance else None
    temperature = high if at_bound == "upper" else low if at_bound == "lower" else float(np.exp(log_t))
    result = {"temperature": temperature, "at_bound": at_bound, "bounds": [low, high], "n": int(y.size),
              "log_loss_before": temperature_log_loss(1.0, z, y),
              "log_loss_after": temperature_log_loss(temperature, z, y), "note": None}
    if at_bound == "upper":
        result["note"] = (f"The temperature hit its upper bound ({high:g}): the log loss kept falling as the scores "
                          "were flattened towards 0.5, so on this data they carry (almost) no information about the "
                          "labels. The model is no better than chance here; its temperature is not a measurement.")
    elif at_bound == "lower":
        result["note"] = (f"The temperature hit its lower bound ({low:g}): the log loss kept falling as the scores "
                          "were sharpened, because every face is on the right side of 0.5. Perfectly separated "
                          "validation data cannot say how sure the model should be; use more or harder data.")
    return result


class TemperatureAtBoundWarning(UserWarning):
    """The temperature fit ended at a bound: it found no optimum (see :func:`temperature_fit`)."""


def fit_temperature(logits, labels, bounds=(0.05, 20.0)) -> float:
    """The temperature T > 0 that minimises the log loss of ``sigmoid(logits / T)`` (one parameter).

    T > 1 softens over-confident scores, T < 1 sharpens timid ones. Fit it on
    validation data, never on the test set. Searched over log T, bounded by
    ``bounds``; a :class:`TemperatureAtBoundWarning` says when the answer is a
    bound rather than an optimum (:func:`temperature_fit` returns the details).
    """
    import warnings

    fit = temperature_fit(logits, labels, bounds)
    if fit["at_bound"]:
        warnings.warn(fit["note"], TemperatureAtBoundWarning, stacklevel=2)
    return fit["temperature"]


def apply_temperature(probabilities, temperature: float) -> np.ndarray:
    """Probabilities rescaled by a temperature: sigmoid(logit(p) / T)."""
    if not temperature > 0:
        raise ValueError(f"The temperature must be positive, got {temperature}.")
    return sigmoid(logit(probabilities) / float(temperature))


def calibration_summary(labels, probabilities, n_bins: int = 10) -> dict:
    """ECE, Brier score, log loss and n of one set of scores."""
    y, p = _arrays(labels, probabilities)
    q = np.clip(p, EPSILON, 1 - EPSILON)
    return {"n": int(y.size), "ece": expected_calibration_error(y, p, n_bins), "brier": brier_score(y, p),
            "log_loss": float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))), "n_bins": int(n_bins)}


def temperature_effect(labels, probabilities, temperature: float, groups=None, n_bins: int = 10,
                       n_boot: int = 1000, seed: int = 0) -> dict:
    """What a temperature did to one set of scores: :func:`calibration_summary` before and after, the ECEs
    with bootstrap 95 % intervals, and the change of the ECE (after - before) with its interval.

    The change is bootstrapped on the same resamples for both (a paired
    interval), by whole ``groups`` (videos) when given, so an interval that
    straddles 0 says the ECE did not measurably move. Minimising the log loss
    (what :func:`fit_temperature` does) usually lowers the ECE but does not
    have to: the ECE depends on the bins, and on a few hundred faces of a
    weak model it is noisy. Returns before, after (each with ece_ci),
    ece_change, ece_change_ci, n_groups and n_boot.
    """
    y, p = _arrays(labels, probabilities)
    q = apply_temperature(p, temperature)

    def ece(labels_, probs_):
        return expected_calibration_error(labels_, probs_, n_bins)

    def change(labels_, probs_):
        return ece(labels_, apply_temperature(probs_, temperature)) - ece(labels_, probs_)

    # the same seed and groups draw the same resamples in each call, so the three intervals are paired
    intervals = {name: metric_ci(y, scores, function, groups=groups, n_boot=n_boot, seed=seed)
                 for name, scores, function in (("before", p, ece), ("after", q, ece), ("change", p, change))}
    out = {"before": calibration_summary(y, p, n_bins), "after": calibration_summary(y, q, n_bins)}
    for name in ("before", "after"):
        out[name]["ece_ci"] = [intervals[name]["low"], intervals[name]["high"]]
    out.update(ece_change=intervals["change"]["value"],
               ece_change_ci=[intervals["change"]["low"], intervals["change"]["high"]],
               n_groups=intervals["change"]["n"], n_boot=int(n_boot), temperature=float(temperature))
    return out


def wrong_answer_confidence(labels, probabilities, threshold: float = 0.5) -> dict:
    """How sure the model was when it was wrong: mean confidence (max(p, 1 - p)) of its mistakes, and n."""
    y, p = _arrays(labels, probabilities)
    wrong = (p >= threshold).astype(float) != y
    confidence = np.maximum(p, 1 - p)
    return {"n_wrong": int(wrong.sum()), "n": int(y.size),
            "mean_confidence_when_wrong": float(confidence[wrong].mean()) if wrong.any() else None}


# ----------------------------------------------------------------------------------- the uncertain band
def choose_uncertain_band(labels, probabilities, threshold: float = 0.5, target_accuracy: float = 0.95,
                          step: float = 0.01, max_half_width: float = 0.45) -> dict:
    """The narrowest band ``[threshold - w, threshold + w]`` outside which the verdicts reach ``target_accuracy``.

    Chosen on validation scores: for w = 0, step, 2 step, ... the faces (or
    videos) scored outside the band are judged REAL/FAKE and their accuracy is
    measured; the first w that reaches the target wins. If none does, w stays
    at ``max_half_width`` and ``reached`` is False. Returns low, high,
    threshold, half_width, target_accuracy, reached, accuracy_outside,
    n_outside (the faces that accuracy was measured on: a target "reached" on
    a handful of faces means little) and share_inside (on the validation
    data) and n.
    """
    y, p = _arrays(labels, probabilities)
    chosen = None
    for w in np.arange(0.0, max_half_width + 1e-9, step):
        outside = np.abs(p - threshold) > w
        accuracy = float(((p[outside] >= threshold) == y[outside]).mean()) if outside.any() else None
        chosen = (float(w), accuracy, outside)
        if accuracy is not None and accuracy >= target_accuracy:
            break
    w, accuracy, outside = chosen
    return {"low": max(0.0, threshold - w), "high": min(1.0, threshold + w), "threshold": float(threshold),
            "half_width": w, "target_accuracy": float(target_accuracy),
            "reached": accuracy is not None and accuracy >= target_accuracy, "accuracy_outside": accuracy,
            "n_outside": int(outside.sum()), "share_inside": float(1 - outside.mean()), "n": int(y.size)}


def in_band(probability: float, band: dict | None) -> bool:
    """Whether a probability falls inside the band (its edges included)."""
    return band is not None and band["low"] <= float(probability) <= band["high"] and band["half_width"] > 0


def verdict_of(probability: float, threshold: float = 0.5, band: dict | None = None) -> str:
    """"UNCERTAIN" inside the band, otherwise "FAKE" at or above the threshold and "REAL" below."""
    if in_band(probability, band):
        return UNCERTAIN
    return "FAKE" if float(probability) >= threshold else "REAL"


# ----------------------------------------------------------------------------------- unfamiliar inputs
def face_sizes(table: pd.DataFrame) -> np.ndarray:
    """The longer side of each face box, in pixels of the frame it was found in."""
    return np.maximum(table["x2"] - table["x1"], table["y2"] - table["y1"]).to_numpy(dtype=float)


def input_reference(manifest: pd.DataFrame, size_ratio: float = 0.5, prob_quantile: float = 0.01,
                    prob_floor: float = 0.9) -> dict:
    """What training faces looked like, for :func:`input_warnings`: from the training crops' manifest rows.

    ``min_face_size``: ``size_ratio`` times the median face size of training
    (a face less than half as large as usual has far fewer pixels than the
    model learned from); ``min_detection_prob``: the ``prob_quantile`` quantile
    of the detector's confidence on training faces, but not above ``prob_floor``.
    """
    sizes = face_sizes(manifest)
    probs = manifest["prob"].to_numpy(dtype=float)
    if sizes.size == 0:
        raise ValueError("No training faces to describe: the manifest has no rows with a face.")
    median = float(np.nanmedian(sizes))
    return {"median_face_size": median, "min_face_size": size_ratio * median, "size_ratio": float(size_ratio),
            "min_detection_prob": float(min(np.nanquantile(probs, prob_quantile), prob_floor)),
            "n_training_faces": int(sizes.size)}


def input_warnings(face_size: float, detection_prob: float, reference: dict | None) -> list:
    """Plain-language warnings for one face that looks unlike the training faces (empty list: none)."""
    if not reference:
        return []
    warnings = []
    if float(face_size) < reference["min_face_size"]:
        warnings.append(f"The face is small ({face_size:.0f} px) compared with the training faces (median "
                        f"{reference['median_face_size']:.0f} px): the verdict is less reliable. Use a closer or "
                        "sharper shot.")
    if float(detection_prob) < reference["min_detection_prob"]:
        warnings.append(f"The face detector is unsure this is a face (confidence {detection_prob:.2f}, training "
                        f"faces at least {reference['min_detection_prob']:.2f}): the verdict is less reliable.")
    return warnings


def warning_rates(table: pd.DataFrame, reference: dict) -> dict:
    """How often each warning fires on the faces of ``table`` (columns x1, y1, x2, y2, prob)."""
    sizes, probs = face_sizes(table), table["prob"].to_numpy(dtype=float)
    small = sizes < reference["min_face_size"]
    unsure = probs < reference["min_detection_prob"]
    n = int(len(table))
    return {"n_faces": n, "small_face": float(small.mean()) if n else None,
            "low_detection_prob": float(unsure.mean()) if n else None,
            "any_warning": float((small | unsure).mean()) if n else None}


# ----------------------------------------------------------------------------------- DeepfakeBench's metrics
def equal_error_rate(labels, probabilities) -> float | None:
    """The error rate where the false-positive rate equals the false-negative rate (lower is better).

    Read off the ROC curve, interpolating linearly between its two points
    around the crossing. None when only one class is present.
    """
    from sklearn.metrics import roc_curve

    y, p = _arrays(labels, probabilities)
    if np.unique(y).size < 2:
        return None
    fpr, tpr, _ = roc_curve(y, p)
    fnr = 1 - tpr
    gap = fnr - fpr  # falls from 1 to -1 along the curve
    k = int(np.flatnonzero(gap <= 0)[0])
    if k == 0 or gap[k] == 0:
        return float(fpr[k])
    share = gap[k - 1] / (gap[k - 1] - gap[k])
    return float(fpr[k - 1] + share * (fpr[k] - fpr[k - 1]))


def average_precision(labels, probabilities) -> float | None:
    """Area under the precision-recall curve for FAKE (scikit-learn's step-wise average precision)."""
    from sklearn.metrics import average_precision_score

    y, p = _arrays(labels, probabilities)
    return float(average_precision_score(y, p)) if np.unique(y).size == 2 else None


METRICS = {"eer": equal_error_rate, "average_precision": average_precision}


def metric_ci(labels, probabilities, metric, groups=None, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict:
    """A stratified percentile bootstrap interval for any metric ``f(labels, probs)`` (or a name in :data:`METRICS`).

    The same draws as ``helpers.evaluation.bootstrap_ci`` with the same seed:
    resampled within REAL and within FAKE, by whole ``groups`` (videos) when
    given. Returns value, low, high, n, n_boot.
    """
    from .evaluation import _bootstrap_weights, _resampling_units

    function = METRICS[metric] if isinstance(metric, str) else metric
    y, p = _arrays(labels, probabilities)
    unit_of_row, unit_label = _resampling_units(y, groups)
    value = function(y, p)
    result = {"value": value, "low": None, "high": None, "n": int(unit_label.size), "n_boot": int(n_boot)}
    if value is None or n_boot < 1:
        return result
    rows = np.arange(y.size)
    draws = [function(y[picked], p[picked]) for chunk in _bootstrap_weights(unit_of_row, unit_label, n_boot, seed)
             for picked in (np.repeat(rows, counts.astype(int)) for counts in chunk)]
    low, high = np.quantile(np.asarray(draws, dtype=float), [(1 - level) / 2, 1 - (1 - level) / 2])
    result.update(low=float(low), high=float(high))
    return result


def bench_metrics(labels, probabilities, groups=None, n_boot: int = 1000, seed: int = 0) -> dict:
    """ROC AUC, EER and average precision with their bootstrap 95 % intervals and n (one level)."""
    from . import evaluation

    auc = evaluation.bootstrap_ci(labels, probabilities, "roc_auc", groups=groups, n_boot=n_boot, seed=seed)
    out = {"n": auc["n"], "roc_auc": auc["value"], "roc_auc_ci": [auc["low"], auc["high"]]}
    for name in METRICS:
        interval = metric_ci(labels, probabilities, name, groups=groups, n_boot=n_boot, seed=seed)
        out[name], out[f"{name}_ci"] = interval["value"], [interval["low"], interval["high"]]
    y = np.asarray(labels, dtype=int)
    out["n_real"], out["n_fake"] = (int((y == 0).sum()), int((y == 1).sum())) if groups is None else (
        int(pd.Series(y).groupby(np.asarray(groups)).first().eq(0).sum()),
        int(pd.Series(y).groupby(np.asarray(groups)).first().eq(1).sum()))
    return out
