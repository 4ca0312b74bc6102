"""Figures the notebooks draw, kept here so that notebook cells stay about the idea, not the axes.

Each function draws one figure and returns it; the notebook saves it with
``results.save_fig`` and shows it. Nothing here computes a result: the numbers
come from the notebook, the functions only lay them out.
"""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- notebook 03
def face_sequences(rows, titles, max_frames: int = 8, size: float = 1.6):
    """One row of face crops per sequence (frames left to right), each row titled on its left."""
    plt = _plt()
    n = min(min(len(r) for r in rows), max_frames)
    fig, axes = plt.subplots(len(rows), n, figsize=(size * n, size * len(rows) + 0.4), squeeze=False)
    for r, (sequence, title) in enumerate(zip(rows, titles)):
        for t in range(n):
            axes[r, t].imshow(sequence[t])
            axes[r, t].set_xticks([]), axes[r, t].set_yticks([])
            if r == 0:
                axes[r, t].set_title(f"t={t}", fontsize=8)
        axes[r, 0].set_ylabel(title, fontsize=9)
    fig.tight_layout()
    return fig


def feature_heatmaps(examples, mean, variance, n_features: int = 128):
    """Frame features over time, raw (top) and standardised (bottom), one column per example.

    ``examples``: list of ``(title, features)`` with features of shape (T, D);
    ``mean``/``variance``: the per-feature statistics used to standardise.
    """
    plt = _plt()
    fig, axes = plt.subplots(2, len(examples), figsize=(5 * len(examples), 4.8), sharex=True, sharey=True,
                             squeeze=False)
    scale = np.sqrt(np.maximum(variance[:n_features], 1e-6))
    for col, (title, features) in enumerate(examples):
        raw = np.asarray(features)[:, :n_features]
        axes[0, col].imshow(raw, aspect="auto", cmap="magma")
        axes[1, col].imshow((raw - mean[:n_features]) / scale, aspect="auto", cmap="coolwarm", vmin=-3, vmax=3)
        axes[0, col].set_title(title, fontsize=9)
        axes[1, col].set_xlabel(f"feature (first {n_features})")
    axes[0, 0].set_ylabel("frame t\n(ResNet50 output)")
    axes[1, 0].set_ylabel("frame t\n(standardised)")
    fig.tight_layout()
    return fig


def epoch_curve(history: dict, metric: str, title: str, best_epoch: int | None = None):
    """``history[metric]`` (train) and ``history["val_" + metric]`` per epoch; the kept epoch dashed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    epochs = np.arange(1, len(history[metric]) + 1)
    ax.plot(epochs, history[metric], "o-", label="train")
    if history.get(f"val_{metric}"):
        ax.plot(epochs, history[f"val_{metric}"], "s-", label="validation")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label="best (kept)")
    ax.set_xlabel("epoch"), ax.set_ylabel(metric), ax.set_title(title)
    ax.set_xticks(epochs)
    ax.legend()
    fig.tight_layout()
    return fig


def running_verdict(steps, probabilities, labels, title: str):
    """P(FAKE) after reading the first t frames, one line per video (red FAKE, blue REAL)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for row, label in zip(np.asarray(probabilities), np.asarray(labels)):
        ax.plot(steps, row, color="tab:red" if label else "tab:blue", alpha=0.6, lw=1.2)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.plot([], [], color="tab:red", label="FAKE video"), ax.plot([], [], color="tab:blue", label="REAL video")
    ax.set_xlabel("frames read by the LSTM"), ax.set_ylabel("P(FAKE)"), ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- notebook 04
def image_grid(rows, titles, size: float = 2.0):
    """A grid of images: ``rows`` is a list of rows of (H, W, 3) arrays, ``titles`` the same shape."""
    plt = _plt()
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(size * n_cols, 2.2 * len(rows)), squeeze=False)
    for r, (images, names) in enumerate(zip(rows, titles)):
        for c, (image, name) in enumerate(zip(images, names)):
            axes[r, c].imshow(image)
            axes[r, c].set_title(name, fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def roc_and_scores(curves: dict, scores_by_class: dict, score_label: str = "P(FAKE) of a face"):
    """ROC curves (``{name: {"fpr", "tpr"}}``) beside a histogram of scores per class (``{name: scores}``)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, roc in curves.items():
        axes[0].plot(roc["fpr"], roc["tpr"], label=name)
    axes[0].plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the test split")
    if curves:
        axes[0].legend()
    bins = np.linspace(0, 1, 21)
    for name, scores in scores_by_class.items():
        axes[1].hist(scores, bins=bins, alpha=0.6, label=name)
    axes[1].axvline(0.5, color="grey", linestyle="--")
    axes[1].set(xlabel=score_label, ylabel="count", title="Scores on the test split")
    axes[1].legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- notebook 07
def picture_verdict(result, title: str = ""):
    """A picture with its face boxes, and each face's crop with its Grad-CAM overlay."""
    plt = _plt()
    n = result.n_faces
    fig, axes = plt.subplots(1, 1 + n, figsize=(4 + 2.6 * n, 3.6), squeeze=False,
                             gridspec_kw={"width_ratios": [2.2] + [1] * n})
    axes = axes[0]
    axes[0].imshow(result.annotated)
    axes[0].set_title(f"{title}\n{result.label}: P(fake) = {result.prob_fake:.2f}", fontsize=10)
    for ax, face in zip(axes[1:], result.faces):
        ax.imshow(face.overlay if face.overlay is not None else face.crop)
        ax.set_title(f"{face.label} {face.prob_fake:.2f}", fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def video_verdict(result, title: str = ""):
    """Per-frame P(fake) with the video's score, the most suspicious frame and its Grad-CAM."""
    plt = _plt()
    table = result.timeline_table()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), gridspec_kw={"width_ratios": [2.4, 1.3, 1]})
    axes[0].plot(table["time_s"], table["prob_fake"], "o-", label="frame (most suspicious face)")
    axes[0].axhline(result.prob_fake, color="tab:red", linestyle="--",
                    label=f"video score ({result.rule}) = {result.prob_fake:.2f}")
    axes[0].axhline(result.threshold, color="grey", linewidth=0.8, label="threshold")
    axes[0].set(ylim=(0, 1), xlabel="time (s)", ylabel="P(fake)", title=f"{title}\nverdict: {result.label}")
    axes[0].legend(fontsize=8, loc="best")
    axes[1].imshow(result.annotated)
    axes[1].set_title(f"frame {result.explained.frame_index}", fontsize=10)
    axes[2].imshow(result.overlay if result.overlay is not None else result.explained.crop)
    axes[2].set_title(f"Grad-CAM, P(fake) {result.explained.prob_fake:.2f}", fontsize=10)
    for ax in axes[1:]:
        ax.axis("off")
    fig.tight_layout()
    return fig
