"""Saving figures and recording what a notebook measured.

Every notebook ends by writing ``results/NN_name.json``; the tests and the
course summary read those files, so numbers in the README can be traced to a run.
"""
from __future__ import annotations

import json
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import config
from .safe_io import atomic_write_text


def save_fig(fig, name: str, dpi: int = 120) -> Path:
    """Save a Matplotlib figure as ``figures/<name>.png`` and return the path."""
    path = config.figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def plain(value, strict: bool = False, what: str = "The value"):
    """NumPy / pandas / Path values -> JSON-friendly Python values; NaN and infinities -> None.

    Dicts (keys made strings), lists and tuples are converted item by item,
    arrays and pandas objects through their lists / dicts. Anything else is
    returned as it is, or with ``strict=True`` refused with a TypeError naming
    ``what`` (checkpoint metadata must be plain so ``weights_only=True`` can
    read it back). The one sanitiser for results files and checkpoints alike.
    """
    if isinstance(value, dict):
        return {str(k): plain(v, strict, what) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, strict, what) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return plain(value.tolist(), strict, what)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "to_dict"):
        return plain(value.to_dict(), strict, what)
    if strict:
        raise TypeError(f"{what} must be a number, string, list or dict, not {type(value).__name__}.")
    return value


def cpu_model() -> str:
    """The CPU's name (Linux: /proc/cpuinfo's "model name"), for benchmark and estimate headers."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def record_results(notebook: str, values: dict) -> Path:
    """Merge ``values`` into ``results/<notebook>.json`` (created if missing)."""
    path = config.results_dir() / f"{notebook}.json"
    data = load_results(notebook) if path.exists() else {}
    data.update(plain(values))
    data["_recorded"] = {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))


def load_results(notebook: str) -> dict:
    """Read ``results/<notebook>.json``; a clear error if that notebook has not been run."""
    path = config.results_dir() / f"{notebook}.json"
    if not path.exists():
        raise FileNotFoundError(f"No results for {notebook!r} at {path}: run notebooks/{notebook}.ipynb first.")
    return json.loads(path.read_text())


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False
