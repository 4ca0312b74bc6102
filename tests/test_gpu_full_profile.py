"""The 4 GB promise: every notebook's `full` profile under a 4 GiB GPU memory cap.

Run with `make gpu-test` on a machine with an NVIDIA GPU. It executes each
notebook with PROFILE="full" and GPU_MEMORY_GB=4 (the same cap for PyTorch and
TensorFlow, see helpers/gpu.py), then writes results/gpu_4gb_table.md with the
peak GPU memory, wall time and main metric of each. Without TensorFlow GPU
support, run it with KERAS_BACKEND=torch (the Keras notebooks then use PyTorch).
"""
import json
import os
import platform
import time

import pytest
import torch

from conftest import WORKSPACE
from helpers import config, course

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA GPU: the 4 GiB full-profile check needs one")]
CAP_GB = 4
ROWS = []


@pytest.mark.parametrize("notebook", course.course_notebooks(), ids=lambda p: p.stem)
def test_full_profile_fits_in_4_gib(notebook, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_GPU_MEMORY_GB", str(CAP_GB))
    parameters = {"PROFILE": "full", "DATA_SOURCE": os.environ.get("GPU_TEST_SOURCE", "sample"),
                  "PRETRAINED": False, "DEVICE": "cuda", "GPU_MEMORY_GB": CAP_GB,
                  "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    run = course.execute(notebook, WORKSPACE / "executed_full" / notebook.name, parameters)
    result = json.loads((config.results_dir() / f"{notebook.stem}.json").read_text())
    peaks = list(_peaks(result))
    peak = max(peaks) if peaks else None
    ROWS.append({"notebook": notebook.stem, "backend": parameters["KERAS_BACKEND"] if "keras" in notebook.stem
                 else "torch", "peak_mib": peak, "seconds": run["seconds"]})
    _write_table()
    if notebook.stem >= "02":  # from face extraction on, every notebook uses the GPU and records its peak
        assert peak is not None, f"{notebook.stem} recorded no peak_gpu_mib"
        assert peak < CAP_GB * 1024


def _peaks(value):
    """Every peak_gpu_mib recorded anywhere in a results file (per backend, per model...)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "peak_gpu_mib" and isinstance(item, (int, float)):
                yield item
            else:
                yield from _peaks(item)
    elif isinstance(value, list):
        for item in value:
            yield from _peaks(item)


def _write_table():
    name = torch.cuda.get_device_name(0)
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {name} ({platform.node()}), cap {CAP_GB} GiB", "",
             "| notebook | backend | peak GPU MiB | wall time (s) |", "|---|---|---|---|"]
    lines += [f"| {r['notebook']} | {r['backend']} | {r['peak_mib']} | {r['seconds']} |" for r in ROWS]
    (config.results_dir() / "gpu_4gb_table.md").write_text("\n".join(lines) + "\n")
