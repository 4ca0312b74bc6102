"""How much GPU memory does each notebook need with its `full` settings? An estimate made on the CPU.

The course promises that every notebook runs with ``PROFILE = "full"`` on a 4 GB
GPU. Until that is measured on one (``make gpu-test``), this tool estimates it
without a GPU: it builds each notebook's models with the notebook's own full
settings (read from the ``PROFILE_DEFAULTS`` cell of the notebook itself, so the
numbers here cannot drift from the course), runs one training step and one
inference batch of each on the CPU, and counts the bytes of the tensors that
are alive at every moment. The largest count is the estimated peak.

How the bytes are counted (:class:`LiveTensorMeter`): a ``TorchDispatchMode``
sees every tensor operation PyTorch runs, forward and backward, including those
of the optimizer and of Keras on its torch backend. Each new storage an operation
returns is added to a running total, and a ``weakref.finalize`` on the storage
takes it off again the moment PyTorch frees it. Tensors that exist before the
step (weights, buffers, optimizer state, last step's gradients, the input batch)
are registered first. The peak of the running total is what
``torch.cuda.max_memory_allocated`` would report for the same step on a GPU,
up to what this count cannot see (listed in the table as "left out"):

* the CUDA context (typically 300-500 MiB, never in ``max_memory_allocated``);
* cuDNN / cuBLAS workspaces, which GPU kernels allocate besides their outputs;
* the caching allocator's rounding and fragmentation;
* differences between CPU and GPU kernels (the same autograd graph is saved,
  but e.g. cuDNN may pick algorithms that keep other intermediate buffers).

A training step is the one of ``helpers.training_torch.train_classifier``:
Adam, ``BCEWithLogitsLoss``, ``zero_grad(set_to_none=True)``. Adam's state is
created before the measured step, so that the step looks like every step after
the first.

Mixed precision: notebooks 04 and 05 train and score with ``torch.autocast``
(float16) on a GPU. A CPU has no float16 autocast worth timing, so the step is
measured in float32 and converted: weights, gradients, optimizer state and the
input batch stay float32 under autocast; the activations and temporaries
(everything above that state at the peak) are halved, because the convolutions
and matrix products that make nearly all of them run in float16; and autocast's
float16 copies of the trainable weights (kept for the backward pass) are added.
Both figures are written down; the table uses the one matching what the notebook
does on a GPU.

Run ``python tools/memory_estimate.py`` (or ``make memory-estimate``); it prints a
table and writes ``results/memory_estimate.json``. ``--profile smoke`` runs
the same code on the tiny smoke settings (seconds; the tests use it).
"""
from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_flatten  # noqa: E402

from helpers import config  # noqa: E402

MIB = 2**20
GPU_MIB = 4096
#: What a real GPU adds on top of the counted tensors, for the margin column (a planning
#: allowance, not a measurement): the CUDA context plus cuDNN/cuBLAS workspaces ...
ALLOWANCE_FIXED_MIB = 600
#: ... and the caching allocator's rounding and fragmentation, as a share of the estimate.
ALLOWANCE_SHARE = 0.20
LEFT_OUT = "CUDA context, cuDNN/cuBLAS workspaces, allocator fragmentation"


# --------------------------------------------------------------------------- the notebooks' settings
def notebook_profile_defaults(stem: str) -> dict:
    """The ``PROFILE_DEFAULTS`` dict of ``notebooks/<stem>.ipynb``, read from the notebook itself.

    Only the cell's assignments to plain names are run, in order, up to and
    including ``PROFILE_DEFAULTS`` (so helpers such as notebook 06's ``COMMON``
    are known); imports, environment changes and the rest of the cell are not.
    ``helpers.tta`` (and ``helpers.explain``) are provided, since notebook 06 builds its defaults from them.
    """
    from helpers import explain, tta

    notebook = json.loads((REPO_ROOT / "notebooks" / f"{stem}.ipynb").read_text())
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
        if "PROFILE_DEFAULTS" not in source:
            continue
        namespace = {"explain": explain, "tta": tta}
        for node in ast.parse(source).body:
            names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            if not isinstance(node, ast.Assign) or not names:
                continue
            exec(compile(ast.Module([node], type_ignores=[]), stem, "exec"), namespace)
            if "PROFILE_DEFAULTS" in names:
                return namespace["PROFILE_DEFAULTS"]
    raise ValueError(f"notebooks/{stem}.ipynb has no PROFILE_DEFAULTS assignment.")


def notebook_settings(stem: str, profile: str = "full") -> dict:
    return dict(notebook_profile_defaults(stem)[profile])


# --------------------------------------------------------------------------- counting live tensors
class LiveTensorMeter(TorchDispatchMode):
    """Count the bytes of live tensor storages while PyTorch runs; remember the peak.

    >>> meter = LiveTensorMeter()
    >>> with meter:
    ...     a = torch.zeros(1024, 256)      # 1 MiB
    ...     b = a + 1                       # 2 MiB alive
    ...     del a                           # 1 MiB
    >>> meter.peak_bytes
    2097152

    ``register(tensors)`` counts tensors that existed before (weights, an input
    batch); they are counted once, however many views share their storage.
    """

    def __init__(self):
        super().__init__()
        self._live: dict = {}
        self.current_bytes = 0
        self.peak_bytes = 0

    def _add(self, tensor: torch.Tensor) -> int:
        if not isinstance(tensor, torch.Tensor):
            return 0
        storage = tensor.untyped_storage()
        size, key = storage.nbytes(), storage._cdata  # the C++ storage: unique while alive, also on "meta"
        if size == 0 or key in self._live:
            return 0
        self._live[key] = size
        self.current_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.current_bytes)
        weakref.finalize(storage, self._free, key, size)
        return size

    def _free(self, key: int, size: int) -> None:
        if self._live.get(key) == size:
            del self._live[key]
            self.current_bytes -= size

    def register(self, tensors) -> int:
        """Count already existing tensors; returns the bytes newly counted."""
        return sum(self._add(t) for t in tensors if isinstance(t, torch.Tensor))

    def reset_peak(self) -> None:
        self.peak_bytes = self.current_bytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            self._add(tensor)
        return out


def tensor_bytes(tensors) -> int:
    """Bytes of distinct storages among ``tensors``."""
    seen, total = set(), 0
    for tensor in tensors:
        if isinstance(tensor, torch.Tensor):
            storage = tensor.untyped_storage()
            if storage._cdata not in seen and storage.nbytes():
                seen.add(storage._cdata)
                total += storage.nbytes()
    return total


def _mib(n_bytes: float) -> float:
    return round(n_bytes / MIB, 1)


def model_state_bytes(model: torch.nn.Module) -> dict:
    """Weights (parameters), trainable weights and buffers (BatchNorm statistics), in bytes."""
    return {"weights": tensor_bytes(model.parameters()),
            "trainable": tensor_bytes(p for p in model.parameters() if p.requires_grad),
            "buffers": tensor_bytes(model.buffers())}


def mixed_precision_estimate(peak: float, state: float, trainable_weights: float) -> float:
    """Peak under float16 autocast from a float32 measurement (see the module docstring).

    ``state``: bytes that stay float32 (weights, buffers, optimizer state, input);
    ``peak - state``: activations and temporaries, halved; plus float16 copies of
    the trainable weights, which autocast caches and the backward pass keeps.
    """
    return state + (peak - state) / 2 + trainable_weights / 2


# --------------------------------------------------------------------------- PyTorch measurements
def _training_step(model, optimizer, criterion, x, y):
    """One step as helpers.training_torch.train_classifier takes it (float32; autocast is converted after)."""
    optimizer.zero_grad(set_to_none=True)
    logits = model(x).float().reshape(len(x), -1)[:, 0]
    loss = criterion(logits, y)
    loss.backward()
    optimizer.step()
    return loss.detach()  # no float(): on the meta device there is no value to read


def _create_optimizer_state(model, optimizer) -> None:
    """Give Adam its state (two moments and a step count per weight) without a forward pass.

    A step with all-zero gradients creates exactly the state a real first step
    creates and moves no weight (Adam's update is 0 / (0 + eps)). The zero
    gradients stay, as the last step's gradients stay until ``zero_grad``.
    """
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.grad = torch.zeros_like(parameter)
    optimizer.step()


def measure_training_step(model: torch.nn.Module, batch_size: int, image_size: int, lr: float = 1e-4,
                          seed: int = 0, device="cpu") -> dict:
    """Peak bytes of one steady-state training step of a one-logit face classifier on (B, 3, S, S) faces.

    ``device="meta"`` moves the model to PyTorch's meta device, where tensors
    have shapes and sizes but no values: every operation, forward, backward and
    Adam's, is dispatched exactly as on the CPU, so the same storages are
    counted, in milliseconds instead of minutes (a test checks both agree).

    Returns MiB figures: peak (float32), peak_mixed_precision (converted, see
    :func:`mixed_precision_estimate`), weights, buffers, gradients,
    optimizer_state, input and activations (peak minus what was alive before
    the step: saved activations, temporaries and any gradient already made).
    """
    from helpers.models_torch import train_mode

    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch_size, 3, image_size, image_size, generator=generator).to(device)
    y = (torch.rand(batch_size, generator=generator) > 0.5).float().to(device)
    model.to(device)
    train_mode(model)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    criterion = torch.nn.BCEWithLogitsLoss()
    _create_optimizer_state(model, optimizer)  # the measured step then looks like any step after the first

    state = model_state_bytes(model)
    optimizer_tensors = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    meter = LiveTensorMeter()
    before = meter.register(list(model.parameters()) + list(model.buffers()) + optimizer_tensors + [x, y]
                            + [p.grad for p in model.parameters() if p.grad is not None])
    with meter:
        _training_step(model, optimizer, criterion, x, y)
    gradients = tensor_bytes(p.grad for p in model.parameters() if p.grad is not None)
    optimizer_bytes = tensor_bytes(optimizer_tensors)
    kept = state["weights"] + state["buffers"] + optimizer_bytes + tensor_bytes([x, y])
    model.zero_grad(set_to_none=True)
    return {"kind": "training step", "batch_size": batch_size, "image_size": image_size, "device": str(device),
            "peak_mib": _mib(meter.peak_bytes),
            "peak_mixed_precision_mib": _mib(mixed_precision_estimate(meter.peak_bytes, kept, state["trainable"])),
            "weights_mib": _mib(state["weights"]), "trainable_weights_mib": _mib(state["trainable"]),
            "buffers_mib": _mib(state["buffers"]), "gradients_mib": _mib(gradients),
            "optimizer_state_mib": _mib(optimizer_bytes), "input_mib": _mib(tensor_bytes([x, y])),
            "activations_mib": _mib(meter.peak_bytes - before), "weights_bytes": state["weights"],
            "optimizer_state_bytes": optimizer_bytes, "peak_bytes": meter.peak_bytes}


def measure_inference(model: torch.nn.Module, batch_size: int, image_size: int, seed: int = 0,
                      device="cpu") -> dict:
    """Peak bytes of one inference batch (eval mode, no gradients), float32 and converted to autocast."""
    x = torch.rand(batch_size, 3, image_size, image_size, generator=torch.Generator().manual_seed(seed)).to(device)
    model.to(device)
    model.eval()
    state = model_state_bytes(model)
    meter = LiveTensorMeter()
    before = meter.register(list(model.parameters()) + list(model.buffers()) + [x])
    with meter, torch.no_grad():
        torch.sigmoid(model(x).float())
    kept = state["weights"] + state["buffers"] + tensor_bytes([x])
    return {"kind": "inference batch", "batch_size": batch_size, "image_size": image_size, "device": str(device),
            "peak_mib": _mib(meter.peak_bytes),
            "peak_mixed_precision_mib": _mib(mixed_precision_estimate(meter.peak_bytes, kept, state["trainable"])),
            "weights_mib": _mib(state["weights"]), "buffers_mib": _mib(state["buffers"]),
            "input_mib": _mib(tensor_bytes([x])), "activations_mib": _mib(meter.peak_bytes - before),
            "peak_bytes": meter.peak_bytes}


def measure_tta(model: torch.nn.Module, batch_size: int, image_size: int, transforms) -> dict:
    """Peak bytes of one batch through ``helpers.tta.tta_probs`` (float32, as notebook 06 runs it)."""
    from helpers import tta

    faces = torch.rand(batch_size, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    meter = LiveTensorMeter()
    before = meter.register(list(model.parameters()) + list(model.buffers()) + [faces])
    with meter:
        tta.tta_probs(model, faces, "cpu", transforms=transforms, batch_size=batch_size)
    return {"kind": f"TTA batch ({len(transforms)} transforms)", "batch_size": batch_size, "image_size": image_size,
            "peak_mib": _mib(meter.peak_bytes), "weights_mib": _mib(model_state_bytes(model)["weights"]),
            "activations_mib": _mib(meter.peak_bytes - before), "peak_bytes": meter.peak_bytes}


def measure_gradcam(model: torch.nn.Module, batch_size: int, image_size: int) -> dict:
    """Peak bytes of one Grad-CAM batch through ``helpers.explain.gradcam_torch`` (float32, with gradients)."""
    from helpers import explain

    faces = torch.rand(batch_size, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    meter = LiveTensorMeter()
    before = meter.register(list(model.parameters()) + list(model.buffers()) + [faces])
    with meter:
        explain.gradcam_torch(model, faces, batch_size=batch_size)
    return {"kind": "Grad-CAM batch", "batch_size": batch_size, "image_size": image_size,
            "peak_mib": _mib(meter.peak_bytes), "weights_mib": _mib(model_state_bytes(model)["weights"]),
            "activations_mib": _mib(meter.peak_bytes - before), "peak_bytes": meter.peak_bytes}


def detector_frames(n_frames: int, width: int, height: int, seed: int = 3) -> np.ndarray:
    """``n_frames`` frames of a DFDC-like clip of the built-in sample's kind (a face, a scene, noise)."""
    from helpers import sample_data

    identity = sample_data.make_identity(0, seed)
    plan = sample_data.plan_clip(seed, width, height, seconds=n_frames / 30 + 0.1, fps=30, identity=identity)
    frames = [frame for frame, _ in sample_data.render_frames(plan)][:n_frames]
    return np.stack(frames)


def measure_detector(n_frames: int, batch_size: int, detect_size, width: int = 1920, height: int = 1080,
                     crop_size: int = 256) -> dict:
    """Peak bytes of MTCNN on one batch of frames, as it runs on a GPU.

    ``helpers.face_detector.FaceDetector`` resizes with OpenCV on a CPU and with torch
    operations (``interpolate``, ``roi_align``) on a GPU; the GPU path is used
    here. The uint8 frames copied to the GPU are counted as the input.
    """
    from helpers import face_detector

    frames = detector_frames(n_frames, width, height)
    detector = face_detector.FaceDetector(device="cpu", crop_size=crop_size, batch_size=batch_size, detect_size=detect_size)
    detector.opencv_resize = False  # the GPU's way
    scaled = np.stack([detector.scaled_copy(frame)[0] for frame in frames[:batch_size]])
    weights = tensor_bytes(detector.mtcnn.parameters())
    meter = LiveTensorMeter()
    meter.register(list(detector.mtcnn.parameters()) + list(detector.mtcnn.buffers()))
    with meter:
        found = detector._cascade(scaled)
    peak = meter.peak_bytes + scaled.nbytes  # + the uint8 batch as copied to the GPU
    return {"kind": "face detection batch", "batch_size": batch_size, "frame": f"{width}x{height}",
            "detect_size": detect_size, "detected_at": f"{scaled.shape[2]}x{scaled.shape[1]}",
            "faces_found": int(sum(len(boxes) for boxes, _, _ in found)),
            "peak_mib": _mib(peak), "weights_mib": _mib(weights), "input_mib": _mib(scaled.nbytes),
            "peak_bytes": peak}


# --------------------------------------------------------------------------- Keras (torch backend, own process)
#: Frame-encoder calls on more frames than this are extrapolated (see keras_worker), to spare the CPU's RAM.
MAX_MEASURED_FRAMES = 8
#: A fit step or predict batch on more faces than this (videos x seq_len) is measured on 1 and 2 videos and
#: extrapolated along that straight line (every activation grows with the number of videos).
MAX_MEASURED_VIDEO_FRAMES = 40


def keras_worker(settings: dict) -> dict:
    """Notebook 03's ResNet50 + LSTM on Keras' torch backend: fit step, predict batch, feature encoding, Grad-CAM.

    Runs in a process started with ``KERAS_BACKEND=torch`` (see :func:`measure_keras`).
    ``encode_sequences`` hands the frame encoder at most
    ``models_keras.ENCODE_FACES_PER_CALL`` faces at once. A Keras functional model keeps every
    layer's output until its call returns, so that figure grows by the sum of
    ResNet50's layer outputs per frame; it is measured at 4 and 8 frames and
    extrapolated along that straight line when there are more frames.
    """
    import keras

    from helpers import explain, models_keras

    assert keras.backend.backend() == "torch", "start this with KERAS_BACKEND=torch"
    seq_len, size, batch = settings["seq_len"], settings["image_size"], settings["batch_size"]
    keras.utils.set_random_seed(0)
    model = models_keras.build_resnet_lstm(seq_len, size, pretrained=False, lstm_units=settings["lstm_units"],
                                           dense_units=settings["dense_units"])
    models_keras.compile_model(model, settings.get("learning_rate", 1e-3))
    model.optimizer.build(model.trainable_variables)  # Adam's state, as after the first step
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((batch, seq_len, size, size, 3), dtype=np.float32))
    y = torch.from_numpy((rng.random((batch, 1)) > 0.5).astype(np.float32))

    weights = [v.value for v in model.weights]
    optimizer_tensors = [v.value for v in model.optimizer.variables]
    out = {"weights_mib": _mib(tensor_bytes(weights)),
           "trainable_weights_mib": _mib(tensor_bytes(v.value for v in model.trainable_weights)),
           "optimizer_state_mib": _mib(tensor_bytes(optimizer_tensors)), "input_mib": _mib(tensor_bytes([x, y])),
           "parameters": models_keras.count_parameters(model)}

    def measured(call, registered, kind, extra_bytes=0, **info):
        meter = LiveTensorMeter()
        before = meter.register(registered)
        with meter:
            call()
        peak = meter.peak_bytes + extra_bytes
        return {"kind": kind, **info, "peak_mib": _mib(peak), "activations_mib": _mib(meter.peak_bytes - before),
                "peak_bytes": peak}

    def by_videos(call, registered_for, kind):
        """Measured on the whole batch, or on 1 and 2 videos and extrapolated when that is too big for RAM."""
        shape = {"batch_size": batch, "seq_len": seq_len, "image_size": size}
        if batch * seq_len <= MAX_MEASURED_VIDEO_FRAMES or batch <= 2:
            return {**measured(lambda: call(batch), registered_for(batch), kind, **shape), "how": "measured"}
        points = {b: measured(lambda: call(b), registered_for(b), kind)["peak_bytes"] for b in (1, 2)}
        peak = points[2] + (points[2] - points[1]) * (batch - 2)
        return {"kind": kind, **shape, "how": "extrapolated from 1 and 2 videos",
                "measured_mib": {str(b): _mib(p) for b, p in points.items()}, "peak_mib": _mib(peak),
                "peak_bytes": peak}

    part = {b: (x[:b].clone(), y[:b].clone()) for b in {1, 2, batch}}  # own storages, registered as inputs
    model.train_on_batch(*part[1])  # Keras builds its train and predict functions and metrics on the first call;
    model.predict_on_batch(part[1][0])  # measured are the steps after that, as most of an epoch is
    out["training"] = by_videos(lambda b: model.train_on_batch(*part[b]),
                                lambda b: weights + optimizer_tensors + list(part[b]), "training step (fit)")
    out["inference"] = by_videos(lambda b: model.predict_on_batch(part[b][0]), lambda b: weights + [part[b][0]],
                                 "inference batch")

    encoder = models_keras.frame_encoder_of(model)
    frames_needed = min(batch * seq_len, models_keras.ENCODE_FACES_PER_CALL)  # encode_sequences' calls
    points = {}
    for n in sorted({min(4, frames_needed), min(MAX_MEASURED_FRAMES, frames_needed)}):
        faces = x.reshape((-1, size, size, 3))[:n].numpy().copy()  # as encode_sequences passes them
        points[n] = measured(lambda: models_keras.predict_batch(encoder, faces), weights, "frame encoder call",
                             extra_bytes=faces.nbytes, frames=n)["peak_bytes"]
    if frames_needed in points:
        peak, how = points[frames_needed], "measured"
    else:
        (n1, p1), (n2, p2) = sorted(points.items())
        peak, how = p2 + (p2 - p1) / (n2 - n1) * (frames_needed - n2), f"extrapolated from {n1} and {n2} frames"
    out["encode"] = {"kind": "encode_sequences, one batch", "frames": frames_needed, "how": how,
                     "measured_mib": {str(n): _mib(b) for n, b in points.items()},
                     "per_frame_mib": _mib((points[max(points)] - points[min(points)]) / max(1, max(points) - min(points))),
                     "peak_mib": _mib(peak), "peak_bytes": peak}

    videos = min(settings.get("gradcam_videos", 2), batch)  # notebook 06 explains one REAL and one FAKE video
    clips = x[:videos].numpy()
    out["gradcam"] = measured(lambda: explain.gradcam_keras(model, clips), weights, "Grad-CAM (videos x frames)",
                              extra_bytes=clips.nbytes, videos=videos, seq_len=seq_len, image_size=size)
    return out


def measure_keras(settings: list[dict], timeout: int = 7200) -> list[dict]:
    """Run :func:`keras_worker` on each of ``settings`` in one fresh process on Keras' torch backend.

    One process for all of them: importing Keras and building ResNet50 is most of the time.
    Returns their figures, in order.
    """
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(Path(__file__).resolve()), "--keras-worker", json.dumps(list(settings))]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"The Keras measurement failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the notebooks
MODEL_NAMES = {"inception_resnet_v1": "InceptionResnetV1", "custom_cnn": "Custom CNN", "meso4": "Meso-4",
               "mesoinception4": "MesoInception-4", "densenet121": "DenseNet121", "mtcnn": "MTCNN",
               "keras": "ResNet50 + LSTM (Keras, torch backend)"}


class _Models:
    """Builds each PyTorch model once (random weights: memory does not depend on their values)."""

    def __init__(self):
        self._built: dict = {}

    def get(self, name: str, image_size: int, device="cpu"):
        """The model ``name`` for faces of ``image_size`` px, its weights on ``device`` ("meta": sizes only)."""
        from helpers import model_registry

        key = (name, image_size if name in ("meso4", "mesoinception4") else None, str(device))
        if key not in self._built:
            torch.manual_seed(0)
            model = model_registry.build_model(name, pretrained=False, image_size=image_size)
            self._built[key] = model.to(device)
        return self._built[key]


def _row(notebook: str, model: str, what: str, settings: str, figures: dict, mixed_precision: bool) -> dict:
    estimate = figures["peak_mixed_precision_mib"] if mixed_precision else figures["peak_mib"]
    return {"notebook": notebook, "model": MODEL_NAMES[model], "what": what, "settings": settings,
            "mixed_precision": mixed_precision, "estimate_mib": estimate, "figures": figures}


def estimate_course(profile: str = "full", notebooks=None, progress=print, device="meta") -> list[dict]:
    """Measure every notebook's models at the profile's settings; one row per (notebook, model, step).

    ``device`` runs the PyTorch classifiers' training steps and inference
    batches on "meta" (sizes only, fast; see :func:`measure_training_step`) or
    "cpu" (real numbers, slow). Face detection, TTA, Grad-CAM and Keras need
    values (thresholds, JPEG, NumPy) and always run on the CPU.
    """
    from helpers import face_detector, faces

    wanted = set(notebooks or ["02", "03", "04", "05", "06", "07"])
    models, cache, rows = _Models(), {}, []

    def once(key, measure):
        if key not in cache:
            progress(f"  measuring {key} ...")
            started = time.perf_counter()
            cache[key] = measure()
            cache[key]["cpu_seconds"] = round(time.perf_counter() - started, 1)
            progress(f"    peak {cache[key]['peak_mib'] if 'peak_mib' in cache[key] else '-'} MiB "
                     f"(float32), {cache[key]['cpu_seconds']} s")
        return cache[key]

    def train(name, size, batch):
        return once((name, "train", size, batch),
                    lambda: measure_training_step(models.get(name, size, device), batch, size, device=device))

    def infer(name, size, batch):
        return once((name, "infer", size, batch),
                    lambda: measure_inference(models.get(name, size, device), batch, size, device=device))

    nb03 = notebook_settings("03_keras_resnet_lstm", profile)
    nb06 = notebook_settings("06_tta_gradcam", profile)
    same_as_03 = all(nb03[a] == nb06[b] for a, b in (("seq_len", "keras_seq_len"), ("image_size", "keras_image_size"),
                                                     ("lstm_units", "keras_lstm_units"),
                                                     ("dense_units", "keras_dense_units")))
    keras_06 = nb03 if same_as_03 else {  # notebook 06 trains its own Keras model when 03's settings differ
        "seq_len": nb06["keras_seq_len"], "image_size": nb06["keras_image_size"], "batch_size": 4,
        "lstm_units": nb06["keras_lstm_units"], "dense_units": nb06["keras_dense_units"]}
    keras_keys = ("seq_len", "image_size", "batch_size", "lstm_units", "dense_units")

    def keras_key(s):
        return ("keras",) + tuple(s[k] for k in keras_keys)

    keras_needed = {}  # every Keras measurement at once, in one process (see measure_keras)
    if "03" in wanted:
        keras_needed[keras_key(nb03)] = nb03
    if "06" in wanted:
        keras_needed[keras_key(keras_06)] = keras_06
    if keras_needed:
        progress(f"  measuring {', '.join(map(str, keras_needed))} (Keras on its torch backend) ...")
        started = time.perf_counter()
        figures = measure_keras([{k: s[k] for k in keras_keys} for s in keras_needed.values()])
        for key, f in zip(keras_needed, figures):
            cache[key] = {**f, "cpu_seconds": round((time.perf_counter() - started) / len(figures), 1)}
        progress(f"    {time.perf_counter() - started:.1f} s")

    def keras(s):
        return cache[keras_key(s)]

    gpu_batch = face_detector.AUTO_BATCH["cuda"]  # batch_size None = this many frames per MTCNN pass on a GPU
    detect_size = faces.COMMON_DEFAULTS["detect_size"]
    if "02" in wanted:
        s = notebook_settings("02_faces", profile)
        frames = min(s["batch_size"] or gpu_batch, s["frames_per_video"])
        fig = once(("mtcnn", detect_size, frames), lambda: measure_detector(frames, frames, detect_size,
                                                                           crop_size=s["crop_size"]))
        rows.append(_row("02_faces", "mtcnn", "extract_faces: MTCNN on one batch of frames",
                         f"{frames} frames of 1920x1080 per pass, detect_size {detect_size}", fig, False))
        frames = min(s.get("full_resolution_batch") or gpu_batch, s["frames_per_video"])  # the comparison's pass
        fig = once(("mtcnn", None, frames), lambda: measure_detector(frames, frames, None, crop_size=s["crop_size"]))
        rows.append(_row("02_faces", "mtcnn", "full-resolution comparison (detect_size=None)",
                         f"{frames} frames of 1920x1080 per pass", fig, False))
    if "03" in wanted:
        s = notebook_settings("03_keras_resnet_lstm", profile)
        k = keras(s)
        shape = f"{s['batch_size']} videos x {s['seq_len']} faces of {s['image_size']} px, LSTM {s['lstm_units']}"
        common = {"weights_mib": k["weights_mib"], "optimizer_state_mib": k["optimizer_state_mib"]}
        rows.append(_row("03_keras_resnet_lstm", "keras", f"fit, one step (train_mode {s['train_mode']})", shape,
                         {**k["training"], **common}, False))
        rows.append(_row("03_keras_resnet_lstm", "keras", "predict, one batch", shape, {**k["inference"], **common},
                         False))
        rows.append(_row("03_keras_resnet_lstm", "keras", "encode_sequences, one batch (ResNet50 features)",
                         f"{k['encode']['frames']} faces in one encoder call ({k['encode']['how']})",
                         {**k["encode"], "weights_mib": k["weights_mib"]}, False))
    if "04" in wanted:
        s = notebook_settings("04_inception_resnet", profile)
        size, batch = s["image_size"], s["batch_size"]
        rows.append(_row("04_inception_resnet", "inception_resnet_v1", "training step", f"batch {batch}, {size} px",
                         train("inception_resnet_v1", size, batch), True))
        rows.append(_row("04_inception_resnet", "inception_resnet_v1", "score_faces, one batch",
                         f"batch 64, {size} px", infer("inception_resnet_v1", size, 64), True))
    if "05" in wanted:
        s = notebook_settings("05_model_comparison", profile)
        batch = s["batch_size"]
        sizes = {"inception_resnet_v1": s["inception_image_size"]}
        sizes.update({name: s["image_size_per_model"].get(name, s["image_size"]) for name in s["models"]})
        for name, size in sizes.items():
            rows.append(_row("05_model_comparison", name, "training step", f"batch {batch}, {size} px",
                             train(name, size, batch), True))
            rows.append(_row("05_model_comparison", name, "score_faces, one batch", f"batch {2 * batch}, {size} px",
                             infer(name, size, 2 * batch), True))
    if "06" in wanted:
        s = notebook_settings("06_tta_gradcam", profile)
        nb04, nb05 = notebook_settings("04_inception_resnet", profile), notebook_settings("05_model_comparison", profile)
        batch = s["batch_size"]
        for name in s["robustness_models"]:  # the checkpoints of notebooks 04 and 05, at their face sizes
            size = nb04["image_size"] if name == "inception_resnet_v1" else nb05["image_size_per_model"].get(
                name, nb05["image_size"])
            fig = once((name, "tta", size, batch), lambda: measure_tta(models.get(name, size), batch, size, s["tta"]))
            rows.append(_row("06_tta_gradcam", name, f"tta_probs, {len(s['tta'])} transforms",
                             f"batch {batch}, {size} px", fig, False))
        cam_size = max(nb04["image_size"], s["min_gradcam_size"])
        fig = once(("inception_resnet_v1", "gradcam", cam_size, batch),
                   lambda: measure_gradcam(models.get("inception_resnet_v1", cam_size), batch, cam_size))
        rows.append(_row("06_tta_gradcam", "inception_resnet_v1", "gradcam_torch, one batch",
                         f"batch {batch}, {cam_size} px", fig, False))
        k = keras(keras_06)
        rows.append(_row("06_tta_gradcam", "keras", "gradcam_keras (2 videos in one call)",
                         f"2 videos x {s['keras_seq_len']} faces of {s['keras_image_size']} px",
                         {**k["gradcam"], "weights_mib": k["weights_mib"]}, False))
        q_size, q_batch = s["quick_image_size"], s["quick_batch_size"]
        rows.append(_row("06_tta_gradcam", "inception_resnet_v1", "quick training step (only without a checkpoint)",
                         f"batch {q_batch}, {q_size} px", train("inception_resnet_v1", q_size, q_batch), True))
    if "07" in wanted:
        s = notebook_settings("07_demo", profile)
        size = notebook_settings("04_inception_resnet", profile)["image_size"]  # the checkpoint's face size
        frames = min(s["n_frames"], gpu_batch)
        fig = once(("mtcnn", detect_size, frames), lambda: measure_detector(frames, frames, detect_size,
                                                                           crop_size=size))
        rows.append(_row("07_demo", "mtcnn", "predict_video: detection, one batch",
                         f"{frames} frames of 1920x1080, detect_size {detect_size}", fig, False))
        faces_per_batch = min(s["n_frames"], 32)  # Predictor.score_faces: batches of 32 faces
        rows.append(_row("07_demo", "inception_resnet_v1", "predict_video: score_faces, one batch",
                         f"batch {faces_per_batch}, {size} px", infer("inception_resnet_v1", size, faces_per_batch),
                         True))
        fig = once(("inception_resnet_v1", "gradcam", size, 1),
                   lambda: measure_gradcam(models.get("inception_resnet_v1", size), 1, size))
        rows.append(_row("07_demo", "inception_resnet_v1", "Grad-CAM of the most suspicious face",
                         f"1 face, {size} px", fig, False))
    return rows


#: Models a notebook keeps on the GPU at once (they all stay referenced), beyond the one in its largest step.
RESIDENT = {
    "04_inception_resnet": ("a second InceptionResnetV1: the model of the 'build' cell stays alive while the "
                            "freeze experiment trains", {"InceptionResnetV1": 1}),
    "06_tta_gradcam": ("every model the notebook loads stays in its `models` dict, and the Keras model",
                       "all"),
    "07_demo": ("the predictor holds the detector and the classifier", "all"),
}


def notebook_totals(rows: list[dict]) -> list[dict]:
    """Per notebook: its largest step, plus weights of other models it holds, plus the allowance, against 4 GiB."""
    totals = []
    for notebook in dict.fromkeys(r["notebook"] for r in rows):
        own = [r for r in rows if r["notebook"] == notebook]
        largest = max(own, key=lambda r: r["estimate_mib"])
        weights = {r["model"]: r["figures"].get("weights_mib") or 0.0 for r in own}
        why, which = RESIDENT.get(notebook, ("", {}))
        if which == "all":
            extra = sum(w for model, w in weights.items() if model != largest["model"])
        else:
            extra = sum(weights.get(model, 0.0) * count for model, count in which.items())
        estimate = largest["estimate_mib"] + extra
        allowance = ALLOWANCE_FIXED_MIB + ALLOWANCE_SHARE * estimate
        totals.append({"notebook": notebook, "largest": f"{largest['model']}: {largest['what']}",
                       "largest_mib": largest["estimate_mib"], "resident_mib": round(extra, 1),
                       "resident_why": why if extra else "", "estimate_mib": round(estimate, 1),
                       "allowance_mib": round(allowance, 1), "margin_mib": round(GPU_MIB - estimate - allowance, 1),
                       "fits": estimate + allowance < GPU_MIB})
    return totals


# --------------------------------------------------------------------------- output
def hardware() -> dict:
    from helpers.results import cpu_model

    model = cpu_model()
    return {"cpu": model, "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}


def markdown_tables(rows: list[dict], totals: list[dict]) -> str:
    lines = ["| notebook | model | what | settings | precision | estimated peak MiB (CPU estimate) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        precision = "float16 autocast (converted)" if r["mixed_precision"] else "float32"
        lines.append(f"| {r['notebook']} | {r['model']} | {r['what']} | {r['settings']} | {precision} | "
                     f"{r['estimate_mib']:.0f} |")
    lines += ["", "| notebook | largest step | + resident weights | estimate MiB | allowance MiB | "
              "margin to 4096 MiB | left out |", "|---|---|---|---|---|---|---|"]
    for t in totals:
        lines.append(f"| {t['notebook']} | {t['largest']} ({t['largest_mib']:.0f}) | {t['resident_mib']:.0f} | "
                     f"{t['estimate_mib']:.0f} | {t['allowance_mib']:.0f} | {t['margin_mib']:.0f} | {LEFT_OUT} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="full", choices=config.PROFILES,
                        help="whose settings to measure (default full; smoke is a quick check)")
    parser.add_argument("--notebooks", nargs="*", default=None, help="e.g. 04 05 (default: 02 to 07)")
    parser.add_argument("--output", default=None, help="JSON file (default: results/memory_estimate[_PROFILE].json)")
    parser.add_argument("--device", default="meta", choices=["meta", "cpu"],
                        help="where the classifiers' training and inference steps run: meta (sizes only, "
                             "seconds; default) or cpu (the same count on real tensors, minutes)")
    parser.add_argument("--keras-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.keras_worker is not None:
        print(json.dumps([keras_worker(settings) for settings in json.loads(args.keras_worker)]))
        return 0

    print(f"CPU estimate of GPU memory, profile {args.profile!r} (method: tools/memory_estimate.py docstring)")
    started = time.perf_counter()
    load_before = os.getloadavg()
    rows = estimate_course(args.profile, args.notebooks, device=args.device)
    totals = notebook_totals(rows)
    record = {"what": "CPU estimate of peak GPU memory (live tensor bytes), not a GPU measurement",
              "date": datetime.date.today().isoformat(), "hardware": hardware(), "profile": args.profile,
              "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
              "allowance": {"fixed_mib": ALLOWANCE_FIXED_MIB, "share_of_estimate": ALLOWANCE_SHARE,
                            "covers": LEFT_OUT},
              "classifier_steps_on": args.device, "gpu_mib": GPU_MIB, "rows": rows, "notebooks": totals,
              "seconds": round(time.perf_counter() - started, 1)}
    suffix = "" if args.profile == "full" else f"_{args.profile}"
    output = Path(args.output) if args.output else config.results_dir() / f"memory_estimate{suffix}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2))
    print()
    print(markdown_tables(rows, totals))
    print(f"\nAllowance: {ALLOWANCE_FIXED_MIB} MiB + {ALLOWANCE_SHARE:.0%} of the estimate ({LEFT_OUT}).")
    print(f"Every figure is a CPU estimate ({record['hardware']['cpu']}, torch {torch.__version__}, "
          f"{record['date']}); written to {output} in {record['seconds']:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
