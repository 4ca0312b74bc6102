"""The notebooks' figure helpers lay out what they are given (one panel per item, the right lines)."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from helpers import plots

plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


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
