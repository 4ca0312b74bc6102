"""The README's make commands work as written: every variable reaches the program, and the log is quiet.

Most tests run ``make -n`` (print the commands, run nothing) with the venv
stamp marked up to date (``-o``), so they never install anything; one runs the
real ``make course`` target on a tiny folder of videos, as the README says.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO_ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_dry_run(tmp_path: Path, target: str, **variables) -> list[str]:
    """The command ``make <target> VAR=value ...`` would run, as argv (the venv is never touched)."""
    venv = tmp_path / "venv"
    command = ["make", "--no-print-directory", "-n", "-o", f"{venv}/.installed", target, f"VENV={venv}",
               *(f"{k}={v}" for k, v in variables.items())]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.replace("\\\n", " ").splitlines() if line.strip()]
    assert len(lines) == 1, lines  # one command, no install step
    argv = shlex.split(lines[0])
    assert argv[0] == f"{venv}/bin/python"
    return argv[1:]


def test_course_passes_every_variable_of_the_readme(tmp_path):
    run_course = load_tool("run_course")
    videos = tmp_path / "my videos (DFDC)"  # spaces and brackets survive the shell
    videos.mkdir()
    argv = make_dry_run(tmp_path, "course", SOURCE="folder", DATA_PATH=str(videos), PROFILE="smoke",
                        PRETRAINED="True", DIFFICULTY="easy", DEVICE="cpu", ONLY="01 02")
    assert argv[0] == "tools/run_course.py"
    args = run_course.parse_args(argv[1:])
    assert (args.source, args.data_path, args.profile, args.pretrained) == ("folder", str(videos), "smoke", True)
    assert (args.difficulty, args.device, args.only) == ("easy", "cpu", ["01", "02"])


def test_course_defaults_and_only_the_options_that_are_set(tmp_path):
    run_course = load_tool("run_course")
    argv = make_dry_run(tmp_path, "course")
    assert "--data-path" not in argv and "--difficulty" not in argv and "--only" not in argv
    args = run_course.parse_args(argv[1:])
    assert (args.profile, args.source, args.pretrained, args.difficulty) == ("standard", "sample", False, None)
    args = run_course.parse_args(make_dry_run(tmp_path, "course", SOURCE="kaggle", PRETRAINED="True")[1:])
    assert (args.source, args.pretrained) == ("kaggle", True)


def test_course_refuses_a_folder_source_without_its_folder(tmp_path, capsys):
    run_course = load_tool("run_course")
    with pytest.raises(SystemExit):
        run_course.parse_args(["--source", "folder"])
    assert "DATA_PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # DATA_PATH without SOURCE=folder would be silently ignored
        run_course.parse_args(["--data-path", str(tmp_path)])
    assert "SOURCE=folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_course.parse_args(["--source", "folder", "--data-path", str(tmp_path / "nowhere")])
    assert "no such folder" in capsys.readouterr().err


def test_demo_and_benchmark_pass_their_variables(tmp_path):
    checkpoint = tmp_path / "my model.pth"
    argv = make_dry_run(tmp_path, "demo", CHECKPOINT=str(checkpoint))
    assert argv == ["-m", "helpers.demo_app", "--checkpoint", str(checkpoint)]
    assert make_dry_run(tmp_path, "demo") == ["-m", "helpers.demo_app"]

    benchmark = load_tool("benchmark_faces")
    argv = make_dry_run(tmp_path, "benchmark", VIDEOS=str(tmp_path / "dfdc videos"))
    assert argv[0] == "tools/benchmark_faces.py"
    assert benchmark.build_parser().parse_args(argv[1:]).videos_dir == tmp_path / "dfdc videos"
    assert benchmark.build_parser().parse_args(make_dry_run(tmp_path, "benchmark")[1:]).videos_dir is None


def test_dry_run_only_prints_the_install_step_of_an_old_venv(tmp_path):
    """With the stamp older than requirements.txt, ``make -n`` lists the install commands but runs none."""
    venv = tmp_path / "venv"
    venv.mkdir()
    stamp = venv / ".installed"
    stamp.touch()
    old = time.time() - 10 * 365 * 24 * 3600
    os.utime(stamp, (old, old))
    done = subprocess.run(["make", "-n", "course", f"VENV={venv}"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "pip install" in done.stdout and "run_course.py" in done.stdout
    assert sorted(p.name for p in venv.iterdir()) == [".installed"]  # nothing was installed
    assert stamp.stat().st_mtime == pytest.approx(old)


def test_quiet_kernel_leaves_out_known_noise_and_keeps_real_messages(tmp_path, capfd):
    import nbformat

    from helpers import course

    parameters = nbformat.v4.new_code_cell("X = 1")
    parameters.metadata["tags"] = ["parameters"]
    cell = nbformat.v4.new_code_cell(
        "import os\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1.5 1 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
        "available CPU instructions in performance-critical operations.\\n')\n"
        "os.write(2, b'a real problem, written to the stderr of the kernel process\\n')")
    notebook = nbformat.v4.new_notebook(cells=[parameters, cell])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "noisy.ipynb")
    capfd.readouterr()
    course.execute(tmp_path / "noisy.ipynb", tmp_path / "out.ipynb", {"X": 2})
    err = capfd.readouterr().err
    assert "a real problem, written to the stderr of the kernel process" in err
    for noise in ("absl::InitializeLog", "cpu_feature_guard", "without encryption", "KeyboardInterrupt"):
        assert noise not in err
    assert json.loads((tmp_path / "out.ipynb").read_text())["cells"][-1]["outputs"]  # the notebook keeps all


def test_noise_filter_drops_cuda_probing_only_without_a_gpu_driver():
    from helpers import course

    cu_init = ("E0000 00:00:1796156407.611343 7649 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
               "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
    assert not course.NoiseFilter(gpu_driver=False).keep(cu_init)
    assert course.NoiseFilter(gpu_driver=True).keep(cu_init)  # with a driver it is a real problem
    quiet = course.NoiseFilter(gpu_driver=False)
    stopped = "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel."
    assert quiet.keep(stopped)  # during a run: a real interrupt, shown
    quiet.closing.set()
    assert not quiet.keep(stopped)  # while the finished kernel is stopped: no news
    assert quiet.keep("/x.py:3: UserWarning: something worth reading")


@pytest.mark.notebook
@pytest.mark.slow
def test_make_course_on_your_own_folder_as_the_readme_says(tmp_path):
    """`make course SOURCE=folder DATA_PATH=...` runs notebook 01 on a folder with real/ and fake/."""
    from helpers import sample_data

    videos = tmp_path / "my videos"
    for k in range(4):
        label = "real" if k % 2 == 0 else "fake"
        sample_data.make_clip(videos / label / f"clip{k}.mp4", 160, 120, seconds=0.5, fps=10, fake=label == "fake",
                              seed=k // 2)
    before = sorted((str(p.relative_to(videos)), p.stat().st_size) for p in videos.rglob("*"))
    env = {**os.environ, "DEEPFAKE_DATA_DIR": str(tmp_path / "data"), "DEEPFAKE_RESULTS_DIR": str(tmp_path / "results"),
           "DEEPFAKE_FIGURES_DIR": str(tmp_path / "figures"), "DEEPFAKE_RUNS_DIR": str(tmp_path / "runs")}
    venv = tmp_path / "venv"
    command = ["make", "--no-print-directory", "-o", f"{venv}/.installed", "course", f"VENV={venv}",
               f"PY={sys.executable}", "SOURCE=folder", f"DATA_PATH={videos}", "PROFILE=smoke", "ONLY=01"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "results" / "01_data.json").read_text())
    assert result["n_videos"] == 4 and result["counts"]["label"] == {"REAL": 2, "FAKE": 2}
    assert (tmp_path / "runs" / "smoke" / "01_data.ipynb").is_file()
    assert "without encryption" not in done.stderr and "Traceback" not in done.stderr
    assert sorted((str(p.relative_to(videos)), p.stat().st_size) for p in videos.rglob("*")) == before
