"""Metrics, and turning frame (face) scores into one score per video.

Labels are 1 = FAKE, 0 = REAL throughout the course; scores are the predicted
probability of FAKE. The DFDC competition ranked entries by log loss (lower is
better), which punishes confident mistakes hard; we report it beside accuracy,
balanced accuracy (robust to a skewed REAL/FAKE ratio) and ROC AUC (threshold-free).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

EPSILON = 1e-7  # probabilities are clipped to [eps, 1 - eps] before the log loss


def binary_metrics(labels, probabilities, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, ROC AUC, log loss and the confusion matrix.

    ROC AUC is ``None`` when only one class is present (it is undefined then).
    """
    y = np.asarray(labels, dtype=int).ravel()
    p = np.clip(np.asarray(probabilities, dtype=float).ravel(), EPSILON, 1 - EPSILON)
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} probabilities.")
    if y.size == 0:
        raise ValueError("No predictions to evaluate.")
    predicted = (p >= threshold).astype(int)
    both_classes = len(np.unique(y)) == 2
    return {
        "n": int(y.size),
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, predicted)) if both_classes
        else float(skm.accuracy_score(y, predicted)),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both_classes else None,
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        # rows: true REAL, FAKE; columns: predicted REAL, FAKE
        "confusion_matrix": skm.confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
    }


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


def video_scores(frame_table: pd.DataFrame, rule: str = "mean", score_column: str = "prob_fake") -> pd.DataFrame:
    """One row per video: its label and aggregated score.

    ``frame_table`` needs columns ``video``, ``label`` and ``score_column``.
    """
    if rule not in AGGREGATORS:
        raise ValueError(f"Unknown rule {rule!r}; choose from {sorted(AGGREGATORS)}.")
    aggregate = AGGREGATORS[rule]
    grouped = frame_table.groupby("video", sort=True)
    out = grouped.agg(label=("label", "first"), n_faces=(score_column, "size"))
    out[score_column] = grouped[score_column].apply(lambda s: aggregate(s.to_numpy()))
    return out.reset_index()


def evaluate_frames_and_videos(frame_table: pd.DataFrame, rule: str = "mean",
                               score_column: str = "prob_fake") -> dict:
    """Metrics at frame level and at video level (after aggregation)."""
    videos = video_scores(frame_table, rule=rule, score_column=score_column)
    return {
        "frame": binary_metrics(frame_table["label"], frame_table[score_column]),
        "video": binary_metrics(videos["label"], videos[score_column]),
        "video_rule": rule,
    }


def roc_points(labels, probabilities) -> dict:
    """False/true positive rates for plotting a ROC curve."""
    fpr, tpr, _ = skm.roc_curve(np.asarray(labels, dtype=int), np.asarray(probabilities, dtype=float))
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
