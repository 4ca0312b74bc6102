"""The face-extraction benchmark runs end to end on small clips and reports comparable figures."""
import json
import os
import subprocess
import sys

from conftest import REPO_ROOT


def run_benchmark(tmp_path, *options):
    env = {**os.environ, "DEEPFAKE_DATA_DIR": str(tmp_path / "data"), "DEEPFAKE_RESULTS_DIR": str(tmp_path / "results")}
    command = [sys.executable, "tools/benchmark_faces.py", "--frames", "3", "--repeat", "1", "--device", "cpu",
               *options]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, json.loads((tmp_path / "results" / "benchmark_faces.json").read_text())


def test_benchmark_compares_three_ways_on_both_sets(tmp_path):
    stdout, figures = run_benchmark(tmp_path, "--videos", "2", "--portrait", "1", "--seconds", "0.6", "--fps", "10",
                                    "--hard-videos", "1", "--hard-seconds", "0.6")
    for text in ("(a) report's way", "(b) DFDC winner's way", "(c) pipeline", "without second looks",
                 "speed-up (a)/(c)", "detection rate (c) - (a)", "second looks in (c)", "load average before"):
        assert text in stdout
    assert set(figures["sets"]) == {"synthetic", "hard"}
    synthetic, hard = figures["sets"]["synthetic"], figures["sets"]["hard"]
    for result, n_videos in ((synthetic, 2), (hard, 1)):
        best = result["best"]
        assert set(best) == {"report", "winner", "pipeline", "first_look_only"}
        assert {run["frames"] for run in best.values()} == {3 * n_videos}  # 3 frames of each clip, every way
        assert best["pipeline"]["seconds"] > 0 and len(best["pipeline"]["per_video"]) == n_videos
        assert result["speedup"] > 0 and abs(result["detection_gap_pp"] - 100 * (
            best["pipeline"]["faces"] - best["report"]["faces"]) / (3 * n_videos)) < 1e-9
    # the large, well-lit faces of the synthetic clips: every way finds all, no second look needed
    assert all(run["faces"] == 6 for run in synthetic["best"].values())
    assert synthetic["best"]["pipeline"]["second_looks"] == {}
    assert any("1080x1920" in name for name in synthetic["videos"])
    assert hard["videos"] == ["small_1080p_1920x1080_0.6s_10fps.mp4"]
    assert set(figures["reading"]) == {"cv2 read() every frame", "cv2 grab() all, retrieve() sampled",
                                       "PyAV keyframe seek + decode forward"}


def test_benchmark_times_a_folder_of_your_own_videos(tmp_path):
    from helpers import sample_data

    videos = tmp_path / "my videos"
    sample_data.make_clip(videos / "real" / "a.mp4", 320, 240, seconds=0.6, fps=10, seed=1)
    sample_data.make_clip(videos / "fake" / "b.mp4", 320, 240, seconds=0.6, fps=10, fake=True, seed=1)
    before = sorted((p.relative_to(videos), p.stat().st_size) for p in videos.rglob("*"))
    stdout, figures = run_benchmark(tmp_path, "--videos-dir", str(videos), "--skip-ablation")
    assert "Your videos" in stdout and set(figures["sets"]) == {"own"}
    own = figures["sets"]["own"]
    assert own["n_videos"] == 2 and sorted(own["videos"]) == ["a.mp4", "b.mp4"]
    assert {run["frames"] for run in own["best"].values()} == {6}
    assert own["best"]["pipeline"]["faces"] == 6
    assert sorted((p.relative_to(videos), p.stat().st_size) for p in videos.rglob("*")) == before  # untouched
