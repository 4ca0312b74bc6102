"""The CPU memory estimate: the live-tensor count, a hand count of a small model, and the tool end to end."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("memory_estimate", REPO_ROOT / "tools" / "memory_estimate.py")
memory_estimate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory_estimate)

MIB = 2**20


def test_meter_follows_allocations_and_frees_by_hand():
    meter = memory_estimate.LiveTensorMeter()
    with meter:
        a = torch.zeros(MIB // 4)          # 1 MiB of float32
        b = a + 1                          # 2 MiB alive
        view = b[:10]                      # a view: no new storage
        del a                              # 1 MiB
        c = b * 2                          # 2 MiB again
        d = torch.cat([b, c])              # 4 MiB: the peak
        del d, view
    assert meter.peak_bytes == 4 * MIB
    assert meter.current_bytes == 2 * MIB  # b and c
    del b
    assert meter.current_bytes == MIB


def test_registered_tensors_are_counted_once():
    meter = memory_estimate.LiveTensorMeter()
    weight = torch.zeros(256, 1024)
    assert meter.register([weight, weight, weight[:3], weight.t()]) == MIB
    assert meter.current_bytes == meter.peak_bytes == MIB


def small_model():
    """Conv(3->8, 3x3) + BatchNorm(8) + ReLU + pooling + Linear(8->1): weights counted by hand below."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 1))


def test_training_step_matches_a_hand_count_and_grows_with_the_batch():
    weights = 4 * (8 * 3 * 3 * 3 + 8      # convolution kernel and bias
                   + 8 + 8                # BatchNorm scale and shift
                   + 8 + 1)               # linear layer
    buffers = 4 * (8 + 8) + 8             # running mean and variance (float32), batch counter (int64)
    adam = 2 * weights + 6 * 4            # two moments per weight, one float32 step count per tensor
    figures = {batch: memory_estimate.measure_training_step(small_model(), batch, 32) for batch in (2, 8, 32)}
    for batch, f in figures.items():
        assert f["weights_bytes"] == weights and f["optimizer_state_bytes"] == adam
        assert f["buffers_mib"] == round(buffers / MIB, 1) and f["gradients_mib"] == round(weights / MIB, 1)
        inputs = 4 * batch * (3 * 32 * 32 + 1)
        assert f["peak_bytes"] > weights + buffers + adam + inputs  # plus the activations
    peaks = [figures[b]["peak_bytes"] for b in (2, 8, 32)]
    assert peaks[0] < peaks[1] < peaks[2]
    # Saved activations per face: the conv output, the BatchNorm output and the ReLU output, 8 x 30 x 30
    # float32 each, about 28 KiB apiece; the figure must grow by at least two of them per added face.
    per_face = (peaks[2] - peaks[1]) / (32 - 8)
    assert per_face > 2 * 4 * 8 * 30 * 30


def test_the_meta_device_counts_what_the_cpu_counts():
    # the tool measures the classifiers on "meta" (sizes, no values): it must see the same storages
    cpu = memory_estimate.measure_training_step(small_model(), 8, 32, device="cpu")
    meta = memory_estimate.measure_training_step(small_model(), 8, 32, device="meta")
    assert meta["peak_bytes"] == cpu["peak_bytes"] and meta["device"] == "meta"
    cpu = memory_estimate.measure_inference(small_model(), 8, 32, device="cpu")
    meta = memory_estimate.measure_inference(small_model(), 8, 32, device="meta")
    assert abs(meta["peak_bytes"] - cpu["peak_bytes"]) <= 1024


def test_inference_batch_counts_weights_input_and_fewer_activations_than_training():
    model = small_model()
    inference = memory_estimate.measure_inference(model, 8, 32)
    training = memory_estimate.measure_training_step(small_model(), 8, 32)
    weights = sum(p.numel() for p in model.parameters()) * 4
    assert inference["peak_bytes"] > weights + 4 * 8 * 3 * 32 * 32
    assert inference["peak_bytes"] < training["peak_bytes"]


def test_mixed_precision_halves_only_what_autocast_makes_float16():
    # 100 MiB kept in float32 (weights, optimizer, input) + 60 MiB of activations; 20 MiB of trainable weights
    assert memory_estimate.mixed_precision_estimate(160, 100, 20) == 100 + 30 + 10


def test_settings_are_read_from_the_notebooks_themselves():
    needed = {"02_faces": {"frames_per_video", "crop_size", "batch_size"},
              "03_keras_resnet_lstm": {"seq_len", "image_size", "batch_size", "lstm_units", "dense_units"},
              "04_inception_resnet": {"image_size", "batch_size"},
              "05_model_comparison": {"image_size", "batch_size", "models", "image_size_per_model",
                                      "inception_image_size"},
              "06_tta_gradcam": {"batch_size", "tta", "robustness_models", "min_gradcam_size", "quick_image_size",
                                 "quick_batch_size", "keras_seq_len", "keras_image_size"},
              "07_demo": {"n_frames"}}
    for stem, keys in needed.items():
        defaults = memory_estimate.notebook_profile_defaults(stem)
        assert set(defaults) == {"smoke", "standard", "full"}
        assert keys <= set(defaults["full"]), f"{stem} lacks {keys - set(defaults['full'])}"
    assert memory_estimate.notebook_settings("04_inception_resnet")["image_size"] == 256  # the report's size


def run_tool(tmp_path, *options):
    output = tmp_path / "estimate.json"
    env = {**os.environ, "DEEPFAKE_RESULTS_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "tools/memory_estimate.py", "--profile", "smoke", "--output", str(output),
                           *options], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done, json.loads(output.read_text())


def test_the_tool_prints_the_table_for_the_pytorch_notebooks(tmp_path, capsys):
    output = tmp_path / "estimate.json"
    assert memory_estimate.main(["--profile", "smoke", "--notebooks", "04", "05", "--output", str(output)]) == 0
    done, record = capsys.readouterr(), json.loads(output.read_text())
    assert record["profile"] == "smoke" and "CPU estimate" in record["what"]
    assert {row["notebook"] for row in record["rows"]} == {"04_inception_resnet", "05_model_comparison"}
    training = next(r for r in record["rows"] if r["notebook"] == "04_inception_resnet" and r["what"] == "training step")
    # the notebook's smoke batch at its face size, float16 autocast converted, above the weights alone
    assert training["settings"] == "batch 8, 128 px" and training["mixed_precision"]
    assert training["estimate_mib"] > 3 * training["figures"]["weights_mib"]  # + gradients, Adam, activations
    for t in record["notebooks"]:
        assert t["margin_mib"] == pytest.approx(4096 - t["estimate_mib"] - t["allowance_mib"], abs=0.2)
    assert "estimated peak MiB (CPU estimate)" in done.out and "margin to 4096 MiB" in done.out


@pytest.mark.slow
def test_the_command_line_measures_the_keras_notebook(tmp_path):
    # the other notebooks are measured in-process above (Keras needs a process of its own, on the torch backend)
    done, record = run_tool(tmp_path, "--notebooks", "03")
    assert record["profile"] == "smoke" and "CPU estimate" in record["what"]
    notebooks = {row["notebook"] for row in record["rows"]}
    assert notebooks == {"03_keras_resnet_lstm"}
    assert all(row["estimate_mib"] > 0 for row in record["rows"])
    keras_training = next(r for r in record["rows"] if r["notebook"] == "03_keras_resnet_lstm" and "fit" in r["what"])
    assert keras_training["figures"]["peak_mib"] > keras_training["figures"]["weights_mib"]
    assert {t["notebook"] for t in record["notebooks"]} == notebooks
    assert all(t["margin_mib"] == pytest.approx(4096 - t["estimate_mib"] - t["allowance_mib"], abs=0.2)
               for t in record["notebooks"])
    assert "estimated peak MiB (CPU estimate)" in done.stdout


def test_gradcam_batch_holds_more_than_an_inference_batch_and_tta_runs_every_transform():
    from helpers import model_registry
    from helpers import tta as helpers_tta

    torch.manual_seed(0)
    model = model_registry.build_model("custom_cnn", pretrained=False, image_size=32, device="cpu").eval()
    inference = memory_estimate.measure_inference(model, 4, 32)
    cam = memory_estimate.measure_gradcam(model, 4, 32)
    tta = memory_estimate.measure_tta(model, 4, 32, list(helpers_tta.DEFAULT_TTA))
    assert cam["peak_bytes"] > inference["peak_bytes"]  # activations and their gradients are kept for the map
    assert tta["kind"] == f"TTA batch ({len(helpers_tta.DEFAULT_TTA)} transforms)"
    assert tta["peak_bytes"] >= inference["peak_bytes"] and tta["activations_mib"] > 0


def test_detector_batch_finds_the_face_and_counts_more_than_its_input():
    small = memory_estimate.measure_detector(2, 2, None, width=320, height=240, crop_size=64)
    assert small["faces_found"] >= 2 and small["detected_at"] == "320x240"  # one face per frame, at full size
    frames_bytes, weights_bytes = 2 * 320 * 240 * 3, (small["weights_mib"] - 0.05) * MIB  # uint8 frames; MiB rounded
    assert small["peak_bytes"] > frames_bytes + weights_bytes  # plus the cascade's image pyramid and feature maps
    halved = memory_estimate.measure_detector(2, 2, 160, width=320, height=240, crop_size=64)
    assert halved["detected_at"] == "160x120" and halved["peak_bytes"] < small["peak_bytes"]
