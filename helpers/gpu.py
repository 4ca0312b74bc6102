"""Device choice, one GPU memory cap for both frameworks, and peak-memory reports.

The course targets a 4 GB laptop GPU. On a bigger card, set the cap so that a
run behaves like one on the small card (and fails the same way if it would not
fit)::

    export DEEPFAKE_GPU_MEMORY_GB=4        # or GPU_MEMORY_GB = 4 in a parameters cell

PyTorch gets ``torch.cuda.set_per_process_memory_fraction``; TensorFlow gets a
logical device with that memory limit (which must be set before TensorFlow
first touches the GPU, so call :func:`setup_device` near the top of a notebook).
Without a GPU nothing is capped and the functions say so.
"""
from __future__ import annotations

import os
import sys

ENV_VARIABLE = "DEEPFAKE_GPU_MEMORY_GB"


def _memory_cap_gb(memory_gb: float | None) -> float | None:
    if memory_gb is None:
        value = os.environ.get(ENV_VARIABLE, "").strip()
        memory_gb = float(value) if value else None
    if memory_gb is not None and memory_gb <= 0:
        raise ValueError(f"GPU memory cap must be positive, got {memory_gb} GB.")
    return memory_gb


def torch_device(preference: str = "auto") -> str:
    """'cuda' if asked for or available, else 'cpu'. Raises if 'cuda' is asked for but absent."""
    import torch

    preference = (preference or "auto").lower()
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("DEVICE='cuda' was requested but PyTorch sees no GPU. Use DEVICE='auto' or 'cpu'.")
    return preference


def _cap_torch(memory_gb: float | None) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"torch_gpu": None}
    props = torch.cuda.get_device_properties(0)
    info = {"torch_gpu": props.name, "gpu_total_gib": round(props.total_memory / 2**30, 2)}
    if memory_gb is not None:
        fraction = min(1.0, memory_gb * 2**30 / props.total_memory)
        torch.cuda.set_per_process_memory_fraction(fraction, 0)
        info["torch_memory_fraction"] = round(fraction, 4)
    return info


def _cap_tensorflow(memory_gb: float | None) -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return {"tensorflow_gpu": None}
    try:
        if memory_gb is not None:
            tf.config.set_logical_device_configuration(
                gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=int(memory_gb * 1024))]
            )
        else:
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError as error:  # TensorFlow already initialised the GPU
        return {"tensorflow_gpu": gpus[0].name, "tensorflow_cap_error": str(error)}
    return {"tensorflow_gpu": gpus[0].name}


def setup_device(device: str = "auto", memory_gb: float | None = None,
                 frameworks: tuple[str, ...] = ("torch",), verbose: bool = True) -> dict:
    """Pick the device and apply the memory cap for the listed frameworks.

    ``frameworks`` may hold "torch" and/or "tensorflow". Keras on the torch
    backend is covered by "torch". Returns a dict describing what was done.
    """
    memory_gb = _memory_cap_gb(memory_gb)
    info: dict = {"memory_cap_gb": memory_gb}
    if "torch" in frameworks:
        info["device"] = torch_device(device)
        info.update(_cap_torch(memory_gb))
    if "tensorflow" in frameworks:
        info.update(_cap_tensorflow(memory_gb))
    has_gpu = bool(info.get("torch_gpu") or info.get("tensorflow_gpu"))
    info["has_gpu"] = has_gpu
    if verbose:
        if not has_gpu:
            print("No GPU found: running on the CPU, no GPU memory cap applied.")
        else:
            name = info.get("torch_gpu") or info.get("tensorflow_gpu")
            cap = f"capped at {memory_gb} GB" if memory_gb else "not capped"
            print(f"GPU: {name}; memory {cap}.")
            if "tensorflow_cap_error" in info:
                print("TensorFlow's cap could not be set (it had already started):", info["tensorflow_cap_error"])
    return info


def reset_peak_memory() -> None:
    """Start a new peak-memory measurement (PyTorch and, if loaded, TensorFlow)."""
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            tf.config.experimental.reset_memory_stats("GPU:0")


def peak_memory_mib() -> float | None:
    """Peak GPU memory (MiB) since the last reset, over the frameworks in use; None without a GPU."""
    peaks = []
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            peaks.append(torch.cuda.max_memory_allocated() / 2**20)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            peaks.append(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20)
    return round(max(peaks), 1) if peaks else None
