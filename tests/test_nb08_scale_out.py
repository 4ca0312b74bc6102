"""Notebook 08 (Ray Data) runs both pipelines locally and records throughput, equality and a submission."""
import math

import pytest

from conftest import load_result, run_notebook


@pytest.fixture(scope="module")
def recorded(workspace):
    run_notebook("08_scale_out")
    return load_result("08_scale_out")


@pytest.mark.notebook
def test_throughput_recorded_for_the_reference_and_each_worker_count(recorded):
    runs = {(r["engine"], r["workers"]): r for r in recorded["throughput"]}
    assert set(runs) == {("extract_faces", 1), ("ray", 1), ("ray", 2)}
    for run in runs.values():
        assert run["videos"] == (recorded["throughput_videos"] or recorded["n_videos"]) and run["seconds"] > 0
        assert 0 < run["video_cores"] <= 1.1 * run["busy_cores"] + 0.05  # the videos' CPU is part of the busy CPU
        assert run["videos_per_s"] > 0 and run["steady_videos_per_s"] > 0
        assert run["first_video_s"] <= run["seconds"] + 1e-6
    speedup = recorded["speedup"]
    assert speedup["steady"] == pytest.approx(runs[("ray", 2)]["steady_videos_per_s"]
                                              / runs[("ray", 1)]["steady_videos_per_s"])
    assert recorded["ray_vs_extract_faces"]["target"] == 0.85 and speedup["target"] == 1.6
    assert recorded["load_average_at_start"] is not None  # the closing note says whether it ran under load
    one = runs[("ray", 1)]
    assert 0 < one["detect_cpu_s_per_video"] < one["cpu_s_per_video"]
    bound = recorded["idle_bound"]
    assert 1.0 <= bound["speedup"] <= 2.0 + 1e-9  # two single-threaded workers on two cores


@pytest.mark.notebook
def test_ray_manifests_equal_extract_faces(recorded):
    assert set(recorded["equality"]) == {"Ray, 1 worker(s)", "Ray, 2 worker(s)"}
    for same in recorded["equality"].values():
        assert same["same_videos"] and same["same_frames"] and same["same_statuses"]
        assert same["faces"] > 0 and same["max_box_diff_px"] <= 1e-3


@pytest.mark.notebook
def test_rerun_skips_and_the_course_manifest_is_complete(recorded):
    assert recorded["rerun_todo"] == 0
    assert recorded["course_run"]["videos"] == recorded["n_videos"]


@pytest.mark.notebook
def test_submission_and_scores_recorded(recorded):
    scoring = recorded["scoring"]
    assert scoring["submission_columns"] == ["filename", "label"]
    assert scoring["submission_rows"] == scoring["n_videos"] == recorded["n_videos"]
    assert 0.0 <= scoring["prob_min"] <= scoring["prob_max"] <= 1.0
    assert scoring["n_faces"] > 0 and scoring["consistency_max_diff"] <= 1e-5  # actors agree with this process
    metrics = scoring["video_metrics"]
    assert scoring["n_labelled"] == recorded["n_videos"] and metrics["log_loss"] > 0
    assert metrics["log_loss_ci"][0] <= metrics["log_loss"] <= metrics["log_loss_ci"][1]


@pytest.mark.notebook
def test_projection_and_clean_shutdown(recorded, workspace):
    projection = recorded["projection"]
    assert projection["cpu_cores_for_one_hour"] == math.ceil(projection["cpu_core_hours"]) > 0
    assert projection["gpus_for_one_hour"] == math.ceil(projection["gpu_hours_detection"]) > 0
    assert projection["measured_overhead_factor"] > 0
    assert recorded["ray_processes_left"] == 0
    assert (workspace / "figures" / "08_scale_out_throughput.png").stat().st_size > 5_000
