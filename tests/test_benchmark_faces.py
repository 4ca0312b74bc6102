"""The face-extraction benchmark runs end to end on small clips and reports comparable figures."""
import json
import os
import subprocess
import sys

from conftest import REPO_ROOT


def test_benchmark_compares_both_ways_on_the_same_frames(tmp_path):
    env = {**os.environ, "DEEPFAKE_DATA_DIR": str(tmp_path / "data"), "DEEPFAKE_RESULTS_DIR": str(tmp_path / "results")}
    command = [sys.executable, "tools/benchmark_faces.py", "--videos", "2", "--portrait", "1", "--seconds", "0.6",
               "--fps", "10", "--frames", "3", "--repeat", "1", "--device", "cpu"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "speed-up (a)/(b)" in done.stdout and "detection rate (b) - (a)" in done.stdout
    figures = json.loads((tmp_path / "results" / "benchmark_faces.json").read_text())
    a, b = figures["baseline_runs"][0], figures["pipeline"]
    assert a["frames"] == b["frames"] == 6  # 3 frames of each clip, both ways
    assert a["faces"] == b["faces"] == 6 and abs(figures["detection_rate_gap_pp"]) < 1e-9
    assert figures["speedup"] > 0 and b["seconds"] > 0 and len(b["per_video"]) == 2
    assert any("1080x1920" in name for name in figures["videos"])
    assert set(figures["reading"]) == {"cv2 read() every frame", "cv2 grab() all, retrieve() sampled",
                                       "PyAV keyframe seek + decode forward"}
