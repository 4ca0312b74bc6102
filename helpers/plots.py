"""Figures the notebooks draw, kept here so that a notebook cell shows what is plotted, not how.

Each function takes plain tables or arrays, draws one figure and returns it
(the notebook saves it with ``results.save_fig`` and shows it). Nothing here
computes a result: the numbers come in already measured.
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
    """Per-frame P(fake) of the tracked face with the video's score, the most suspicious frame and its Grad-CAM."""
    plt = _plt()
    table = result.timeline_table()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), gridspec_kw={"width_ratios": [2.4, 1.3, 1]})
    axes[0].plot(table["time_s"], table["prob_fake"], "o-", label="frame (the tracked face)")
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


# --------------------------------------------------------------------------- #
# Notebook 05: comparing models
# --------------------------------------------------------------------------- #


def _format_cell(value, digits: int = 3) -> str:
    """A table cell: "-" for missing, thousands separators for counts, ``digits`` decimals otherwise."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def plot_training_curves(histories: dict, labels: dict | None = None):
    """Validation loss (a star on the kept epoch) and training loss per epoch, one line per model.

    ``histories`` maps a model name to a ``training_torch.train_classifier``
    history (``val_loss``, ``train_loss``, ``best_epoch``); models without a
    validation curve are left out.
    """
    import matplotlib.pyplot as plt

    labels = labels or {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, history in histories.items():
        history = history or {}
        if not history.get("val_loss"):
            continue
        epochs = np.arange(1, len(history["val_loss"]) + 1)
        line, = axes[0].plot(epochs, history["val_loss"], "o-", label=labels.get(name, name))
        axes[1].plot(epochs, history["train_loss"], "o-", color=line.get_color())
        best = history.get("best_epoch")
        if best:
            axes[0].plot(best, history["val_loss"][best - 1], "*", markersize=14, color=line.get_color())
    axes[0].set(xlabel="epoch", ylabel="BCE loss", title="validation loss (star: kept epoch)")
    axes[1].set(xlabel="epoch", ylabel="BCE loss", title="training loss (augmented faces)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def table_figure(rows: list[dict], columns, row_label: str, title: str, shaded=(), font_size: int = 8):
    """A table drawn as a figure: one line per row, ``columns`` = [(header, key, digits), ...].

    A value may be a number (formatted with ``digits``) or a ready string (e.g.
    "0.81 [0.70, 0.90]"); the columns whose keys are in ``shaded`` get a grey
    background (notebook 05: the report's published numbers).
    """
    import matplotlib.pyplot as plt

    text = [[_format_cell(row.get(key), digits) for _, key, digits in columns] for row in rows]
    width = max(8.0, 1.45 * len(columns))
    fig, ax = plt.subplots(figsize=(width, 0.6 + 0.42 * len(rows)))
    ax.axis("off")
    grid = ax.table(cellText=text, rowLabels=[row[row_label] for row in rows],
                    colLabels=[header for header, _, _ in columns], loc="center", cellLoc="center")
    grid.auto_set_font_size(False)
    grid.set_fontsize(font_size)
    grid.auto_set_column_width(list(range(len(columns))))  # wide enough for "0.812 [0.701, 0.905]"
    grid.scale(1, 1.5)
    shaded_columns = {c for c, (_, key, _) in enumerate(columns) if key in shaded}
    for (r, c), cell in grid.get_celld().items():
        if r >= 1 and c in shaded_columns:
            cell.set_facecolor("#e8e8e8")
    ax.set_title(title, fontsize=10)
    return fig


def plot_accuracy_vs_published(rows: list[dict], label_key: str = "display_name"):
    """Train and test accuracy measured (with 95 % CI bars where given) beside the report's.

    Each row needs ``published_<split>_accuracy``, ``<split>_accuracy`` and
    optionally ``<split>_accuracy_ci`` ([low, high]); rows without a published
    number are left out.
    """
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.get("published_test_accuracy") is not None]
    x = np.arange(len(shown))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, split in zip(axes, ("train", "test")):
        ax.bar(x - 0.2, [r[f"published_{split}_accuracy"] for r in shown], 0.4, label="published", color="#bbbbbb")
        measured = np.array([r[f"{split}_accuracy"] for r in shown], dtype=float)
        intervals = [r.get(f"{split}_accuracy_ci") or [None, None] for r in shown]
        if shown and all(low is not None for low, _ in intervals):
            errors = np.array([[m - low, high - m] for m, (low, high) in zip(measured, intervals)]).T
        else:
            errors = None
        ax.bar(x + 0.2, measured, 0.4, yerr=errors, capsize=3, label="measured here (95 % CI)")
        ax.set_xticks(x, [r[label_key].split(" (")[0] for r in shown], rotation=15, fontsize=8)
        ax.set(title=f"{split} accuracy (video level)", ylim=(0, 1.05))
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_roc_curves(curves: dict, title: str, highlight: str | None = None):
    """ROC curves on one plot: ``curves`` maps a legend label to ``(fpr, tpr)``; ``highlight`` dashed and thick."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.8, 5))
    for label, (fpr, tpr) in curves.items():
        special = label == highlight
        ax.plot(fpr, tpr, linewidth=2.5 if special else 1.5, linestyle="--" if special else "-", label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false positive rate (REAL videos called FAKE)", ylabel="true positive rate (FAKE videos caught)",
           title=title)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def plot_heatmaps(panels: list[tuple[str, "object", "object"]], suptitle: str, vmin: float = 0.0,
                  vmax: float = 1.0, cmap: str = "RdYlGn"):
    """Side-by-side heat maps of tables (rows x columns), each cell annotated.

    ``panels`` = [(title, values DataFrame, annotations DataFrame or None), ...];
    the annotations (strings) default to the values with two decimals; missing
    values are grey.
    """
    import matplotlib.pyplot as plt

    n_rows = max(len(values.index) for _, values, _ in panels)
    n_cols = max(len(values.columns) for _, values, _ in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.5, 1.5 * n_cols + 2) * len(panels), 1.2 + 0.6 * n_rows),
                             squeeze=False)
    for ax, (title, values, notes) in zip(axes[0], panels):
        data = values.to_numpy(dtype=float)
        colours = plt.get_cmap(cmap).with_extremes(bad="#dddddd")  # missing values in grey
        shown = ax.imshow(np.ma.masked_invalid(data), cmap=colours, vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(data.shape[1]), list(values.columns), rotation=20, ha="right", fontsize=8)
        ax.set_yticks(range(data.shape[0]), list(values.index), fontsize=8)
        for (r, c), value in np.ndenumerate(data):
            note = notes.iat[r, c] if notes is not None else ("-" if np.isnan(value) else f"{value:.2f}")
            ax.text(c, r, note, ha="center", va="center", fontsize=7)
        ax.set_title(title, fontsize=9)
        fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- #
# Notebook 06: Grad-CAM, robustness
# --------------------------------------------------------------------------- #


def plot_cam_comparison(face, maps: dict, title: str):
    """One face, then each map of ``maps`` (label -> (H, W) map in [0, 1]) as an overlay, then |first - second|."""
    import matplotlib.pyplot as plt

    from .explain import overlay

    labels = list(maps)
    fig, axes = plt.subplots(1, len(labels) + 2, figsize=(2.6 * (len(labels) + 2), 2.9))
    axes[0].imshow(face)
    axes[0].set_title("face", fontsize=9)
    for ax, label in zip(axes[1:], labels):
        ax.imshow(overlay(face, maps[label]))
        ax.set_title(label, fontsize=9)
    difference = np.abs(np.asarray(maps[labels[0]]) - np.asarray(maps[labels[-1]]))
    shown = axes[-1].imshow(difference, cmap="magma", vmin=0, vmax=max(1e-6, float(difference.max())))
    axes[-1].set_title(f"|difference| (max {difference.max():.1e})", fontsize=9)
    fig.colorbar(shown, ax=axes[-1], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_gradcam_panels(faces, cams, probs, picked: dict, counts: dict, rows: int, title: str):
    """Face and Grad-CAM overlay side by side, one column pair per outcome group (right/wrong x REAL/FAKE).

    ``faces``: (N, H, W, 3) floats in [0, 1]; ``cams``: (N, H, W); ``probs``:
    P(FAKE) per face; ``picked`` maps a group name to indices into those
    arrays, ``counts`` to the group's size among all faces. An empty group
    says "none" in its column.
    """
    import matplotlib.pyplot as plt

    from .explain import overlay

    groups = list(picked)
    fig, axes = plt.subplots(rows, 2 * len(groups), figsize=(4.0 * len(groups), 2.2 * rows + 0.5), squeeze=False)
    for g, group in enumerate(groups):
        for r in range(rows):
            face_ax, cam_ax = axes[r, 2 * g], axes[r, 2 * g + 1]
            face_ax.axis("off")
            cam_ax.axis("off")
            if r == 0:
                face_ax.set_title(f"{group}\n({counts[group]} faces)", fontsize=9)
                cam_ax.set_title(f"{group}\n(Grad-CAM)", fontsize=9)
            if r >= len(picked[group]):
                if r == 0:
                    face_ax.text(0.5, 0.5, "none", ha="center", va="center", transform=face_ax.transAxes)
                continue
            i = picked[group][r]
            face_ax.imshow(faces[i])
            cam_ax.imshow(overlay(faces[i], cams[i]))
            cam_ax.text(2, faces[i].shape[0] - 4, f"P(fake)={probs[i]:.2f}", color="white", fontsize=8,
                        bbox=dict(facecolor="black", alpha=0.5, pad=1))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def region_outline(masks: dict, colours=None) -> np.ndarray:
    """An RGBA image (size x size x 4) with the outline of each region mask, for drawing over a map."""
    import cv2

    colours = colours or {"eyes": (0, 1, 0), "nose": (1, 1, 0), "mouth": (0, 1, 1)}
    size = next(iter(masks.values())).shape[0]
    outline = np.zeros((size, size, 4))
    for region, colour in colours.items():
        mask = masks[region].astype(np.uint8)
        outline[(mask - cv2.erode(mask, np.ones((3, 3), np.uint8))) > 0] = (*colour, 1)
    return outline


def plot_aligned_maps(backdrop, aligned: dict, outline, counts: dict, title: str):
    """Mean aligned Grad-CAM of REAL and of FAKE faces over a grey mean face, and FAKE minus REAL.

    ``aligned`` maps "REAL"/"FAKE" to ``(mean_map, coverage)`` (from
    ``explain.average_aligned``); pixels covered by fewer than half the faces
    are left blank. ``counts`` gives the number of faces behind each map.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    for ax, who in zip(axes[:2], ("REAL", "FAKE")):
        ax.axis("off")
        if who not in aligned:
            ax.set_title(f"{who}: no faces")
            continue
        mean_map, coverage = aligned[who]
        ax.imshow(backdrop, cmap="gray")
        ax.imshow(np.where(coverage >= 0.5, mean_map, np.nan), cmap="jet", alpha=0.5, vmin=0,
                  vmax=max(1e-6, float(mean_map.max())))
        ax.imshow(outline)
        ax.set_title(f"mean Grad-CAM, {who} ({counts.get(who, 0)} faces)", fontsize=9)
    axes[2].axis("off")
    if len(aligned) == 2:
        difference = aligned["FAKE"][0] - aligned["REAL"][0]
        limit = max(1e-6, float(np.abs(difference).max()))
        axes[2].imshow(backdrop, cmap="gray")
        shown = axes[2].imshow(difference, cmap="coolwarm", alpha=0.6, vmin=-limit, vmax=limit)
        axes[2].imshow(outline)
        fig.colorbar(shown, ax=axes[2], fraction=0.046)
        axes[2].set_title("FAKE minus REAL", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_frame_maps(rows: list[dict], title: str):
    """Per-frame Grad-CAM overlays of a few videos: one figure row per entry of ``rows``.

    Each entry: ``faces`` (list of RGB faces), ``cams`` (list of maps, same
    length), ``frames`` (frame numbers shown in the titles) and ``label`` (text
    beside the row).
    """
    import matplotlib.pyplot as plt

    from .explain import overlay

    columns = max(len(row["faces"]) for row in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.7 * columns, 1.9 * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for c in range(columns):
            axes[i, c].axis("off")
            if c >= len(row["faces"]):
                continue
            cam = np.asarray(row["cams"][c])
            axes[i, c].imshow(overlay(row["faces"][c], cam))
            axes[i, c].set_title(f"frame {row['frames'][c]}" + (" (flat)" if cam.std() < 1e-6 else ""), fontsize=8)
        axes[i, 0].text(-0.15, 0.5, row["label"], transform=axes[i, 0].transAxes, ha="right", va="center",
                        fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_robustness(table, models, kinds, clean_levels: dict, metrics=("frame roc_auc", "frame log_loss"),
                    decreasing=("jpeg_quality", "downscale")):
    """Metric against degradation strength, one column per kind of degradation and one line per model.

    ``table`` has columns model, degradation, level and the ``metrics``; an
    optional ``<metric> low`` / ``<metric> high`` pair is drawn as a band (the
    95 % CI). For the kinds in ``decreasing`` a lower level is stronger, so
    their x axis is reversed: stronger is always to the right.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(metrics), len(kinds), figsize=(4.2 * len(kinds), 3.2 * len(metrics)),
                             squeeze=False)
    for c, kind in enumerate(kinds):
        for name in models:
            part = table[(table["model"] == name) & (table["degradation"] == kind)].sort_values("level")
            for r, metric in enumerate(metrics):
                line, = axes[r, c].plot(part["level"], part[metric].astype(float), "o-", label=name)
                if f"{metric} low" in part:
                    axes[r, c].fill_between(part["level"], part[f"{metric} low"].astype(float),
                                            part[f"{metric} high"].astype(float), color=line.get_color(), alpha=0.15)
        for r, metric in enumerate(metrics):
            axes[r, c].set(xlabel=kind.replace("_", " "), ylabel=metric)
            axes[r, c].grid(alpha=0.3)
            if kind in decreasing:
                axes[r, c].invert_xaxis()
        axes[0, c].set_title(f"{kind.replace('_', ' ')} (clean at {clean_levels[kind]})")
        axes[0, c].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Test metrics under degradations (stronger to the right; bands: 95 % CI)")
    fig.tight_layout()
    return fig


def plot_history(history: dict, title: str | None = None):
    """Loss and accuracy per epoch (train and validation); the best epoch marked. Returns the figure."""
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, name in ((axes[0], "loss", "BCE loss"), (axes[1], "acc", "accuracy")):
        ax.plot(epochs, history[f"train_{key}"], "o-", label="train")
        if history.get(f"val_{key}"):
            ax.plot(epochs, history[f"val_{key}"], "s-", label="validation")
        if history.get("best_epoch"):
            ax.axvline(history["best_epoch"], color="grey", linestyle="--", linewidth=1, label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- notebook 09
def plot_reliability(panels: dict, title: str):
    """Reliability diagrams side by side: ``panels`` maps a panel title to ``{curve label: bins}``.

    ``bins`` is a table of ``helpers.calibration.reliability_bins`` (mean_prob, fake_share, n per bin);
    a calibrated model lies on the diagonal. Marker area grows with the bin's n.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4.2), squeeze=False)
    for ax, (panel, curves) in zip(axes[0], panels.items()):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
        for label, bins in curves.items():
            used = bins[bins["n"] > 0]
            line, = ax.plot(used["mean_prob"], used["fake_share"], marker="", label=label)
            ax.scatter(used["mean_prob"], used["fake_share"], s=12 + 60 * used["n"] / max(1, used["n"].max()),
                       color=line.get_color())
        ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="mean P(FAKE) in the bin", ylabel="share of fakes in the bin",
               title=panel)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
