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


def save_fig(fig, name: str, dpi: int = 120) -> Path:
    """Save a Matplotlib figure as ``figures/<name>.png`` and return the path."""
    path = config.figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _plain(value):
    """Turn NumPy / pandas / Path values into JSON-friendly Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
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
    data.update(_plain(values))
    data["_recorded"] = {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    return path


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
