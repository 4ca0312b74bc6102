"""Notebook 02 on the built-in sample (smoke profile): crops, manifest and what it recorded."""
from pathlib import Path

import pytest
from conftest import load_result, run_notebook

from helpers import crop_manifest, data_sources, faces

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def recorded():
    run_notebook("02_faces")
    return load_result("02_faces")


@pytest.fixture(scope="module")
def manifest(recorded):
    return crop_manifest.load_manifest(recorded["manifest"], only_faces=False)


def test_every_video_of_the_sample_is_accounted_for(recorded, manifest):
    videos = data_sources.load_dataset(data_sources.prepare_dataset("sample", "smoke"), probe=False)
    assert set(manifest["video"]) == set(videos["name"])
    assert recorded["n_videos"] == len(videos)
    per_video = manifest.groupby("video").size()
    assert (per_video == faces.PROFILE_DEFAULTS["smoke"]["frames_per_video"]).all()
    assert set(manifest["status"]) <= set(crop_manifest.STATUSES)
    # the labels travel with the crops
    labels = videos.set_index("name")["label"]
    assert (manifest["label"] == labels.loc[manifest["video"]].to_numpy()).all()


def test_crops_exist_with_the_stated_size(recorded, manifest):
    from PIL import Image

    ok = manifest[manifest["status"] == "ok"]
    assert recorded["crop_size"] == 96 and len(ok) == recorded["n_crops"] > 0
    for path in ok["crop_path"]:
        assert Path(path).is_file()
        with Image.open(path) as crop:
            assert crop.size == (96, 96) and crop.mode == "RGB"
    assert ok["prob"].min() > 0.7  # O-Net's threshold


def test_faces_are_found_where_the_sample_has_them(recorded, manifest):
    from helpers import sample_data

    # the generator knows which clips show no face (the sample has such a clip on purpose)
    generation = sample_data.read_generation(data_sources.prepare_dataset("sample", "smoke"))
    no_face = sorted(name for name, d in generation["videos"].items() if not d["has_face"])
    assert sorted(recorded["videos_without_faces"]) == no_face
    assert recorded["detection_rate"] > 0.8
    without = manifest[manifest["video"].isin(recorded["videos_without_faces"])]
    assert (without["status"] == "no_face").all()
    with_faces = manifest[~manifest["video"].isin(recorded["videos_without_faces"])]
    assert (with_faces["status"] == "ok").mean() > 0.95
    assert recorded["unreadable_videos"] == []


def test_records_times_and_figures(recorded, workspace):
    assert recorded["frames_per_video"] == 5 and recorded["profile"] == "smoke"
    stages = recorded["mtcnn_stage_boxes"]
    assert stages["P-Net"] >= stages["R-Net"] >= stages["O-Net"] >= 1
    for name in recorded["figures"]:
        assert (workspace / "figures" / f"{name}.png").is_file()
