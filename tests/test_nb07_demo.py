"""Notebook 07 (the demo) runs headless and records what the shared prediction functions returned."""
import pytest

from conftest import load_result, run_notebook


@pytest.fixture(scope="module")
def recorded(workspace):
    run_notebook("07_demo")
    return load_result("07_demo")


@pytest.mark.notebook
def test_picture_verdict_recorded(recorded):
    image = recorded["image"]
    assert image["label"] == ("FAKE" if image["prob_fake"] >= 0.5 else "REAL")
    assert image["n_faces"] >= 1 and len(image["faces"]) == image["n_faces"]
    assert image["prob_fake"] == pytest.approx(max(f["prob_fake"] for f in image["faces"]))


@pytest.mark.notebook
def test_video_verdict_and_timeline_recorded(recorded):
    video = recorded["video"]
    assert recorded["n_frames"] == 6  # the smoke profile's value
    assert video["timeline_length"] == len(video["timeline"]) == video["n_frames_sampled"] == 6
    scores = [p for p in video["timeline"] if p is not None]
    assert len(scores) == video["n_frames_with_face"] >= 1
    assert min(scores) - 1e-9 <= video["prob_fake"] <= max(scores) + 1e-9  # both rules stay in the range
    assert video["label"] == ("FAKE" if video["prob_fake"] >= 0.5 else "REAL")
    assert video["n_faces"] >= video["n_frames_with_face"]


@pytest.mark.notebook
def test_checkpoint_and_input_errors_recorded(recorded, workspace):
    assert recorded["checkpoint_source"] in ("notebook 04", "quick model (notebook 07)")
    assert recorded["image_size"] > 0
    if recorded["checkpoint_source"].startswith("quick"):
        assert recorded["image_size"] == 128  # the smoke quick model; Grad-CAM needs >= ~128 px faces
    errors = recorded["input_errors"]
    assert "No face found" in errors["a grey picture (no face)"]
    assert "Unsupported file type" in errors["a text file"]
    assert "could not be read as a video" in errors["a broken video"]
    for figure in ("07_demo_picture", "07_demo_video"):
        assert (workspace / "figures" / f"{figure}.png").stat().st_size > 5_000
