"""How much memory does the demo server need? Its peak resident memory for the largest inputs it accepts.

Starts ``python -m helpers.demo_app`` on 127.0.0.1 with a randomly initialised
checkpoint (the model's weights do not change its memory), and measures the
server process's peak resident memory (Linux ``VmHWM``, reset between phases
through ``/proc/<pid>/clear_refs``) for:

1. idle, after start-up and warm-up;
2. the largest video the demo accepts: frames of ``MAX_VIDEO_FRAME_PIXELS``
   (4096 x 2160) with a face, ``MAX_N_FRAMES`` (64) frames sampled;
3. the upload of the hardening issue: 4096 x 4096 frames, 64 frames asked
   for (refused before decoding since the pixel budget);
4. ``--parallel`` (8) requests at once for the largest video.

The clips are made once with helpers.sample_data.write_video and kept in
``<data>/benchmark/demo_memory/``. The figures are printed and written to
``<results>/benchmark_demo_memory.json``. Run ``python tools/benchmark_demo_memory.py --help``.
On a machine shared with other work, label the timings "under load"; the
memory figures depend little on load.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from helpers import config, inference, models_torch, sample_data  # noqa: E402


# ------------------------------------------------------------------------------ the server process
def memory_mb(pid: int) -> dict:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, in MiB (Linux /proc)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return {"rss": round(values["VmRSS"], 1), "peak": round(values["VmHWM"], 1)}


def reset_peak(pid: int) -> bool:
    """Start a new peak-memory measurement for ``pid`` (``echo 5 > /proc/pid/clear_refs``); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_demo(folder: Path, image_size: int = 160, n_frames: int = 16, device: str = "cpu",
               timeout: float = 600.0) -> tuple:
    """``python -m helpers.demo_app`` on a free local port with a random checkpoint made in ``folder``.

    Returns ``(process, url, log path)`` once the page answers; stop it with :func:`stop_demo`.
    """
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    checkpoint = models_torch.save_checkpoint(models_torch.build_inception_classifier(pretrained=False),
                                              folder / "random.pth", epoch=0, image_size=image_size,
                                              trained_on="nothing (random weights, for a measurement)")
    (folder / "gradio-tmp").mkdir(exist_ok=True)
    port = free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(folder / "gradio-tmp"), "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    log = folder / "server.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "helpers.demo_app", "--checkpoint", str(checkpoint),
                                    "--host", "127.0.0.1", "--port", str(port), "--device", device,
                                    "--n-frames", str(n_frames)], cwd=REPO_ROOT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"The demo exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return process, url, log
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_demo(process)
            raise RuntimeError(f"The demo did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_demo(process: subprocess.Popen) -> None:
    """Stop the server by its process id: SIGTERM, then SIGKILL after 20 s."""
    if process.poll() is None:
        os.kill(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, 9)
            process.wait()


def client_for(url: str, folder: Path):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False, download_files=str(folder / "client-downloads"))


# ------------------------------------------------------------------------------ inputs
def largest_video(path: Path, width: int, height: int, n_frames: int, fps: int = 2) -> Path:
    """``n_frames`` frames of ``width`` x ``height`` with the sample portrait's face, slowly moving."""
    if path.exists():
        return path
    import cv2

    face = cv2.cvtColor(cv2.imread(str(sample_data.portrait_path())), cv2.COLOR_BGR2RGB)
    scale = 0.6 * height / face.shape[0]
    face = cv2.resize(face, (int(face.shape[1] * scale), int(face.shape[0] * scale)))
    rng = np.random.default_rng(0)
    background = rng.integers(40, 200, (height // 8, width // 8, 3), dtype=np.uint8)
    background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)

    def frames():
        for k in range(n_frames):
            frame = background.copy()
            x = int((width - face.shape[1]) * (0.3 + 0.4 * k / max(1, n_frames - 1)))
            y = (height - face.shape[0]) // 2
            frame[y:y + face.shape[0], x:x + face.shape[1]] = face
            yield frame

    path.parent.mkdir(parents=True, exist_ok=True)
    sample_data.write_video(path, frames(), width, height, fps=fps, crf=28)
    return path


# ------------------------------------------------------------------------------ the measurement
def measure(args) -> dict:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    inputs = config.data_dir() / "benchmark" / "demo_memory"
    frame_w, frame_h = 4096, 2160
    assert frame_w * frame_h <= inference.MAX_VIDEO_FRAME_PIXELS
    print(f"Making the inputs in {inputs} (once) ...", flush=True)
    started = time.perf_counter()
    big = largest_video(inputs / f"largest_{frame_w}x{frame_h}_{args.frames}f.mp4", frame_w, frame_h, args.frames)
    issue = largest_video(inputs / "issue_4096x4096_8f.mp4", 4096, 4096, 8)
    print(f"  inputs ready in {time.perf_counter() - started:.0f} s: {big.name} ({big.stat().st_size / 2**20:.1f} MB), "
          f"{issue.name}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="demo-memory-"))
    process, url, log = start_demo(work, image_size=args.image_size, device=args.device)
    pid = process.pid
    figures = {"frame_pixels": [frame_w, frame_h], "n_frames": args.frames, "parallel": args.parallel,
               "device": args.device, "cpu_count": os.cpu_count(), "load_before": os.getloadavg()[0],
               "limits": {"MAX_VIDEO_FRAME_PIXELS": inference.MAX_VIDEO_FRAME_PIXELS,
                          "WORK_FRAME_PIXELS": inference.WORK_FRAME_PIXELS,
                          "FRAMES_IN_MEMORY": inference.FRAMES_IN_MEMORY, "MAX_N_FRAMES": inference.MAX_N_FRAMES}}
    try:
        client = client_for(url, work)

        def video_request(path, n_frames=args.frames):
            t0 = time.perf_counter()
            try:
                out = client.predict(handle_file(str(path)), n_frames, api_name="/analyse_video")
                return {"answer": out[0]["label"], "seconds": round(time.perf_counter() - t0, 1)}
            except AppError as error:
                return {"error": str(error)[:200], "seconds": round(time.perf_counter() - t0, 1)}

        figures["idle_mib"] = memory_mb(pid)
        print("idle:", figures["idle_mib"], flush=True)
        can_reset = reset_peak(pid)
        figures["peak_reset_between_phases"] = can_reset

        outcome = video_request(big)
        figures["largest_video"] = {**outcome, **memory_mb(pid)}
        print(f"largest accepted video ({frame_w}x{frame_h}, {args.frames} frames):", figures["largest_video"],
              flush=True)

        reset_peak(pid)
        outcome = video_request(issue, 64)
        figures["issue_4096x4096"] = {**outcome, **memory_mb(pid)}
        print("4096x4096 upload (refused):", figures["issue_4096x4096"], flush=True)

        reset_peak(pid)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.parallel) as pool:
            outcomes = list(pool.map(lambda _: video_request(big), range(args.parallel)))
        figures["parallel_largest_video"] = {"answers": sum("answer" in o for o in outcomes),
                                             "errors": [o["error"] for o in outcomes if "error" in o],
                                             "seconds": round(time.perf_counter() - t0, 1), **memory_mb(pid)}
        print(f"{args.parallel} parallel requests for the largest video:", figures["parallel_largest_video"],
              flush=True)
    finally:
        stop_demo(process)
    figures["load_after"] = os.getloadavg()[0]
    figures["server_log_has_traceback"] = "Traceback" in log.read_text()
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=inference.MAX_N_FRAMES, help="frames sampled (default 64)")
    parser.add_argument("--parallel", type=int, default=8, help="requests sent at once (default 8)")
    parser.add_argument("--image-size", type=int, default=160, help="the checkpoint's face size (default 160)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    args = parser.parse_args(argv)
    figures = measure(args)
    out = config.results_dir() / "benchmark_demo_memory.json"
    out.write_text(json.dumps(figures, indent=2))
    print(f"\nPeak resident memory of the demo server (MiB): idle {figures['idle_mib']['peak']:.0f}, largest accepted "
          f"video {figures['largest_video']['peak']:.0f}, {args.parallel} parallel requests "
          f"{figures['parallel_largest_video']['peak']:.0f}; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
