"""How fast is face extraction, and how many faces does it find? Three ways, on the same videos.

(a) the report's way: OpenCV reads every frame of the video; facenet-pytorch's
    MTCNN runs on each sampled frame, one frame at a time, at full resolution.
(b) the DFDC winner's way (selimsef/dfdc_deepfake_challenge, kernel_utils.py,
    read for facts): OpenCV grab()s every frame and retrieve()s only the
    sampled ones; facenet-pytorch's MTCNN (thresholds 0.7, 0.8, 0.8, as there)
    looks at frames scaled to half size; here all frames of a video go through
    it in one batch, which is faster on a CPU than the winner's one at a time.
(c) the course's pipeline (helpers.faces.extract_faces): only the sampled
    frames are decoded to RGB, MTCNN looks at copies scaled to 640 px in
    batches, a frame without a confident face gets one second look (near the
    known face, or at finer scales), crops are cut from the full frames and
    written with the manifest. The same pipeline without second looks is
    timed too, so the cost of that recovery shows.

Two sets of videos (both made locally, kept in <data>/ and reused):

* "synthetic": DFDC-like clips (two 1920x1080 and two 1080x1920, 10 s at
  30 fps, one large well-lit face each; helpers.sample_data.make_clip);
* "hard": small faces (40-80 px) in 1080p and portrait frames, dark and
  back-lit scenes, off-centre faces, two people, motion blur and heavy H.264
  compression (tools/hard_clips.py).

``--videos-dir DIR`` times your own folder instead (a metadata.json, or real/
and fake/ sub-folders), e.g. DFDC's train_sample_videos. Run
``python tools/benchmark_faces.py --help`` for the options; ``make benchmark``
runs the defaults and ``make benchmark VIDEOS=DIR`` your folder.

Each way runs ``--repeat`` times (default 2), the ways taking turns, and the
fastest run of each is compared: the first run of a process also pays for
one-off start-up work, and on a shared machine other processes slow some runs
down. The CPU seconds this process used are printed beside the wall-clock
times, and the load average before and after (above the number of cores: a
busy machine, times inflated; compare ratios then).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import config, crop_manifest, face_detector, faces, gpu, sample_data, video_frames  # noqa: E402

#: The ways, in the order they are printed.
WAYS = {
    "report": "(a) report's way: read all, MTCNN full res",
    "winner": "(b) DFDC winner's way: grab/retrieve, half res",
    "pipeline": "(c) pipeline (extract_faces)",
    "first_look_only": "    (c) without second looks",
}


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def hardware() -> dict:
    import torch

    from helpers.results import cpu_model

    model = cpu_model()
    info = {"cpu": model, "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "gpu": None}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------------------------
# The videos


def make_clips(folder: Path, n_videos: int, n_portrait: int, seconds: float, fps: int) -> list:
    """The synthetic clips (made once, then reused): landscape 1920x1080 and portrait 1080x1920."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for k in range(n_videos):
        portrait = k >= n_videos - n_portrait
        width, height = (1080, 1920) if portrait else (1920, 1080)
        path = folder / f"clip{k}_{width}x{height}_{seconds:g}s_{fps}fps.mp4"
        if not path.exists():
            start = time.perf_counter()
            sample_data.make_clip(path, width, height, seconds=seconds, fps=fps, fake=bool(k % 2), seed=100 + k)
            print(f"  made {path.name} in {time.perf_counter() - start:.0f} s (kept for the next run)")
        clips.append(path)
    metadata = {p.name: {"label": "FAKE" if k % 2 else "REAL", "split": "test", "original": None}
                for k, p in enumerate(clips)}
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=1))
    return clips


def make_hard_clips(folder: Path, n_videos: int, seconds: float, fps: int) -> list:
    """The hard set (tools/hard_clips.py), its first ``n_videos`` clips, made once."""
    import hard_clips

    return hard_clips.make_hard_set(folder, seconds, fps, clips=hard_clips.HARD_SET[:n_videos])


def own_videos(folder: Path, max_videos: int | None) -> tuple:
    """A dataset folder for your videos (made by data_sources.prepare_dataset, our metadata in <data>/own/,
    nothing written into your folder) and the paths of its videos."""
    import hashlib

    from helpers import data_sources

    folder = Path(folder).expanduser().resolve()
    plain = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name).strip("._") or "videos"  # "my videos" -> "my_videos"
    name = f"benchmark-{plain}-{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}"
    dataset = data_sources.prepare_dataset("folder", "full", path=folder, name=name, skip_bad=True,
                                           max_videos=max_videos)
    paths = [Path(p) for p in data_sources.load_dataset(dataset, probe=False)["path"]]
    return dataset, paths


# ----------------------------------------------------------------------------------------------
# The three ways


def read_every_frame(path: Path, n_frames: int) -> list:
    """The report's way of reading: OpenCV decodes every frame, the evenly spaced ones are kept (RGB)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    wanted = set(video_frames.sample_frame_indices(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), n_frames).tolist())
    sampled, index = [], 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if index in wanted:
            sampled.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        index += 1
    capture.release()
    return sampled


def grab_and_retrieve(path: Path, n_frames: int) -> list:
    """The DFDC winner's way of reading: OpenCV grab()s every frame, retrieve()s (decodes to RGB)
    only the sampled ones (evenly spaced over CAP_PROP_FRAME_COUNT)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    if count <= 0:
        return []
    wanted = video_frames.sample_frame_indices(count, n_frames).tolist()
    try:
        return video_frames.read_frames(path, wanted, backend="cv2")
    except video_frames.VideoReadError:
        return []


def report_way(clips: list, n_frames: int, device: str, threads: int) -> dict:
    """(a): read every frame with OpenCV, MTCNN on the full frame, one frame at a time."""
    import torch
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(select_largest=False, post_process=False, device=device)
    torch.set_num_threads(threads)
    mtcnn(np.zeros((240, 320, 3), np.uint8))  # warm-up
    found, frames_done, per_video = 0, 0, []
    wall, cpu = time.perf_counter(), cpu_seconds()
    for path in clips:
        start = time.perf_counter()
        sampled = read_every_frame(path, n_frames)
        for frame in sampled:
            face = mtcnn(frame)
            found += face is not None
        frames_done += len(sampled)
        per_video.append(time.perf_counter() - start)
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": cpu_seconds() - cpu, "frames": frames_done,
            "faces": found, "per_video": per_video, "threads": threads}


def winner_way(clips: list, n_frames: int, device: str, threads: int) -> dict:
    """(b): grab/retrieve, every sampled frame halved (PIL), facenet-pytorch's MTCNN on a video's
    frames in one batch, with the winner's thresholds."""
    import torch
    from facenet_pytorch import MTCNN
    from PIL import Image

    mtcnn = MTCNN(margin=0, thresholds=[0.7, 0.8, 0.8], device=device)
    torch.set_num_threads(threads)
    mtcnn.detect(Image.new("RGB", (320, 240)))  # warm-up
    found, frames_done, per_video = 0, 0, []
    wall, cpu = time.perf_counter(), cpu_seconds()
    for path in clips:
        start = time.perf_counter()
        halves = []
        for frame in grab_and_retrieve(path, n_frames):
            image = Image.fromarray(frame)
            halves.append(image.resize([s // 2 for s in image.size]))
        if halves:
            boxes, _ = mtcnn.detect(halves, landmarks=False)
            found += sum(b is not None for b in boxes)
        frames_done += len(halves)
        per_video.append(time.perf_counter() - start)
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": cpu_seconds() - cpu, "frames": frames_done,
            "faces": found, "per_video": per_video, "threads": threads}


def pipeline(dataset: Path, n_frames: int, device: str, batch_size: int | None, recover: bool = True) -> dict:
    """(c): helpers.faces.extract_faces from scratch (its output folder, the benchmark's own, is removed first)."""
    options = dict(frames_per_video=n_frames, device=device, batch_size=batch_size, progress=False, recover=recover)
    out = faces.faces_dir(dataset, "full", **options)
    if out.exists():
        shutil.rmtree(out)
    detector = face_detector.FaceDetector(device=device)
    detector.detect(np.zeros((240, 320, 3), np.uint8))  # warm-up (loads the networks once, like (a))
    gpu.reset_peak_memory()
    wall, cpu = time.perf_counter(), cpu_seconds()
    import contextlib
    import io
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # unreadable videos of a user's folder are counted, not shouted about
        manifest = faces.extract_faces(dataset, "full", **options)
    seconds, used = time.perf_counter() - wall, cpu_seconds() - cpu
    df = crop_manifest.load_manifest(manifest, only_faces=False)
    read = df[df["status"].isin(["ok", "no_face"])]
    summary = crop_manifest.video_summary(df)
    looks = read["second_look"].fillna("").value_counts().to_dict()
    return {"seconds": seconds, "cpu_seconds": used, "frames": len(read), "faces": int((read["status"] == "ok").sum()),
            "per_video": summary["seconds"].tolist(), "peak_gpu_mib": gpu.peak_memory_mib(),
            "threads": detector.threads, "second_looks": {k: int(v) for k, v in looks.items() if k},
            "second_look_seconds": float(summary["second_look_seconds"].sum()),
            "unreadable_videos": int(summary["status"].isin(["unreadable", "missing_file"]).sum())}


def probe_threads(clip: Path, device: str, choices: list) -> dict:
    """Seconds per full-resolution frame of facenet-pytorch's MTCNN with each torch thread count."""
    import torch
    from facenet_pytorch import MTCNN

    frames = video_frames.read_frames(clip, [0, 1])
    mtcnn = MTCNN(select_largest=False, post_process=False, device=device)
    spent = {}
    for threads in choices:
        torch.set_num_threads(threads)
        mtcnn(frames[0])
        start = time.perf_counter()
        mtcnn(frames[-1])
        spent[threads] = time.perf_counter() - start
    return spent


def reading(clips: list, n_frames: int) -> dict:
    """Seconds to get the sampled frames as RGB arrays, per reading method (mean over the clips)."""
    methods = {
        "cv2 read() every frame": lambda p: read_every_frame(p, n_frames),
        "cv2 grab() all, retrieve() sampled": lambda p: video_frames.sample_frames(p, n_frames, backend="cv2"),
        "PyAV keyframe seek + decode forward": lambda p: video_frames.sample_frames(p, n_frames, backend="pyav"),
    }
    times = {name: [] for name in methods}
    for _ in range(2):  # alternate the methods, keep each one's best: less noise from other processes
        for name, method in methods.items():
            spent = []
            for path in clips:
                start = time.perf_counter()
                method(path)
                spent.append(time.perf_counter() - start)
            times[name].append(float(np.mean(spent)))
    return {name: min(values) for name, values in times.items()}


# ----------------------------------------------------------------------------------------------
# One set of videos, all ways


def run_set(name: str, dataset: Path, clips: list, args, device: str, peer_threads: int | None) -> dict:
    """Every way ``args.repeat`` times on one set (taking turns); the fastest run of each."""
    import torch

    default_threads = torch.get_num_threads()
    runs: dict = {way: [] for way in WAYS}
    for _ in range(max(1, args.repeat)):
        if peer_threads is not None:
            runs["report"].append(report_way(clips, args.frames, device, peer_threads))
            torch.set_num_threads(default_threads)
            runs["winner"].append(winner_way(clips, args.frames, device, peer_threads))
            torch.set_num_threads(default_threads)
        runs["pipeline"].append(pipeline(dataset, args.frames, device, args.batch_size, recover=True))
        if not args.skip_ablation:
            runs["first_look_only"].append(pipeline(dataset, args.frames, device, args.batch_size, recover=False))
    best = {way: min(r, key=lambda run: run["seconds"]) for way, r in runs.items() if r}
    result = {"videos": [Path(p).name for p in clips], "n_videos": len(clips), "best": best, "runs": runs}
    if "report" in best:
        a, c = best["report"], best["pipeline"]
        result["speedup"] = a["seconds"] / c["seconds"]
        result["cpu_speedup"] = a["cpu_seconds"] / c["cpu_seconds"]
        result["detection_gap_pp"] = 100 * (rate(c) - rate(a))
    return result


def rate(run: dict) -> float:
    return run["faces"] / run["frames"] if run["frames"] else float("nan")


def print_set(title: str, result: dict, frames: int) -> None:
    n = max(1, result["n_videos"])
    best, runs = result["best"], result["runs"]
    print(f"\n{title}: {n} videos, {frames} frames each, fastest of {max(len(r) for r in runs.values())} run(s)")
    print(f"  {'way':<48} {'s/video':>8} {'CPU s/video':>12}  {'frames with a face':>22}   every run, s/video")
    for way, label in WAYS.items():
        if way not in best:
            continue
        r = best[way]
        every = ", ".join(f"{run['seconds'] / n:.2f}" for run in runs[way])
        print(f"  {label:<48} {r['seconds'] / n:8.2f} {r['cpu_seconds'] / n:12.2f}  "
              f"{r['faces']:>6}/{r['frames']:<6} ({rate(r):6.1%})   {every}")
    c = best["pipeline"]
    looks = c["second_looks"]
    n_looks = sum(looks.values())
    share = c["second_look_seconds"] / c["seconds"] if c["seconds"] else 0.0
    print(f"  second looks in (c): {n_looks} of {c['frames']} frames ({looks.get('near_track', 0)} near the known "
          f"face, {looks.get('finer', 0)} finer), {c['second_look_seconds'] / n:.2f} s/video = {share:.0%} of (c)'s time")
    if "first_look_only" in best:
        f = best["first_look_only"]
        print(f"  their effect: {100 * (rate(c) - rate(f)):+.1f} points of detection rate for "
              f"{(c['seconds'] - f['seconds']) / n:+.2f} s/video")
    if "speedup" in result:
        print(f"  speed-up (a)/(c): {result['speedup']:.1f}x wall-clock, {result['cpu_speedup']:.1f}x CPU time "
              f"(target: >= 5x on a CPU); (b)/(c): {best['winner']['seconds'] / c['seconds']:.1f}x")
        print(f"  detection rate (c) - (a): {result['detection_gap_pp']:+.1f} percentage points (target: within 1); "
              f"(c) - (b): {100 * (rate(c) - rate(best['winner'])):+.1f}")
    if c["peak_gpu_mib"] is not None:
        print(f"  peak GPU memory during (c): {c['peak_gpu_mib']:.0f} MiB (target: < 1024 MiB)")
    if c.get("unreadable_videos"):
        print(f"  {c['unreadable_videos']} video(s) could not be read (counted in no way)")


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line (``make benchmark VIDEOS=DIR`` passes ``--videos-dir DIR``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos-dir", type=Path, default=None,
                        help="time your own folder of videos (metadata.json, or real/ and fake/) instead of the "
                             "built-in sets")
    parser.add_argument("--max-videos", type=int, default=None, help="with --videos-dir: at most this many videos")
    parser.add_argument("--sets", default="synthetic,hard", help="built-in sets to run (default: synthetic,hard)")
    parser.add_argument("--videos", type=int, default=4, help="number of synthetic clips (default 4)")
    parser.add_argument("--portrait", type=int, default=2, help="how many of them are 1080x1920 (default 2)")
    parser.add_argument("--seconds", type=float, default=10.0, help="synthetic clip length (default 10 s, like DFDC)")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--hard-videos", type=int, default=None, help="clips of the hard set (default: all 8)")
    parser.add_argument("--hard-seconds", type=float, default=4.0, help="hard clip length (default 4 s)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per video (default 32)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--batch-size", type=int, default=None, help="frames per MTCNN pass (default: 8 on a CPU, 32 on a GPU)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each way, taking turns; the fastest counts")
    parser.add_argument("--skip-baseline", action="store_true", help="only time the pipeline (not (a) and (b))")
    parser.add_argument("--skip-ablation", action="store_true", help="do not time the pipeline without second looks")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the figures as JSON (default: <results>/benchmark_faces.json)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    import torch

    device = gpu.torch_device(args.device)
    hw = hardware()
    print("Face extraction benchmark")
    print(f"  CPU: {hw['cpu']} ({hw['cpu_count']} logical cores); GPU: {hw['gpu'] or 'none'}; "
          f"torch {hw['torch']}; device used: {device}")
    before = load()
    print(f"  load average before: {before} (above the core count = a shared, busy machine: times inflated)")

    sets = []  # (name, title, dataset folder, clips)
    if args.videos_dir is not None:
        dataset, clips = own_videos(args.videos_dir, args.max_videos)
        if not clips:
            print(f"No readable video in {args.videos_dir}.", file=sys.stderr)
            return 1
        sets.append(("own", f"Your videos ({args.videos_dir})", dataset, clips))
    else:
        wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
        unknown = set(wanted) - {"synthetic", "hard"}
        if unknown:
            parser.error(f"unknown set(s) {sorted(unknown)}; choose from synthetic, hard")
        if "synthetic" in wanted:
            folder = config.data_dir() / "benchmark"
            print(f"  synthetic clips: {args.videos} x {args.seconds:g} s at {args.fps} fps ({args.portrait} portrait) "
                  f"in {folder}")
            clips = make_clips(folder, args.videos, min(args.portrait, args.videos), args.seconds, args.fps)
            sets.append(("synthetic", "Synthetic clips (large, well-lit faces)", folder, clips))
        if "hard" in wanted:
            folder = config.data_dir() / "benchmark-hard"
            print(f"  hard clips: {args.hard_seconds:g} s at {args.fps} fps in {folder} (made once; a few minutes)")
            clips = make_hard_clips(folder, args.hard_videos or 8, args.hard_seconds, args.fps)
            sets.append(("hard", "Hard clips (small, dark, back-lit, off-centre, two people, blur, crf 40)",
                         folder, clips))

    default_threads = torch.get_num_threads()
    probe, peer_threads = {}, None
    if not args.skip_baseline:
        # The peers use PyTorch's default threads; on a busy machine one thread can be much faster.
        # Time MTCNN both ways on two frames and give (a) and (b) the faster setting (favours them).
        pipeline_threads = face_detector.FaceDetector(device=device).threads
        probe = probe_threads(sets[0][3][0], device, sorted({default_threads, pipeline_threads}))
        peer_threads = min(probe, key=probe.get)
        torch.set_num_threads(default_threads)
        print(f"  MTCNN full-res s/frame by torch threads: {', '.join(f'{t}: {s:.2f}' for t, s in probe.items())}"
              f" -> (a) and (b) use {peer_threads}")

    figures = {"hardware": hw, "device": device, "frames_per_video": args.frames, "load_before": before,
               "thread_probe_s_per_frame": probe, "sets": {}}
    for name, title, dataset, clips in sets:
        result = run_set(name, dataset, clips, args, device, peer_threads)
        figures["sets"][name] = result
        print_set(title, result, args.frames)
    first_name, _, _, first_clips = sets[0]
    figures["reading"] = read = reading(first_clips, args.frames)
    print(f"\nReading {args.frames} sampled frames as RGB ({first_name} set, {len(first_clips)} videos, "
          "mean s per video, best of 2):")
    for method, seconds in read.items():
        print(f"  {method:<38} {seconds:6.2f} s")
    figures["load_after"] = load()
    print(f"\n  load average before: {before}, after: {figures['load_after']} "
          f"({hw['cpu_count']} cores; above that, times are inflated by other processes)")
    out = args.json or config.results_dir() / "benchmark_faces.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, default=float))
    print(f"  figures written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
