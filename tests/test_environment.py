"""Colab and Kaggle Notebooks, simulated: detection, the install plan, the bootstrap cell, in-place Kaggle data.

Colab is simulated by a stand-in ``google.colab`` module (what its kernel has
imported) and its ``COLAB_RELEASE_TAG`` variable; Kaggle by its environment
variable and by a fake ``/kaggle`` tree in a temporary folder. The commands
checked are the real ones (git clone of the course, pip install of the pins).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import course, data_sources, environment, metadata

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))

import colab_links  # noqa: E402


# --------------------------------------------------------------------------- detection

def test_colab_is_detected_from_its_module_or_its_variable(tmp_path):
    assert environment.detect_platform(modules={"google.colab": object()}, environ={}, kaggle_root=tmp_path) == "colab"
    assert environment.detect_platform(modules={}, environ={"COLAB_RELEASE_TAG": "release-colab_2026"},
                                       kaggle_root=tmp_path) == "colab"
    assert environment.detect_platform(modules={}, environ={}, kaggle_root=tmp_path) == "local"


def test_kaggle_is_detected_from_its_variable_or_its_folders(tmp_path):
    assert environment.detect_platform(modules={}, environ={"KAGGLE_KERNEL_RUN_TYPE": "Interactive"},
                                       kaggle_root=tmp_path / "none") == "kaggle"
    kaggle = tmp_path / "kaggle"
    (kaggle / "input").mkdir(parents=True)
    assert environment.detect_platform(modules={}, environ={}, kaggle_root=kaggle) == "local"  # no working/
    (kaggle / "working").mkdir()
    assert environment.detect_platform(modules={}, environ={}, kaggle_root=kaggle) == "kaggle"


def _fake_kaggle_input(root: Path, with_videos: bool = True) -> Path:
    """/kaggle/input/deepfake-detection-challenge/train_sample_videos with a few tiny clips, read-only."""
    from helpers import sample_data

    videos = root / "input" / environment.KAGGLE_COMPETITION / "train_sample_videos"
    videos.mkdir(parents=True)
    metadata = {}
    if with_videos:
        for i, (label, original) in enumerate([("REAL", None), ("REAL", None), ("FAKE", "r0.mp4"),
                                               ("FAKE", "r1.mp4"), ("REAL", None), ("FAKE", "r4.mp4")]):
            name = f"r{i}.mp4" if label == "REAL" else f"f{i}.mp4"
            sample_data.make_clip(videos / name, width=160, height=120, seconds=0.5, fake=label == "FAKE",
                                  seed=i, fps=10)
            metadata[name] = {"label": label, "split": "train", "original": original}
        (videos / "metadata.json").write_text(json.dumps(metadata))
    return videos


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def _writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_attached_dfdc_data_is_found_only_with_its_metadata(tmp_path):
    assert environment.kaggle_dfdc_videos(tmp_path / "input") is None
    videos = _fake_kaggle_input(tmp_path, with_videos=False)
    assert environment.kaggle_dfdc_videos(tmp_path / "input") is None  # the folder, but no metadata.json
    (videos / "metadata.json").write_text("{}")
    assert environment.kaggle_dfdc_videos(tmp_path / "input") == videos
    other = tmp_path / "other" / "input" / "some-other-competition" / "train_sample_videos"
    other.mkdir(parents=True)
    (other / "metadata.json").write_text("{}")
    assert environment.kaggle_dfdc_videos(tmp_path / "other" / "input") is None


def test_attached_dfdc_videos_are_used_in_place_without_copying(tmp_path, monkeypatch):
    """What prepare_dataset("kaggle") does with the attached folder: metadata and split in the data
    folder, every video path pointing into the read-only input, nothing written there."""
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "working" / "data"))
    videos = _fake_kaggle_input(tmp_path / "kaggle")
    found = environment.kaggle_dfdc_videos(tmp_path / "kaggle" / "input")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in videos.iterdir())
    _read_only(videos)
    try:
        out = tmp_path / "working" / "data" / "kaggle" / "dfdc_train_sample"
        dataset = data_sources._prepare_from_folder(found, out, "kaggle", metadata.DEFAULT_SEED,
                                                    metadata.DEFAULT_FRACTIONS, skip_bad=False, max_videos=None)
        table = data_sources.load_dataset(dataset)
    finally:
        _writable(videos)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in videos.iterdir()) == before
    assert len(table) == 6 and set(table["label"]) == {"REAL", "FAKE"}
    assert all(Path(p).parent == videos.resolve() for p in table["path"])
    assert not list((tmp_path / "working").rglob("*.mp4")), "no video was copied"
    assert set(table["split"]) <= set(metadata.SPLITS)


# --------------------------------------------------------------------------- what a hosted notebook installs

PINS = environment.read_pins()


def test_pins_come_from_requirements_txt():
    assert PINS["torch"] and PINS["facenet-pytorch"] == "2.5.3"
    text = (REPO_ROOT / "requirements.txt").read_text()
    extras = environment.read_extras()
    assert all(f"{name}{extras.get(name, '')}=={version}" in text.lower() for name, version in PINS.items())
    assert extras.get("ray") == "[data]"
    plan = environment.hosted_install_plan({"ray": "2.60.0"}, {"ray": None}, extras=extras)
    assert plan.install == ["ray[data]==2.60.0"]  # a hosted notebook gets Ray Data, not bare Ray


def test_colab_keeps_its_compatible_torch_and_installs_what_is_missing():
    colab = {"torch": "2.9.0+cu126", "torchvision": "0.24.0+cu126", "tensorflow": "2.19.0", "keras": "3.10.0",
             "numpy": "2.0.2", "opencv-python": "4.12.0.88", "ipykernel": "6.17.1", "pandas": "2.2.2"}
    plan = environment.hosted_install_plan(PINS, colab, imported={"numpy", "IPython"})
    for kept in ("torch", "torchvision", "tensorflow", "keras", "numpy", "opencv-python-headless", "pandas"):
        assert kept in plan.kept, kept
        assert not any(spec.startswith(kept + "==") for spec in plan.install)
    assert "opencv-python" in plan.kept["opencv-python-headless"]  # Colab's cv2 counts
    for missing in ("facenet-pytorch", "grad-cam", "albumentations", "av", "kaggle"):
        assert f"{missing}=={PINS[missing]}" in plan.install
    for never in ("ipykernel", "jupyter", "ipywidgets", "pytest", "playwright", "gradio", "papermill"):
        assert not any(spec.startswith(never + "==") for spec in plan.install), never
    assert plan.restart == []
    [command] = plan.commands(python="/usr/bin/python3")
    assert command[:5] == ["/usr/bin/python3", "-m", "pip", "install", "--quiet"]
    assert command[5:] == plan.install


def test_an_old_torch_is_replaced_and_a_restart_is_asked_for_when_it_was_imported():
    old = {"torch": "1.13.1", "torchvision": "0.14.1", "numpy": "1.23.5"}
    plan = environment.hosted_install_plan(PINS, old, imported={"torch", "numpy"})
    assert f"torch=={PINS['torch']}" in plan.install and f"torchvision=={PINS['torchvision']}" in plan.install
    assert f"numpy=={PINS['numpy']}" in plan.install
    assert set(plan.restart) == {"torch", "numpy"}  # torchvision was not imported yet


def test_nothing_is_installed_when_everything_is_pinned_already():
    plan = environment.hosted_install_plan(PINS, dict(PINS), imported=set())
    assert plan.install == [] and plan.commands() == []


def test_prepare_notebook_environment_runs_the_pip_command_on_colab_only():
    commands = []
    info = environment.prepare_notebook_environment("colab", run=lambda cmd, check: commands.append(cmd),
                                                    verbose=False)
    installed = environment.installed_versions(PINS)
    expected = environment.hosted_install_plan(PINS, installed)
    assert info["installed"] == expected.install
    assert commands == expected.commands()
    commands.clear()
    assert environment.prepare_notebook_environment("local", run=lambda cmd, check: commands.append(cmd),
                                                    verbose=False)["platform"] == "local"
    assert commands == []


# --------------------------------------------------------------------------- the bootstrap cell, executed

HARNESS = r"""
import json, os, shutil, subprocess, sys, types
repo, work, record = sys.argv[1], sys.argv[2], sys.argv[3]
calls = []
def fake_run(command, check=False, **kwargs):
    calls.append(command)
    if command[:2] == ["git", "clone"]:   # "clone": copy the course's helpers and pins
        shutil.copytree(os.path.join(repo, "helpers"), os.path.join(command[-1], "helpers"))
        shutil.copyfile(os.path.join(repo, "requirements.txt"), os.path.join(command[-1], "requirements.txt"))
    return subprocess.CompletedProcess(command, 0)
subprocess.run = fake_run
if os.environ.get("SIMULATE") == "colab":
    sys.modules["google.colab"] = types.ModuleType("google.colab")
source = open(os.path.join(work, "cell.py")).read().replace('"/content"', repr(work))
exec(compile(source, "bootstrap cell", "exec"))
json.dump({"calls": calls, "platform": platform_info["platform"], "helpers": environment.__file__},
          open(record, "w"))
"""


def _run_cell(tmp_path, simulate: str, cwd: Path) -> dict:
    (tmp_path / "cell.py").write_text(environment.bootstrap_cell_source())
    (tmp_path / "harness.py").write_text(HARNESS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["SIMULATE"] = simulate
    # -S: no site-packages, so `helpers` is not importable (as on a fresh Colab) and nothing is installed
    result = subprocess.run([sys.executable, "-S", str(tmp_path / "harness.py"), str(REPO_ROOT), str(tmp_path),
                             str(tmp_path / "record.json")], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return {**json.loads((tmp_path / "record.json").read_text()), "stdout": result.stdout}


def test_bootstrap_cell_on_simulated_colab_clones_the_course_and_installs_the_pins(tmp_path):
    record = _run_cell(tmp_path, "colab", cwd=tmp_path)
    clone_dir = str(tmp_path / environment.CLONE_NAME)
    assert record["calls"][0] == ["git", "clone", "--depth", "1", "--branch", environment.COURSE_BRANCH,
                                  f"https://github.com/{environment.COURSE_REPOSITORY}.git", clone_dir]
    assert record["platform"] == "colab" and record["helpers"].startswith(clone_dir)
    pip = record["calls"][1]
    assert pip[1:5] == ["-m", "pip", "install", "--quiet"]
    assert f"torch=={PINS['torch']}" in pip  # nothing installed at all (-S): everything but the skipped ones
    assert not any(spec.startswith("ipykernel") for spec in pip)
    assert "Running on Google Colab" in record["stdout"]
    second = _run_cell(tmp_path, "colab", cwd=tmp_path)  # run again: the clone is there, no second clone
    assert not any(call[:2] == ["git", "clone"] for call in second["calls"])


def test_bootstrap_cell_on_your_machine_uses_the_helpers_one_folder_up(tmp_path):
    record = _run_cell(tmp_path, "local", cwd=REPO_ROOT / "notebooks")
    assert record["calls"] == [] and record["platform"] == "local"
    assert record["helpers"] == str(REPO_ROOT / "helpers" / "environment.py")


# --------------------------------------------------------------------------- links and notebook cells

def test_readme_badges_name_the_one_repository():
    assert colab_links.problems(notebooks=course.course_notebooks()) == []
    readme = (REPO_ROOT / "README.md").read_text()
    for notebook in course.course_notebooks():
        assert environment.colab_url(notebook.stem) in readme
    assert environment.COURSE_REPOSITORY in environment.colab_url("00_setup")


def test_stale_badges_and_cells_are_reported(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{colab_links.badge_block(repository='someone/else')}\ny\n")
    notebook = tmp_path / "00_setup.ipynb"
    shutil.copyfile(course.course_notebooks()[0], notebook)
    colab_links.write_notebook(notebook, repository="someone/else")
    found = colab_links.problems(readme, [notebook])
    assert any("README.md" in p for p in found) and any("00_setup.ipynb" in p for p in found)


def test_setup_cell_goes_right_after_the_parameters_cell_once(tmp_path):
    for source in course.course_notebooks():
        notebook = tmp_path / source.name
        shutil.copyfile(source, notebook)
        colab_links.write_notebook(notebook)
        assert not colab_links.write_notebook(notebook)  # a second run changes nothing
        nb = json.loads(notebook.read_text())
        tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
        at = next(i for i, t in enumerate(tags) if "parameters" in t)
        assert colab_links.BOOTSTRAP_TAG in tags[at + 1] and sum(colab_links.BOOTSTRAP_TAG in t for t in tags) == 1
        first_helpers_import = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
                                    and "from helpers" in "".join(c["source"]))
        assert first_helpers_import == at + 1, source.name  # before anything imports the helpers
        assert len(nb["cells"][at + 1]["source"]) <= 30
        assert nb["metadata"]["accelerator"] == "GPU" and nb["metadata"]["colab"]["gpuType"] == "T4"
        others = [c for c in json.loads(source.read_text())["cells"]
                  if colab_links.BOOTSTRAP_TAG not in c.get("metadata", {}).get("tags", [])]
        assert [c["source"] for c in nb["cells"] if c is not nb["cells"][at + 1]] == [c["source"] for c in others]


def test_the_setup_cell_uses_a_classroom_cache_when_one_is_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEEPFAKE_CACHE", raising=False)
    assert environment.prepare_notebook_environment("local", verbose=False)["cache"] is None
    monkeypatch.setenv("DEEPFAKE_CACHE", str(tmp_path / "no-such-cache"))
    info = environment.prepare_notebook_environment("local")
    assert info["cache"]["ok"] is False and "does not exist" in info["cache"]["error"]
    assert "WARNING" in capsys.readouterr().out


@pytest.mark.skipif("kaggle_dfdc_videos" not in Path(data_sources.__file__).read_text(),
                    reason="data_sources.prepare_dataset does not look for attached Kaggle data yet "
                           "(the two-line edit of issue 20)")
def test_prepare_dataset_kaggle_reads_attached_data_in_place(tmp_path, monkeypatch):
    """On Kaggle Notebooks: no credentials, no download, no copy; the split goes to the data folder."""
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "working" / "data"))
    for variable in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(variable, raising=False)
    videos = _fake_kaggle_input(tmp_path / "kaggle")
    monkeypatch.setattr(environment, "KAGGLE_ROOT", tmp_path / "kaggle")
    _read_only(videos)
    try:
        def no_download(_):
            raise AssertionError("attached data must not be downloaded")

        dataset = data_sources.prepare_dataset("kaggle", "full", downloader=no_download)
        table = data_sources.load_dataset(dataset)
    finally:
        _writable(videos)
    assert len(table) == 6 and all(Path(p).parent == videos.resolve() for p in table["path"])
    assert not list((tmp_path / "working").rglob("*.mp4"))
