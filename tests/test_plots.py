"""Unit tests of helpers/plots.py: each figure draws what it is given (and says when a group is empty)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def test_training_curves_mark_the_kept_epoch_and_skip_models_without_validation():
    histories = {"a": {"train_loss": [0.7, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.7], "best_epoch": 2},
                 "b": {"train_loss": [0.7], "val_loss": []}}
    fig = plots.plot_training_curves(histories, {"a": "Model A"})
    validation = fig.axes[0]
    assert [line.get_label() for line in validation.get_lines()][0] == "Model A"
    star = validation.get_lines()[1]
    assert list(star.get_xdata()) == [2] and list(star.get_ydata()) == [0.6]
    assert len(fig.axes[1].get_lines()) == 1  # "b" has no validation curve: left out


def test_table_figure_formats_cells_and_shades_the_published_columns():
    rows = [{"name": "x", "published": 0.85, "count": 27977, "auc": "0.812 [0.701, 0.905]", "missing": None}]
    columns = [("published", "published", 4), ("count", "count", 0), ("AUC", "auc", 3), ("gap", "missing", 3)]
    fig = plots.table_figure(rows, columns, "name", "title", shaded=("published",))
    cells = fig.axes[0].tables[0].get_celld()
    assert [cells[(1, c)].get_text().get_text() for c in range(4)] == ["0.8500", "27,977", "0.812 [0.701, 0.905]", "-"]
    assert cells[(1, 0)].get_facecolor()[:3] != cells[(1, 1)].get_facecolor()[:3]


def test_accuracy_bars_carry_the_intervals():
    rows = [{"display_name": "M (x)", "published_train_accuracy": 0.9, "published_test_accuracy": 0.8,
             "train_accuracy": 0.7, "test_accuracy": 0.6, "train_accuracy_ci": [0.5, 0.8],
             "test_accuracy_ci": [0.4, 0.9]},
            {"display_name": "ensemble", "published_test_accuracy": None}]
    from matplotlib.container import BarContainer

    fig = plots.plot_accuracy_vs_published(rows)
    measured = [c for c in fig.axes[1].containers if isinstance(c, BarContainer)][1]
    assert [bar.get_height() for bar in measured] == [0.6]
    segments = measured.errorbar.lines[2][0].get_segments()
    assert np.allclose(segments[0][:, 1], [0.4, 0.9])


def test_heatmaps_annotate_and_grey_out_missing_values():
    values = pd.DataFrame({"m1": [0.9, np.nan], "m2": [0.5, 0.7]}, index=["swap", "blend"])
    notes = pd.DataFrame({"m1": ["0.90\n[0.8, 1.0]", "n/a"], "m2": ["0.50", "0.70"]}, index=values.index)
    fig = plots.plot_heatmaps([("AUC", values, notes), ("detected", values, None)], "per method")
    texts = _texts(fig)
    assert "0.90\n[0.8, 1.0]" in texts and "n/a" in texts and "-" in texts  # "-": the unannotated NaN


def test_gradcam_panels_say_none_for_an_empty_group():
    faces = np.random.default_rng(0).random((3, 32, 32, 3))
    cams = np.random.default_rng(1).random((3, 32, 32))
    picked = {"REAL, right": [0], "REAL, wrong": [], "FAKE, right": [1, 2], "FAKE, wrong": []}
    counts = {"REAL, right": 1, "REAL, wrong": 0, "FAKE, right": 2, "FAKE, wrong": 0}
    fig = plots.plot_gradcam_panels(faces, cams, np.array([0.1, 0.8, 0.9]), picked, counts, rows=2, title="t")
    texts = _texts(fig)
    assert texts.count("none") == 2 and "FAKE, right\n(2 faces)" in texts and "P(fake)=0.90" in texts


def test_cam_comparison_prints_the_largest_difference():
    face = np.zeros((16, 16, 3))
    a, b = np.zeros((16, 16)), np.zeros((16, 16))
    b[3, 4] = 0.25
    fig = plots.plot_cam_comparison(face, {"by hand": a, "library": b}, "t")
    assert any("max 2.5e-01" in t for t in _texts(fig))


def test_robustness_reverses_the_axis_where_lower_is_stronger():
    table = pd.DataFrame({"model": ["m"] * 4, "degradation": ["jpeg_quality", "jpeg_quality", "blur_sigma", "blur_sigma"],
                          "level": [100, 20, 0.0, 2.0], "frame roc_auc": [0.9, 0.7, 0.9, 0.6],
                          "frame roc_auc low": [0.8, 0.5, 0.8, 0.4], "frame roc_auc high": [1.0, 0.9, 1.0, 0.8],
                          "frame log_loss": [0.3, 0.6, 0.3, 0.7]})
    fig = plots.plot_robustness(table, ["m"], ["jpeg_quality", "blur_sigma"], {"jpeg_quality": 100, "blur_sigma": 0.0})
    jpeg, blur = fig.axes[0], fig.axes[1]
    assert jpeg.xaxis_inverted() and not blur.xaxis_inverted()
    assert len(jpeg.collections) == 1  # the CI band


def test_region_outline_draws_only_the_borders():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    outline = plots.region_outline({"eyes": mask, "nose": np.zeros_like(mask), "mouth": np.zeros_like(mask)})
    drawn = outline[..., 3] > 0
    assert drawn[5, 5] and drawn[14, 10] and not drawn[10, 10] and drawn.sum() == 36


def test_face_sequences_one_row_per_sequence_and_at_most_max_frames():
    rows = [np.zeros((5, 8, 8, 3)), np.ones((5, 8, 8, 3))]
    fig = plots.face_sequences(rows, ["REAL", "FAKE"], max_frames=3)
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "t=0" and fig.axes[3].get_ylabel() == "FAKE"


def test_feature_heatmaps_standardise_the_bottom_row():
    features = np.full((4, 10), 3.0)
    fig = plots.feature_heatmaps([("REAL", features)], mean=np.full(10, 2.0), variance=np.full(10, 4.0),
                                 n_features=10)
    top, bottom = fig.axes[0].images[0].get_array(), fig.axes[1].images[0].get_array()
    assert np.allclose(top, 3.0) and np.allclose(bottom, 0.5)  # (3 - 2) / sqrt(4)


def test_epoch_curve_marks_the_kept_epoch_and_skips_a_missing_validation_curve():
    fig = plots.epoch_curve({"loss": [0.7, 0.5, 0.6], "val_loss": [0.69, 0.6, 0.65]}, "loss", "t", best_epoch=2)
    lines = fig.axes[0].lines
    assert len(lines) == 3 and list(lines[2].get_xdata()) == [2, 2]
    assert len(plots.epoch_curve({"loss": [0.7, 0.5]}, "loss", "t").axes[0].lines) == 1


def test_running_verdict_colours_by_label():
    fig = plots.running_verdict([1, 2], [[0.4, 0.6], [0.5, 0.2]], [1, 0], "t")
    colours = [line.get_color() for line in fig.axes[0].lines[:2]]
    assert colours == ["tab:red", "tab:blue"]


def test_image_grid_and_roc_panels():
    grid = plots.image_grid([[np.zeros((4, 4, 3))] * 3, [np.ones((4, 4, 3))] * 2], [["a"] * 3, ["b"] * 2])
    assert len(grid.axes) == 6 and grid.axes[3].get_title() == "b"
    roc = plots.roc_and_scores({"faces": {"fpr": [0, 1], "tpr": [0, 1]}}, {"REAL": [0.1, 0.2], "FAKE": [0.9]})
    assert len(roc.axes) == 2 and len(roc.axes[1].patches) == 40  # two histograms of 20 bins


def test_picture_and_video_verdicts_show_each_face_and_the_timeline():
    face = SimpleNamespace(overlay=None, crop=np.zeros((4, 4, 3)), label="FAKE", prob_fake=0.9)
    picture = SimpleNamespace(n_faces=2, annotated=np.zeros((8, 8, 3)), label="FAKE", prob_fake=0.9,
                              faces=[face, face])
    assert len(plots.picture_verdict(picture, "x").axes) == 3
    timeline = pd.DataFrame({"time_s": [0.0, 0.5], "prob_fake": [0.2, 0.8]})
    video = SimpleNamespace(timeline_table=lambda: timeline, prob_fake=0.5, rule="mean", threshold=0.5,
                            label="FAKE", annotated=np.zeros((8, 8, 3)), overlay=None,
                            explained=SimpleNamespace(frame_index=3, crop=np.zeros((4, 4, 3)), prob_fake=0.8))
    fig = plots.video_verdict(video, "v")
    assert len(fig.axes) == 3 and list(fig.axes[0].lines[0].get_ydata()) == [0.2, 0.8]
