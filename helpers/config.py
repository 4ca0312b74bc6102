"""Where things live, and how big a run is.

Every location can be moved with an environment variable, so the tests (and a
teacher preparing a classroom) can point the course at another folder without
touching a notebook:

    DEEPFAKE_DATA_DIR      videos, face crops, model checkpoints (default: <repo>/data)
    DEEPFAKE_RESULTS_DIR   JSON files with what each notebook measured (default: <repo>/results)
    DEEPFAKE_FIGURES_DIR   figures the notebooks save (default: <repo>/figures)
    TORCH_HOME             where PyTorch caches downloaded weights (facenet vggface2, torchvision)
    KERAS_HOME             where Keras caches downloaded weights (ImageNet ResNet50, DenseNet121)

Run size is chosen by a *profile*: ``smoke`` (seconds, used by the tests),
``standard`` (the course on a laptop CPU) and ``full`` (the report's settings,
for a 4 GB GPU). Each notebook keeps its own table of profile defaults next to
its parameters cell; :func:`resolve_settings` merges that table with the
explicit overrides from the parameters cell.
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("smoke", "standard", "full")
#: The Kaggle competition whose videos the course uses (its data on Kaggle Notebooks, its archive, its rules).
KAGGLE_COMPETITION = "deepfake-detection-challenge"


def _dir_from_env(variable: str, default: Path) -> Path:
    path = Path(os.environ.get(variable) or default).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Root folder for videos, crops and checkpoints."""
    return _dir_from_env("DEEPFAKE_DATA_DIR", REPO_ROOT / "data")


def results_dir() -> Path:
    """Folder of ``NN_name.json`` files with each notebook's measured numbers."""
    return _dir_from_env("DEEPFAKE_RESULTS_DIR", REPO_ROOT / "results")


def figures_dir() -> Path:
    """Folder the notebooks save their figures into."""
    return _dir_from_env("DEEPFAKE_FIGURES_DIR", REPO_ROOT / "figures")


def models_dir() -> Path:
    """Folder for trained checkpoints (inside the data folder)."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def torch_cache_dir() -> Path:
    """Where facenet-pytorch and torchvision look for downloaded weights."""
    home = os.environ.get("TORCH_HOME") or Path("~/.cache/torch").expanduser()
    return Path(home) / "checkpoints"


def keras_cache_dir() -> Path:
    """Where Keras looks for downloaded ImageNet weights."""
    home = os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()
    return Path(home) / "models"


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}: choose one of {', '.join(PROFILES)}.")
    return profile


def apply_overrides(settings: dict, overrides: dict, what: str = "setting") -> dict:
    """A copy of ``settings`` with ``overrides`` applied; names are case-insensitive, ``None`` keeps
    the current value, and an unknown name is a ValueError listing the known ones (typos caught)."""
    merged = dict(settings)
    for name, value in overrides.items():
        key = name.lower()
        if key not in merged:
            raise ValueError(f"Unknown {what} {name!r}; known: {', '.join(sorted(merged))}.")
        if value is not None:
            merged[key] = value
    return merged


def resolve_settings(defaults: dict, profile: str, verbose: bool = True, **overrides) -> SimpleNamespace:
    """Merge a notebook's per-profile defaults with its explicit parameters.

    ``defaults`` maps each profile name to a dict of settings. An override
    whose value is ``None`` means "use the profile's value". Unknown override
    names are an error, so a typo in a parameters cell is caught at once.

    >>> s = resolve_settings({"smoke": {"epochs": 1}, "standard": {"epochs": 5}, "full": {"epochs": 20}},
    ...                      "standard", verbose=False, epochs=None)
    >>> s.epochs
    5
    """
    check_profile(profile)
    if profile not in defaults:
        raise ValueError(f"This notebook has no settings for profile {profile!r}.")
    settings = apply_overrides(defaults[profile], overrides)
    settings["profile"] = profile
    if verbose:
        width = max(len(k) for k in settings)
        print(f"Settings for profile {profile!r}:")
        for key, value in settings.items():
            print(f"  {key:<{width}}  {value}")
    return SimpleNamespace(**settings)


def cache_dir() -> Path | None:
    """The classroom cache (``make prefetch`` fills it), from ``DEEPFAKE_CACHE``; None when unset.

    Unlike the folders above it is never created here: a cache is prepared once by
    a teacher (``make prefetch``) and may be shared read-only, so a mistyped path
    must be reported (:mod:`helpers.cache` does), not silently made empty.
    """
    value = os.environ.get("DEEPFAKE_CACHE", "").strip()
    return Path(value).expanduser() if value else None
