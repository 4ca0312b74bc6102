"""Where the notebook runs: your machine, Google Colab or Kaggle Notebooks, and what each needs.

On your own machine ``make env`` has installed everything and nothing here
does anything. A hosted notebook starts from that platform's image instead:

* **Colab** has PyTorch, TensorFlow, NumPy and friends but not the course: the
  first code cell of a notebook (:func:`bootstrap_cell_source`) clones this
  repository when ``helpers`` cannot be imported, then
  :func:`prepare_notebook_environment` pip-installs the pinned packages the
  image lacks. Packages the image already has in a version the course works
  with (:data:`HOSTED_KEEP_IF_AT_LEAST`: torch, TensorFlow, NumPy...) are
  kept, because replacing a package that is already imported needs a restart
  and Colab's torch is built for its GPU.
* **Kaggle Notebooks** look the same, and when the competition's data is
  attached (``/kaggle/input/deepfake-detection-challenge``) its
  ``train_sample_videos`` folder is used where it is (:func:`kaggle_dfdc_videos`):
  read-only, never copied, no download.

On any platform, with ``DEEPFAKE_CACHE`` set (a classroom cache made by
``make prefetch``), the same call verifies the cache and links its files.

The repository that Colab clones and that the README's "Open in Colab" badges
point to is :data:`COURSE_REPOSITORY`, the one place to change it
(``python tools/colab_links.py --write`` then updates the README and the
notebooks' first cells).
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .config import KAGGLE_COMPETITION

# The GitHub repository of the course, as "owner/name". A placeholder until the course is
# published: change it here and run `python tools/colab_links.py --write`.
COURSE_REPOSITORY = "your-github-user/deepfake-detection-course"
COURSE_BRANCH = "main"

KAGGLE_ROOT = Path("/kaggle")
CLONE_NAME = "deepfake-detection-course"   # the folder a hosted notebook clones the course into
HOSTED_WORK_DIRS = {"colab": "/content", "kaggle": "/kaggle/working"}

# On a hosted notebook, these are never installed: the platform has its own (replacing its
# Jupyter kernel breaks the notebook) or the course does not need them there (tests, the book,
# the Gradio app that `make demo` serves).
HOSTED_SKIP = {"jupyter", "ipykernel", "ipywidgets", "papermill", "nbformat", "pytest", "pytest-timeout",
               "playwright", "gradio", "sphinx", "myst-nb", "sphinx-book-theme"}
# Kept in the platform's version when it is at least this (the APIs the course's code uses:
# torch 2 with torchvision's weights enums, Keras 3 with keras.ops, NumPy and pandas 2 era);
# an older one is replaced by the course's pin.
HOSTED_KEEP_IF_AT_LEAST = {"torch": "2.2", "torchvision": "0.17", "tensorflow": "2.16", "keras": "3.5",
                           "numpy": "1.26", "pandas": "2.1", "pyarrow": "14", "scikit-learn": "1.3",
                           "opencv-python-headless": "4.8", "pillow": "10.0", "matplotlib": "3.8",
                           "tqdm": "4.66"}
# Another distribution that provides the same module (Colab ships opencv-python; installing the
# headless build next to it makes two conflicting copies of cv2).
ALTERNATIVES = {"opencv-python-headless": ("opencv-python", "opencv-contrib-python")}
IMPORT_NAMES = {"pillow": "PIL", "opencv-python-headless": "cv2", "scikit-learn": "sklearn",
                "facenet-pytorch": "facenet_pytorch", "grad-cam": "pytorch_grad_cam"}


# ----------------------------------------------------------------------------
# Detection
# ----------------------------------------------------------------------------

def running_in_colab(modules=None, environ=None) -> bool:
    """Colab's kernel has imported ``google.colab``; its runtime also sets ``COLAB_RELEASE_TAG``."""
    modules = sys.modules if modules is None else modules
    environ = os.environ if environ is None else environ
    return "google.colab" in modules or bool(environ.get("COLAB_RELEASE_TAG"))


def running_in_kaggle(environ=None, kaggle_root=KAGGLE_ROOT) -> bool:
    """Kaggle's kernels set ``KAGGLE_KERNEL_RUN_TYPE`` and have ``/kaggle/input`` and ``/kaggle/working``."""
    environ = os.environ if environ is None else environ
    root = Path(kaggle_root)
    return bool(environ.get("KAGGLE_KERNEL_RUN_TYPE")) or ((root / "input").is_dir() and (root / "working").is_dir())


def detect_platform(modules=None, environ=None, kaggle_root=KAGGLE_ROOT) -> str:
    """``"colab"``, ``"kaggle"`` or ``"local"``."""
    if running_in_colab(modules, environ):
        return "colab"
    if running_in_kaggle(environ, kaggle_root):
        return "kaggle"
    return "local"


def kaggle_dfdc_videos(input_root=None) -> Path | None:
    """The attached competition's ``train_sample_videos`` folder (with its ``metadata.json``), or None.

    In Kaggle Notebooks, "Add data" -> the Deepfake Detection Challenge mounts it
    read-only at ``/kaggle/input/deepfake-detection-challenge``. The course reads
    the videos there; its own metadata and crops go to the data folder.
    """
    root = Path(input_root) if input_root is not None else KAGGLE_ROOT / "input"
    videos = root / KAGGLE_COMPETITION / "train_sample_videos"
    return videos if (videos / "metadata.json").is_file() else None


# ----------------------------------------------------------------------------
# Links to the hosted notebooks
# ----------------------------------------------------------------------------

def colab_url(notebook: str, repository: str = COURSE_REPOSITORY, branch: str = COURSE_BRANCH) -> str:
    """Colab opens a notebook straight from GitHub at this address."""
    name = Path(notebook).stem
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/notebooks/{name}.ipynb"


def colab_badge(notebook: str, repository: str = COURSE_REPOSITORY, branch: str = COURSE_BRANCH) -> str:
    """The usual "Open in Colab" badge, as Markdown."""
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(notebook, repository, branch)})")


def bootstrap_cell_source(repository: str = COURSE_REPOSITORY, branch: str = COURSE_BRANCH) -> str:
    """The first code cell of every notebook: on Colab or Kaggle, fetch the course; anywhere, report the platform.

    It cannot import the helpers (they may not be there yet), so it holds the
    repository's address itself; ``tools/colab_links.py`` keeps it equal to
    :data:`COURSE_REPOSITORY`.
    """
    colab, kaggle = HOSTED_WORK_DIRS["colab"], HOSTED_WORK_DIRS["kaggle"]
    return (
        "# On Colab or Kaggle: fetch the course's helpers and packages. On your machine: nothing to do.\n"
        "import importlib.util, os, subprocess, sys\n"
        "\n"
        "if importlib.util.find_spec(\"helpers\") is None:\n"
        "    if \"google.colab\" in sys.modules or os.path.isdir(\"/kaggle/working\"):  # a hosted notebook\n"
        f"        work = \"{colab}\" if \"google.colab\" in sys.modules else \"{kaggle}\"\n"
        f"        COURSE = os.path.join(work, \"{CLONE_NAME}\")\n"
        "        if not os.path.isdir(COURSE):\n"
        f"            subprocess.run([\"git\", \"clone\", \"--depth\", \"1\", \"--branch\", \"{branch}\",\n"
        f"                            \"https://github.com/{repository}.git\", COURSE], check=True)\n"
        "    else:  # a clone of the course without `make env`: the helpers are one folder up\n"
        "        COURSE = os.path.abspath(\"..\")\n"
        "    sys.path.insert(0, COURSE)\n"
        "from helpers import environment\n"
        "\n"
        "platform_info = environment.prepare_notebook_environment()"
    )


# ----------------------------------------------------------------------------
# What to install on a hosted notebook
# ----------------------------------------------------------------------------

def _pin_lines(requirements=None):
    """``(distribution, extras, version)`` of each ``name[extras]==version`` line (names lower-case)."""
    path = Path(requirements) if requirements is not None else config.REPO_ROOT / "requirements.txt"
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            yield match.group(1).lower().replace("_", "-"), match.group(2) or "", match.group(3)


def read_pins(requirements=None) -> dict[str, str]:
    """``{distribution: version}`` from a requirements file's ``name==version`` lines (names lower-case)."""
    return {name: version for name, _, version in _pin_lines(requirements)}


def read_extras(requirements=None) -> dict[str, str]:
    """``{distribution: "[extras]"}`` for the pins that ask for extras (``ray[data]``)."""
    return {name: extras for name, extras, _ in _pin_lines(requirements) if extras}


def installed_versions(names) -> dict[str, str | None]:
    """Installed version of each distribution (and of its :data:`ALTERNATIVES`), None where absent."""
    found = {}
    for name in set(names) | {alt for n in names for alt in ALTERNATIVES.get(n, ())}:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _version_tuple(text: str) -> tuple:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text).release
    except InvalidVersion:
        return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


@dataclass
class InstallPlan:
    """What a hosted notebook gets: ``install`` (pinned specs), ``kept`` (name -> why), ``restart``."""

    install: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    restart: list[str] = field(default_factory=list)   # already imported, so a restart is needed after

    def commands(self, python: str | None = None) -> list[list[str]]:
        """The pip command(s) that carry the plan out (none when nothing is missing)."""
        if not self.install:
            return []
        return [[python or sys.executable, "-m", "pip", "install", "--quiet", *self.install]]


def hosted_install_plan(pins: dict[str, str], installed: dict[str, str | None],
                        imported: set[str] | None = None, extras: dict[str, str] | None = None) -> InstallPlan:
    """Decide, package by package, whether a hosted notebook keeps its own version or gets the pin.

    ``installed`` maps distributions to the version present (None = absent);
    ``imported`` holds the module names already imported in the kernel;
    ``extras`` the extras a pin asks for (``{"ray": "[data]"}``), kept in the install line.
    """
    imported = set(sys.modules) if imported is None else set(imported)
    plan = InstallPlan()
    for name, pinned in pins.items():
        if name in HOSTED_SKIP:
            continue
        present = installed.get(name)
        source = name
        if present is None:
            for alternative in ALTERNATIVES.get(name, ()):
                if installed.get(alternative):
                    present, source = installed[alternative], alternative
                    break
        if present == pinned:
            plan.kept[name] = f"{present} (the pinned version)"
            continue
        floor = HOSTED_KEEP_IF_AT_LEAST.get(name)
        if present is not None and floor is not None and _version_tuple(present) >= _version_tuple(floor):
            plan.kept[name] = f"{source} {present} (the platform's; the course needs >= {floor})"
            continue
        plan.install.append(f"{name}{(extras or {}).get(name, '')}=={pinned}")
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if present is not None and module in imported:
            plan.restart.append(name)
    return plan


def _gpu_line() -> str:
    try:
        import torch
    except ImportError:
        return "PyTorch is not importable yet"
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return "no GPU"


def prepare_notebook_environment(platform: str | None = None, run=subprocess.run, requirements=None,
                                 verbose: bool = True) -> dict:
    """Report the platform; on Colab or Kaggle install what the course lacks there (see the module doc).

    ``run`` executes each pip command (``subprocess.run``; the tests pass a
    recorder). Returns what was found and done, for the notebook's results.
    """
    platform = platform or detect_platform()
    info = {"platform": platform, "installed": [], "kept": {}, "restart_needed": []}
    if platform != "local":
        pins = read_pins(requirements)  # the requirements file is read once for the pins, once for the extras
        plan = hosted_install_plan(pins, installed_versions(pins), extras=read_extras(requirements))
        for command in plan.commands():
            if verbose:
                print(f"{platform}: installing {len(plan.install)} pinned package(s): {' '.join(plan.install)}")
            run(command, check=True)
        info.update(installed=plan.install, kept=plan.kept, restart_needed=plan.restart)
        if platform == "kaggle":
            videos = kaggle_dfdc_videos()
            info["kaggle_dfdc_videos"] = str(videos) if videos else None
    info["gpu"] = _gpu_line()
    if verbose:
        _print_report(info)
    info["cache"] = _use_classroom_cache(verbose)
    return info


def _use_classroom_cache(verbose: bool) -> dict | None:
    """With ``DEEPFAKE_CACHE`` set, verify the classroom cache and link its files (see :mod:`helpers.cache`).

    A cache that cannot be used is reported, not raised: the notebook can still
    download what it needs, and the message says what is wrong with the folder.
    """
    from . import cache

    if config.cache_dir() is None:
        return None
    try:
        return cache.use_cache(verbose=verbose).as_dict()
    except cache.CacheError as error:
        if verbose:
            print(f"WARNING: {error}")
        return {"root": str(config.cache_dir()), "ok": False, "error": str(error)}


def _print_report(info: dict) -> None:
    platform = info["platform"]
    where = {"local": "your own machine", "colab": "Google Colab", "kaggle": "Kaggle Notebooks"}[platform]
    print(f"Running on {where}; {info['gpu']}.")
    if platform == "local":
        return
    if info["kept"]:
        print("Kept the platform's own:", ", ".join(sorted(info["kept"])))
    if info["restart_needed"]:
        print(f"RESTART NEEDED: {', '.join(info['restart_needed'])} changed after being imported. "
              "Restart the session (Colab: Runtime > Restart session), then run the notebook from the top.")
    if info["gpu"] == "no GPU":
        menu = "Runtime > Change runtime type > T4 GPU" if platform == "colab" else \
            "Settings > Accelerator > GPU"
        print(f"No GPU attached: the course still runs, slowly. For a GPU: {menu}.")
    if platform == "kaggle":
        videos = info.get("kaggle_dfdc_videos")
        print(f"DFDC videos attached at {videos} (used in place, read-only)." if videos else
              f"No DFDC data attached: \"Add data\" -> {KAGGLE_COMPETITION} to use DATA_SOURCE = \"kaggle\".")
