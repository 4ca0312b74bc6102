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

    # the methods of the sample's fakes, with their counts (the smoke sample has one of each)
    from helpers import sample_data

    methods = [e["method"] for e in metadata.values() if e["label"] == "FAKE"]
    assert result["difficulty"] == sample_data.sample_settings("smoke")["difficulty"] != "easy"
    assert result["methods"]["counts"] == {m: methods.count(m) for m in set(methods)}
    assert set(result["methods"]["counts"]) == set(sample_data.METHODS)
    assert sum(sum(c.values()) for c in result["methods"]["split_counts"].values()) == len(methods)
    for photo in result["photos"].values():
        assert photo["licence"] in ("public domain", "CC0 1.0")

    # trivial classifiers on face statistics: video-level test scores, each with its n and CI
    n_test = result["counts"]["split"]["test"]
    for name, scores in result["trivial_classifier"]["scores"].items():
        assert scores["n"] == n_test, name
        assert scores["roc_auc"] is not None and scores["roc_auc_ci"][0] <= scores["roc_auc_ci"][1]
        assert scores["accuracy_ci"][0] <= scores["accuracy_ci"][1] and scores["ci_unit"] == "row"

    # leakage, measured: the same model on a random frame split scores above the honest split
    leak = result["leakage"]
    frames_per_video = result["leakage_demo"]["frames_per_video"]
    for split in ("random frame split", "our split"):
        scores = leak["scores"][split]
        assert scores["roc_auc"] is not None and scores["roc_auc_ci"][0] <= scores["roc_auc_ci"][1]
        assert scores["n"] >= scores["n_test_videos"] >= 1 and scores["ci_unit"] == "group"
    honest, leaky = leak["scores"]["our split"], leak["scores"]["random frame split"]
    assert honest["n"] == n_test * frames_per_video
    assert leak["inflation"]["roc_auc"] == pytest.approx(leaky["roc_auc"] - honest["roc_auc"])
    assert leaky["roc_auc"] > 0.75, leaky  # near-copies with their labels in training: memorised

    for name in ("01_real_vs_fake", "01_data_card", "01_methods", "01_trivial_statistics", "01_leakage"):
        figure = workspace / "figures" / f"{name}.png"
        assert figure.is_file() and figure.stat().st_size > 10_000, figure
