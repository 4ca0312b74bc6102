"""How fast does the course's training loop run, with and without the channels-last memory format?

A convolution reads, for each output pixel, a small window of every input
channel. PyTorch stores a batch of images as N, C, H, W by default ("NCHW"): one
whole channel after the other. In the *channels-last* order ("NHWC") the channel
values of one pixel sit next to each other in memory, which is the order the
CPU's (oneDNN) and the GPU's (cuDNN, tensor cores) fastest convolution kernels
work in; the default order must be converted to it and back around each layer.

This benchmark trains one model with ``helpers.training_torch.train_classifier``
on synthetic faces (random values in [0, 1]; speed does not depend on them),
once per memory format, the two taking turns (plain, channels-last, then
channels-last, plain, ...) so that a change in the machine's load hits both
alike. It prints, for each format, the best and the median throughput (faces per
second of wall-clock time), the CPU seconds per face, the speed-up, and checks
first that both formats give the same loss and the same outputs from the same
starting weights. The load average before and after is printed: on a shared
machine label the figures "under load".

    python tools/benchmark_training.py                      # InceptionResnetV1, 160 px, batch 32, 2 threads
    python tools/benchmark_training.py --model densenet121 --size 64
    make benchmark-training

Writes ``results/benchmark_training.json`` (``--output`` to change).
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from helpers import config, training_torch  # noqa: E402

MODES = {"plain (NCHW)": False, "channels-last (NHWC)": True}


def build_model(name: str, image_size: int, seed: int = 0) -> torch.nn.Module:
    """One of the course's face classifiers with random weights (no download)."""
    from helpers import model_registry

    torch.manual_seed(seed)
    return model_registry.build_model(name, pretrained=False, image_size=image_size)


def synthetic_batches(n_batches: int, batch_size: int, image_size: int, seed: int = 0) -> list:
    """``n_batches`` of (faces, labels): faces uniform in [0, 1], labels half 0 and half 1."""
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.arange(batch_size) % 2).float()
    return [(torch.rand(batch_size, 3, image_size, image_size, generator=generator), labels)
            for _ in range(n_batches)]


def timed_epoch(model, batches, channels_last: bool) -> dict:
    """One epoch of train_classifier over ``batches``; wall-clock and CPU seconds of the training steps."""
    cpu_start = time.process_time()
    history = training_torch.train_classifier(
        model, batches, None, epochs=1, lr=1e-4, device="cpu", patience=None, progress=False, restore_best=False,
        bn_recalibration_batches=0, channels_last=channels_last, seed=0)
    faces = sum(len(y) for _, y in batches)
    return {"seconds": history["train_seconds"], "faces_per_second": history["faces_per_second"],
            "cpu_seconds_per_face": (time.process_time() - cpu_start) / faces, "loss": history["train_loss"][0]}


def same_results(start: torch.nn.Module, batches: list) -> dict:
    """Train two copies of ``start`` on the same batches, one per format; compare their loss and outputs."""
    runs = {}
    for label, channels_last in MODES.items():
        model = copy.deepcopy(start)
        loss = timed_epoch(model, batches, channels_last)["loss"]
        with torch.no_grad():
            logits = model.eval()(batches[0][0])
        runs[label] = (loss, logits)
    (loss_a, out_a), (loss_b, out_b) = runs.values()
    return {"loss_plain": loss_a, "loss_channels_last": loss_b, "loss_difference": abs(loss_a - loss_b),
            "max_logit_difference": float((out_a - out_b).abs().max()),
            "logit_scale": float(out_a.abs().max())}


def summarise(runs: list[dict], batch_size: int) -> dict:
    step_seconds = [r["seconds"] for r in runs]
    return {"runs": runs, "faces_per_second_best": max(r["faces_per_second"] for r in runs),
            "faces_per_second_median": statistics.median(r["faces_per_second"] for r in runs),
            "cpu_seconds_per_face_median": statistics.median(r["cpu_seconds_per_face"] for r in runs),
            "seconds_median": statistics.median(step_seconds), "batch_size": batch_size}


def hardware() -> dict:
    from helpers.results import cpu_model

    model = cpu_model()
    return {"cpu": model, "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="inception_resnet_v1",
                        choices=["inception_resnet_v1", "custom_cnn", "meso4", "mesoinception4", "densenet121"])
    parser.add_argument("--size", type=int, default=160, help="face size in pixels (default 160)")
    parser.add_argument("--batch", type=int, default=32, help="faces per training step (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed run (default 3)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each format (default 5)")
    parser.add_argument("--output", default=None, help="JSON file (default results/benchmark_training.json)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    batches = synthetic_batches(args.steps, args.batch, args.size)
    print(f"{args.model}, {args.size} px, batch {args.batch}, {args.threads} threads, {args.steps} steps per run, "
          f"{args.repeats} runs per format (taking turns); load average {load_before:.2f} on "
          f"{os.cpu_count()} CPUs", flush=True)

    start = build_model(args.model, args.size)
    check = same_results(start, batches)  # also the warm-up of both formats
    print(f"  same start, same batches: loss {check['loss_plain']:.6f} (plain) vs {check['loss_channels_last']:.6f}"
          " (channels-last)", flush=True)
    models = {label: copy.deepcopy(start) for label in MODES}
    runs = {label: [] for label in MODES}
    for repeat in range(args.repeats):
        order = list(MODES) if repeat % 2 == 0 else list(MODES)[::-1]
        for label in order:
            runs[label].append(timed_epoch(models[label], batches, MODES[label]))
            print(f"  run {repeat + 1}, {label}: {runs[label][-1]['faces_per_second']:.1f} faces/s", flush=True)
    load_after = os.getloadavg()[0]
    results = {label: summarise(r, args.batch) for label, r in runs.items()}
    plain, fast = results["plain (NCHW)"], results["channels-last (NHWC)"]
    speedup = {"best": fast["faces_per_second_best"] / plain["faces_per_second_best"],
               "median": fast["faces_per_second_median"] / plain["faces_per_second_median"],
               "cpu_time": plain["cpu_seconds_per_face_median"] / fast["cpu_seconds_per_face_median"]}
    loaded = load_after > 0.75 * (os.cpu_count() or 1) or load_before > 0.75 * (os.cpu_count() or 1)

    print(f"\n{'':24s} {'faces/s best':>12s} {'median':>8s} {'CPU s/face':>11s}")
    for label, r in results.items():
        print(f"{label:24s} {r['faces_per_second_best']:12.1f} {r['faces_per_second_median']:8.1f} "
              f"{r['cpu_seconds_per_face_median']:11.3f}")
    print(f"speed-up channels-last / plain: best {speedup['best']:.2f}x, median {speedup['median']:.2f}x, "
          f"CPU time {speedup['cpu_time']:.2f}x")
    print(f"same results from the same weights: first-epoch loss {check['loss_plain']:.6f} vs "
          f"{check['loss_channels_last']:.6f}, largest logit difference {check['max_logit_difference']:.2e} "
          f"(logits up to {check['logit_scale']:.2f})")
    print(f"load average {load_before:.2f} before, {load_after:.2f} after"
          + (": UNDER LOAD, other processes shared the CPUs" if loaded else ""))

    record = {"date": datetime.date.today().isoformat(), "hardware": hardware(), "model": args.model,
              "image_size": args.size, "batch_size": args.batch, "threads": args.threads, "steps": args.steps,
              "repeats": args.repeats, "load_average_before_after": [load_before, load_after],
              "under_load": loaded, "results": results, "speedup": speedup, "same_results": check}
    output = Path(args.output) if args.output else config.results_dir() / "benchmark_training.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
