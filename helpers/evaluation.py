"""Metrics, turning frame (face) scores into one score per video, and scoring a model's faces.

Labels are 1 = FAKE, 0 = REAL throughout the course; scores are the predicted
probability of FAKE. In a table the integer is the column ``target`` and the
column ``label``, where there is one, holds the text "REAL" or "FAKE" (as in the
crop manifest). The DFDC competition ranked entries by log loss (lower is
better), which punishes confident mistakes hard; we report it beside accuracy,
balanced accuracy (robust to a skewed REAL/FAKE ratio) and ROC AUC (threshold-free).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

EPSILON = 1e-7  # probabilities are clipped to [eps, 1 - eps] before the log loss


def binary_metrics(labels, probabilities, threshold: float = 0.5, ci: bool = False, groups=None,
                   n_boot: int = 1000, seed: int = 0) -> dict:
    """Accuracy, balanced accuracy, ROC AUC, log loss and the confusion matrix.

    ROC AUC is ``None`` when only one class is present (it is undefined then).
    ``ci=True`` adds a bootstrap 95 % confidence interval for accuracy, ROC AUC
    and log loss (``accuracy_ci`` = ``[low, high]`` ...); see :func:`bootstrap_ci`,
    which also explains ``groups`` (resample whole videos, not single frames).
    """
    y = np.asarray(labels, dtype=int).ravel()
    p = np.clip(np.asarray(probabilities, dtype=float).ravel(), EPSILON, 1 - EPSILON)
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} probabilities.")
    if y.size == 0:
        raise ValueError("No predictions to evaluate.")
    predicted = (p >= threshold).astype(int)
    both_classes = len(np.unique(y)) == 2
    result = {
        "n": int(y.size),
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, predicted)) if both_classes
        else float(skm.accuracy_score(y, predicted)),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both_classes else None,
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        # rows: true REAL, FAKE; columns: predicted REAL, FAKE
        "confusion_matrix": skm.confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
    }
    if ci:
        for metric in ("accuracy", "roc_auc", "log_loss"):
            interval = bootstrap_ci(y, p, metric, groups=groups, n_boot=n_boot, seed=seed, threshold=threshold)
            result[f"{metric}_ci"] = [interval["low"], interval["high"]]
        result.update(ci_level=0.95, n_boot=int(n_boot), ci_unit="group" if groups is not None else "row")
    return result


# ----------------------------------------------------------------------------
# Confidence intervals: how much would the score move on another test set?
# ----------------------------------------------------------------------------

def _auc_from_ranks(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC via the rank-sum (Mann-Whitney U) formula; ties count one half."""
    from scipy.stats import rankdata

    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _metric_value(metric: str, y: np.ndarray, p: np.ndarray, threshold: float) -> float | None:
    if metric == "accuracy":
        return float(((p >= threshold).astype(int) == y).mean())
    if metric == "roc_auc":
        return _auc_from_ranks(y, p) if 0 < y.sum() < y.size else None
    if metric == "log_loss":
        q = np.clip(p, EPSILON, 1 - EPSILON)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
    raise ValueError(f"Unknown metric {metric!r}; choose accuracy, roc_auc or log_loss.")


def _resampling_units(y: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray]:
    """Which unit (row, or group such as a video) each row belongs to, and each unit's label."""
    if groups is None:
        return np.arange(y.size), y.copy()
    g = pd.Series(np.asarray(groups).ravel())
    if g.size != y.size:
        raise ValueError(f"{g.size} group names for {y.size} labels.")
    unit_of_row = g.factorize(sort=True)[0]
    per_unit = pd.Series(y).groupby(unit_of_row)
    if (per_unit.nunique() > 1).any():
        raise ValueError("A group holds both labels; groups must be videos (one label each).")
    return unit_of_row, per_unit.first().to_numpy()


def _bootstrap_weights(unit_of_row: np.ndarray, unit_label: np.ndarray, n_boot: int, seed: int, chunk: int = 250):
    """Bootstrap draws as row multiplicities, ``chunk`` draws at a time (each a draws x rows array).

    A draw picks units with replacement within each class; a row drawn twice
    counts twice, so the metric of the resampled table is the weighted metric
    of the original rows, and all draws of a chunk are scored at once.
    """
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(unit_label == c) for c in (0, 1)]
    for start in range(0, int(n_boot), chunk):
        size = min(chunk, int(n_boot) - start)
        counts = np.zeros((size, unit_label.size))
        for ix in by_class:
            if ix.size:
                drawn = ix[rng.integers(0, ix.size, size=(size, ix.size))]
                np.add.at(counts, (np.arange(size)[:, None], drawn), 1)
        yield counts[:, unit_of_row]


def _weighted_metric(metric: str, y: np.ndarray, p: np.ndarray, weights: np.ndarray,
                     threshold: float = 0.5) -> np.ndarray:
    """``metric`` of many bootstrap draws at once, each draw given as row multiplicities (draws x rows).

    ROC AUC is the weighted rank-sum: for every FAKE row, the weight of the REAL
    rows scoring lower (ties count one half), over the weight of all REAL-FAKE pairs.
    """
    total = weights.sum(axis=1)
    if metric == "accuracy":
        return weights @ ((p >= threshold).astype(int) == y).astype(float) / total
    if metric == "log_loss":
        q = np.clip(p, EPSILON, 1 - EPSILON)
        return weights @ -(y * np.log(q) + (1 - y) * np.log(1 - q)) / total
    if metric != "roc_auc":
        raise ValueError(f"Unknown metric {metric!r}; choose accuracy, roc_auc or log_loss.")
    values, position = np.unique(p, return_inverse=True)  # each row's place among the distinct scores
    per_score = []
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        summed = np.zeros((len(weights), len(values)))
        np.add.at(summed, (slice(None), position[rows]), weights[:, rows])
        per_score.append(summed)
    real, fake = per_score
    below = np.cumsum(real, axis=1) - real  # weight of the reals scoring strictly lower
    return (fake * (below + 0.5 * real)).sum(axis=1) / (real.sum(axis=1) * fake.sum(axis=1))


def _check_inputs(y: np.ndarray, *scores: np.ndarray, level: float = 0.95) -> None:
    if any(s.shape != y.shape for s in scores) or y.size == 0:
        raise ValueError(f"{y.size} labels and {', '.join(str(s.size) for s in scores)} probabilities: "
                         "need the same, non-zero number.")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}.")


def bootstrap_ci(labels, probabilities, metric: str = "roc_auc", groups=None, n_boot: int = 1000,
                 level: float = 0.95, seed: int = 0, threshold: float = 0.5) -> dict:
    """A percentile bootstrap confidence interval for ``metric`` (accuracy, roc_auc or log_loss).

    The test set is resampled with replacement ``n_boot`` times, separately
    within REAL and within FAKE (a stratified bootstrap: every resample keeps
    both classes, so the AUC is always defined), and the metric recomputed
    each time; the interval holds the middle ``level`` of those values.

    ``groups`` (e.g. the video of each face) resamples whole groups instead of
    rows: faces of one video are near-copies, so treating 16 faces of a video
    as 16 independent samples would make a frame-level interval far too
    narrow. Each group must hold one label (true for videos).

    Returns ``{"value", "low", "high", "level", "n", "n_boot"}``; ``n`` counts
    rows (or groups). With a single class, AUC's value and bounds are None.

    >>> ci = bootstrap_ci([0, 0, 0, 1, 1, 1], [0.1, 0.4, 0.35, 0.8, 0.3, 0.9], "roc_auc", n_boot=200)
    >>> round(ci["value"], 3), ci["low"] <= ci["value"] <= ci["high"]
    (0.778, True)
    """
    y = np.asarray(labels, dtype=int).ravel()
    p = np.asarray(probabilities, dtype=float).ravel()
    _check_inputs(y, p, level=level)
    value = _metric_value(metric, y, p, threshold)
    unit_of_row, unit_label = _resampling_units(y, groups)
    result = {"value": value, "low": None, "high": None, "level": level, "n": int(unit_label.size),
              "n_boot": int(n_boot)}
    if value is None or n_boot < 1:
        return result
    draws = np.concatenate([_weighted_metric(metric, y, p, w, threshold)
                            for w in _bootstrap_weights(unit_of_row, unit_label, n_boot, seed)])
    low, high = np.quantile(draws, [(1 - level) / 2, 1 - (1 - level) / 2])
    result.update(low=float(low), high=float(high))
    return result


def metric_change_ci(labels, before, after, metric: str = "roc_auc", groups=None, n_boot: int = 1000,
                     level: float = 0.95, seed: int = 0) -> dict:
    """How much ``metric`` changes from the ``before`` scores to the ``after`` scores, with a paired CI.

    For TTA (before = plain prediction, after = averaged over transforms) or a
    degradation (before = clean faces, after = degraded ones). Both score the
    same faces, so they are resampled together: each bootstrap draw picks
    videos (``groups``) or faces with replacement, stratified by class as in
    :func:`bootstrap_ci`, and takes the change on that draw. The interval of
    the change is much narrower than the two intervals side by side suggest,
    because the same hard faces are in both. Returns ``{"metric", "before",
    "after", "change", "change_ci": [low, high], "level", "n", "n_boot"}``;
    change = after - before (for log loss a negative change is an improvement).
    """
    y = np.asarray(labels, dtype=int).ravel()
    a, b = np.asarray(before, dtype=float).ravel(), np.asarray(after, dtype=float).ravel()
    _check_inputs(y, a, b, level=level)
    unit_of_row, unit_label = _resampling_units(y, groups)
    value_before, value_after = (_metric_value(metric, y, s, 0.5) for s in (a, b))
    result = {"metric": metric, "before": value_before, "after": value_after, "change": None,
              "change_ci": [None, None], "level": level, "n": int(unit_label.size), "n_boot": int(n_boot)}
    if value_before is None or value_after is None:
        return result
    result["change"] = value_after - value_before
    changes = [_weighted_metric(metric, y, b, w) - _weighted_metric(metric, y, a, w)
               for w in _bootstrap_weights(unit_of_row, unit_label, n_boot, seed)]
    if changes:
        low, high = np.quantile(np.concatenate(changes), [(1 - level) / 2, 1 - (1 - level) / 2])
        result["change_ci"] = [float(low), float(high)]
    return result


def format_with_ci(metrics: dict, metric: str = "roc_auc", digits: int = 3) -> str:
    """``"0.812 [0.701, 0.905]"`` from a :func:`binary_metrics` result made with ``ci=True``."""
    value, interval = metrics.get(metric), metrics.get(f"{metric}_ci")
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}"
    if interval and interval[0] is not None:
        text += f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
    return text


def metrics_by_group(table: pd.DataFrame, by: str, score_column: str = "prob_fake", target_column: str = "target",
                     real_value=None, ci: bool = True, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Metrics per value of column ``by`` (e.g. the manipulation ``method`` of each fake).

    A per-method AUC needs both classes, yet a method only exists for fakes:
    each group's fakes are scored against *all* the reals of the table (the
    rows whose ``by`` equals ``real_value``, or whose ``target_column`` is 0 when
    ``real_value`` is None). One row per fake group: n_fake, n_real, roc_auc
    (with its CI), the share of those fakes called FAKE (recall at 0.5) and
    their mean score.
    """
    labels = targets_of(table, target_column)
    is_real = (table[by] == real_value).to_numpy() if real_value is not None else labels == 0
    reals = table[is_real]
    rows = []
    for group, fakes in table[~is_real].groupby(by, sort=True):
        both = pd.concat([reals, fakes])
        m = binary_metrics(both[target_column], both[score_column], ci=ci, n_boot=n_boot, seed=seed)
        scores = fakes[score_column].to_numpy(dtype=float)
        rows.append({by: group, "n_fake": len(fakes), "n_real": len(reals), "roc_auc": m["roc_auc"],
                     "roc_auc_ci": m.get("roc_auc_ci"), "detected": float((scores >= 0.5).mean()),
                     "mean_score": float(scores.mean())})
    return pd.DataFrame(rows, columns=[by, "n_fake", "n_real", "roc_auc", "roc_auc_ci", "detected", "mean_score"])


def aggregate_mean(probabilities) -> float:
    """Video score = mean of its face scores."""
    return float(np.mean(probabilities))


def aggregate_confident(probabilities, threshold: float = 0.8, min_share: float = 0.11) -> float:
    """Video score from confident faces, in the spirit of the DFDC winner's rule.

    If enough faces (more than ``min_share`` of them) are confidently FAKE
    (score above ``threshold``), the video is judged on those faces alone: a
    face swap often shows only in some frames, and averaging with the clean
    frames would dilute it. Likewise if more than half are confidently REAL.
    Otherwise fall back to the mean.
    """
    p = np.asarray(probabilities, dtype=float).ravel()
    if p.size == 0:
        raise ValueError("A video with no face scores cannot be aggregated.")
    fake = p[p > threshold]
    real = p[p < 1 - threshold]
    if fake.size > min_share * p.size:
        return float(fake.mean())
    if real.size > 0.5 * p.size:
        return float(real.mean())
    return float(p.mean())


AGGREGATORS = {"mean": aggregate_mean, "confident": aggregate_confident}


def targets_of(table: pd.DataFrame, column: str = "target") -> np.ndarray:
    """The integer labels (1 = FAKE) of a table's rows, from its ``column``; a clear error without one."""
    if column not in table.columns:
        old = " Its integer 'label' column is the old name of 'target': rename it, or score the faces again." \
            if column == "target" and "label" in table.columns and pd.api.types.is_numeric_dtype(table["label"]) else ""
        raise ValueError(f"The table has no {column!r} column (the integer label, 1 = FAKE, 0 = REAL); its columns "
                         f"are {list(table.columns)}. Make it with evaluation.score_faces, or add "
                         f"{column} = (label == 'FAKE').astype(int) from the text label.{old}")
    return table[column].to_numpy().astype(int)


def video_scores(frame_table: pd.DataFrame, rule: str = "mean", score_column: str = "prob_fake") -> pd.DataFrame:
    """One row per video: its ``target`` and ``label`` (where the frame table has them) and aggregated score.

    ``frame_table`` needs columns ``video`` and ``score_column``; metrics also need ``target`` (1 = FAKE).
    """
    if rule not in AGGREGATORS:
        raise ValueError(f"Unknown rule {rule!r}; choose from {sorted(AGGREGATORS)}.")
    aggregate = AGGREGATORS[rule]
    grouped = frame_table.groupby("video", sort=True)
    carried = {column: (column, "first") for column in ("target", "label") if column in frame_table.columns}
    out = grouped.agg(**carried, n_faces=(score_column, "size"))
    out[score_column] = grouped[score_column].apply(lambda s: aggregate(s.to_numpy()))
    return out.reset_index()


def evaluate_frames_and_videos(frame_table: pd.DataFrame, rule: str = "mean",
                               score_column: str = "prob_fake") -> dict:
    """Metrics at frame level and at video level (after aggregation)."""
    videos = video_scores(frame_table, rule=rule, score_column=score_column)
    return {
        "frame": binary_metrics(targets_of(frame_table), frame_table[score_column]),
        "video": binary_metrics(targets_of(videos), videos[score_column]),
        "video_rule": rule,
    }


def roc_points(labels, probabilities) -> dict:
    """False/true positive rates for plotting a ROC curve."""
    fpr, tpr, _ = skm.roc_curve(np.asarray(labels, dtype=int), np.asarray(probabilities, dtype=float))
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


# ----------------------------------------------------------------------------
# Did the model learn anything? A check that a model which learned nothing fails
# ----------------------------------------------------------------------------

def learning_check(train_losses, labels, probabilities, groups=None, level: str = "video",
                   min_loss_drop: float = 0.10, min_units_per_class: int = 3, n_boot: int = 1000,
                   seed: int = 0) -> dict:
    """Evidence that a model learned something: its training curve and its scores on unseen data.

    Two tests, each of which a model that learned nothing fails:

    * ``loss_fell``: the last training loss is at least ``min_loss_drop`` (a
      fraction, 0.10 = 10 %) below the first. ``train_losses`` are in order:
      best the loss on the same clean training data (no augmentation, no
      dropout) before and after training, so that only the weights differ;
      per-epoch means also work but move with dropout and augmentation alone.
      A learning rate of 0, or a model whose weights never change, fails this.
    * ``beats_chance``: on data the model was not trained on (``labels``,
      ``probabilities``), the lower end of the bootstrap 95 % confidence
      interval of ROC AUC is above 0.5, the AUC of guessing. ``groups`` (the
      video of each face) resamples whole videos (see :func:`bootstrap_ci`).
      A model trained on shuffled labels can still push its training loss
      down by memorising the training set, but it cannot rank unseen fakes
      above unseen reals: this test catches it.

    With fewer than ``min_units_per_class`` videos (or rows, without
    ``groups``) of either class the interval says nothing (two REAL and two
    FAKE videos come out in perfect order for one random scorer in six), and
    ``beats_chance`` is None: too few to tell; ``passed`` then rests on the
    loss alone, and ``reasons`` says so. ``level`` ("frame" or "video") is
    only recorded, to say what the scores are.

    Returns ``{"passed", "loss_fell", "first_loss", "last_loss",
    "beats_chance", "roc_auc", "roc_auc_ci", "n", "n_units_per_class",
    "level", "reasons"}``.
    """
    losses = [float(v) for v in train_losses if v is not None]
    reasons = []
    loss_fell = len(losses) >= 2 and np.isfinite(losses).all() and losses[-1] < losses[0] * (1 - min_loss_drop)
    if len(losses) < 2:
        reasons.append(f"only {len(losses)} training loss value(s): cannot tell whether the loss fell")
    elif not loss_fell:
        reasons.append(f"training loss went from {losses[0]:.4f} to {losses[-1]:.4f}, "
                       f"not {min_loss_drop:.0%} lower")
    y = np.asarray(labels, dtype=int).ravel()
    p = np.asarray(probabilities, dtype=float).ravel()
    interval = bootstrap_ci(y, p, "roc_auc", groups=groups, n_boot=n_boot, seed=seed)
    if groups is None:
        units = {c: int((y == c).sum()) for c in (0, 1)}
    else:
        first_label = pd.Series(y).groupby(pd.Series(np.asarray(groups).ravel())).first()
        units = {c: int((first_label == c).sum()) for c in (0, 1)}
    unit = "videos" if groups is not None or level == "video" else ("faces" if level == "frame" else "samples")
    beats_chance = None
    if min(units.values()) < min_units_per_class:
        reasons.append(f"held-out data: {units[0]} REAL and {units[1]} FAKE {unit}, fewer than "
                       f"{min_units_per_class} of each: too few to tell whether it beats chance")
    else:
        beats_chance = bool(interval["low"] is not None and interval["low"] > 0.5)
        if not beats_chance:
            reasons.append(f"held-out ROC AUC {interval['value']:.3f} with 95 % CI "
                           f"[{interval['low']:.3f}, {interval['high']:.3f}] does not lie above 0.5 (chance)")
    return {"passed": bool(loss_fell) and beats_chance is not False, "loss_fell": bool(loss_fell),
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "beats_chance": beats_chance, "roc_auc": interval["value"],
            "roc_auc_ci": [interval["low"], interval["high"]], "n": int(y.size),
            "n_units_per_class": {"REAL": units[0], "FAKE": units[1]}, "unit": unit[:-1],
            "level": level, "reasons": reasons}


def assert_learned(check: dict, require_held_out: bool = False) -> None:
    """Raise ``AssertionError`` with the reasons unless :func:`learning_check` passed.

    ``require_held_out=True`` also fails when the held-out data were too few to tell.
    """
    failed = not check["passed"] or (require_held_out and check["beats_chance"] is None)
    if failed:
        raise AssertionError("The model shows no sign of having learned: " + "; ".join(check["reasons"]))


def describe_metrics(metrics: dict, keys=("accuracy", "roc_auc", "log_loss")) -> str:
    """One line: each metric with its 95 % CI, then the level and n, e.g.
    ``"accuracy 0.900 [0.800, 1.000], ROC AUC ... (frame level, n = 10 faces of 2 videos)"``.

    ``metrics`` is a :func:`binary_metrics` result (made with ``ci=True`` for
    the intervals) that may carry ``level`` and ``n_videos``.
    """
    names = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "roc_auc": "ROC AUC",
             "log_loss": "log loss"}
    parts = [f"{names.get(k, k)} {format_with_ci(metrics, k)}" for k in keys]
    level = metrics.get("level")
    if level == "frame":
        size = f"n = {metrics['n']} faces" + (f" of {metrics['n_videos']} videos" if metrics.get("n_videos") else "")
    elif level == "video":
        size = f"n = {metrics['n']} videos"
    else:
        size = f"n = {metrics['n']}"
    return ", ".join(parts) + f" ({level + ' level, ' if level else ''}{size})"


# ----------------------------------------------------------------------------
# Scoring a PyTorch face classifier, and choosing the video rule
# ----------------------------------------------------------------------------

def score_faces(model, manifest_df: pd.DataFrame, image_size: int, device="cpu",
                batch_size: int = 64, amp: bool = True, progress: bool = False) -> pd.DataFrame:
    """One row per face crop with ``prob_fake``: the frame table that ``helpers.evaluation`` expects.

    Columns: video, frame_index (if known), split, target (int, 1 = FAKE),
    label ("REAL"/"FAKE"), crop_path, prob_fake.
    """
    from .datasets_torch import make_loader
    from .training_torch import predict_probs

    loader = make_loader(manifest_df, image_size, batch_size=batch_size, train=False)
    table = loader.dataset.table
    probs = predict_probs(model, loader, device, amp=amp, progress=progress)
    frame = pd.DataFrame({"video": table["video"].to_numpy()})
    for column in ("frame_index", "split"):
        if column in table.columns:
            frame[column] = table[column].to_numpy()
    frame["target"] = table["target"].astype(int).to_numpy()
    frame["label"] = np.where(frame["target"] == 1, "FAKE", "REAL")
    frame["crop_path"] = table["crop_path"].to_numpy()
    frame["prob_fake"] = probs
    return frame


def compare_video_rules(frame_table: pd.DataFrame, rules=("mean", "confident"), ci: bool = False,
                        n_boot: int = 1000, seed: int = 0) -> dict:
    """Video-level metrics of each aggregation rule on one frame table (``ci=True``: with bootstrap 95 % CIs)."""
    return {rule: {**binary_metrics(*_video_arrays(frame_table, rule), ci=ci, n_boot=n_boot, seed=seed),
                   "level": "video"} for rule in rules}


def frame_and_video_metrics(frame_table: pd.DataFrame, rule: str = "mean", n_boot: int = 1000,
                            seed: int = 0) -> dict:
    """Metrics per face and per video (faces aggregated with ``rule``), each with a bootstrap 95 % CI.

    Frame level: n = faces, and the bootstrap resamples whole videos (the
    faces of one video are near-copies, not independent samples). Video
    level: n = videos. Each result says its ``level``; ``n_videos`` is on both.
    """
    videos = video_scores(frame_table, rule=rule)
    frame = binary_metrics(targets_of(frame_table), frame_table["prob_fake"], ci=True,
                                      groups=frame_table["video"], n_boot=n_boot, seed=seed)
    video = binary_metrics(targets_of(videos), videos["prob_fake"], ci=True, n_boot=n_boot, seed=seed)
    n_videos = int(len(videos))
    return {"frame": {**frame, "level": "frame", "n_videos": n_videos},
            "video": {**video, "level": "video", "n_videos": n_videos}, "video_rule": rule}


def _video_arrays(frame_table: pd.DataFrame, rule: str):
    targets_of(frame_table)  # a frame table without targets fails here, naming its own columns
    videos = video_scores(frame_table, rule=rule)
    return targets_of(videos), videos["prob_fake"].to_numpy()


def choose_video_rule(comparison: dict, metric: str = "log_loss") -> str:
    """The rule with the best ``metric`` (log loss: lowest; others: highest); ties go to "mean", the simpler."""
    lower_is_better = metric == "log_loss"
    best_rule, best_value = None, None
    for rule in sorted(comparison, key=lambda r: r != "mean"):
        value = comparison[rule].get(metric)
        if value is None:
            continue
        if best_value is None or (value < best_value if lower_is_better else value > best_value):
            best_rule, best_value = rule, value
    return best_rule or "mean"
