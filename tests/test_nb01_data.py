"""Notebook 01 (smoke profile): the data card, the split checks and the figures it records."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_result, run_notebook


@pytest.mark.notebook
def test_nb01_records_counts_splits_and_figures(workspace):
    run_notebook("01_data")
    result = load_result("01_data")

    # the counts it recorded are the dataset's counts
    metadata = json.loads((Path(result["dataset_dir"]) / "metadata.json").read_text())
    assert result["n_videos"] == len(metadata) >= 8
    labels = [e["label"] for e in metadata.values()]
    assert result["counts"]["label"] == {"REAL": labels.count("REAL"), "FAKE": labels.count("FAKE")}
    assert sum(result["counts"]["split"].values()) == result["n_videos"]
    for split in ("train", "val", "test"):
        per_label = result["counts"]["split_label"][split]
        assert per_label["REAL"] >= 1 and per_label["FAKE"] >= 1, (split, per_label)
        assert per_label["REAL"] + per_label["FAKE"] == result["counts"]["split"][split]

    # the split checks were computed, and hold
    check = result["split_check"]
    assert check["video_disjoint"] is True
    assert check["fakes_with_originals"] is True
    assert check["groups_together"] is True
    assert check["fake_original_pairs"] == labels.count("FAKE")
    split_of = {name: e["split"] for name, e in metadata.items()}
    assert all(split_of[e["original"]] == e["split"] for e in metadata.values() if e["original"])

    # the sample: timing, a portrait clip and a clip without a face
    generation = result["generation"]
    assert generation["n_videos"] == result["n_videos"] and generation["seconds_per_video"] > 0
    assert generation["n_no_face"] >= 1 and result["n_portrait"] >= 1

    # leakage demo: a random frame split exposes test frames' own videos; our split exposes nothing
    exposure = result["leakage_demo"]["exposure"]
    assert exposure["random frame split"]["test_frames_whose_video_is_in_train"] > 0.9
    assert exposure["our split"] == {"test_frames_whose_video_is_in_train": 0.0,
                                     "test_fake_frames_whose_original_or_sibling_is_in_train": 0.0}
    copies = result["leakage_demo"]["near_copies"]
    assert copies["fake_vs_its_original"] < copies["unrelated_videos"]

    for name in ("01_real_vs_fake", "01_data_card"):
        figure = workspace / "figures" / f"{name}.png"
        assert figure.is_file() and figure.stat().st_size > 10_000, figure
