"""The training benchmark runs both memory formats on a small model and checks they agree."""
import json
import os
import subprocess
import sys

from conftest import REPO_ROOT


def test_benchmark_times_both_formats_and_compares_results(tmp_path):
    output = tmp_path / "benchmark_training.json"
    command = [sys.executable, "tools/benchmark_training.py", "--model", "custom_cnn", "--size", "32", "--batch", "4",
               "--steps", "2", "--repeats", "2", "--threads", "1", "--output", str(output)]
    done = subprocess.run(command, cwd=REPO_ROOT, env={**os.environ}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "speed-up channels-last / plain" in done.stdout and "load average" in done.stdout
    record = json.loads(output.read_text())
    assert set(record["results"]) == {"plain (NCHW)", "channels-last (NHWC)"}
    for figures in record["results"].values():
        assert len(figures["runs"]) == 2 and figures["faces_per_second_best"] >= figures["faces_per_second_median"] > 0
    assert record["speedup"]["median"] > 0 and record["image_size"] == 32
    assert record["same_results"]["loss_difference"] < 1e-5
    assert record["same_results"]["max_logit_difference"] < 1e-4
